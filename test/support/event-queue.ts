/**
 * The seeded simulations' clock: events ordered by time, and by the order they were queued at equal times, so
 * a seed replays the same run to the event. A binary heap: the simulations queue millions of events.
 */
export class EventQueue<T> {
  private readonly heap: Array<{ at: number, seq: number, item: T }> = []
  private seq = 0

  get size (): number { return this.heap.length }

  push (at: number, item: T): void {
    const h = this.heap
    h.push({ at, seq: this.seq++, item })
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.before(i, p)) break
      this.swap(i, p)
      i = p
    }
  }

  /** The earliest event with its time, or undefined when none is queued. */
  pop (): { at: number, item: T } | undefined {
    const h = this.heap
    const top = h[0]
    if (top === undefined) return undefined
    const last = h.pop() as typeof top
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && this.before(l, m)) m = l
        if (r < h.length && this.before(r, m)) m = r
        if (m === i) break
        this.swap(i, m)
        i = m
      }
    }
    return { at: top.at, item: top.item }
  }

  peekAt (): number | undefined {
    return this.heap[0]?.at
  }

  private before (i: number, j: number): boolean {
    const a = this.heap[i]
    const b = this.heap[j]
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  private swap (i: number, j: number): void {
    const h = this.heap
    const t = h[i]; h[i] = h[j]; h[j] = t
  }
}
