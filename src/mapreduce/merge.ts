import { compareKeys } from './key-order.js'
import type { RecordSource } from './run-file.js'

/**
 * Streaming k-way merge of sorted sources. Equal keys come out in source order
 * (then in each source's own order), so the values a reducer sees do not depend
 * on which worker ran which map, only on the map task numbers.
 */
export class KWayMerge {
  private readonly heap: number[] = []
  key = ''
  value = ''

  constructor (private readonly sources: RecordSource[]) {
    for (let i = 0; i < sources.length; i++) {
      if (sources[i].next()) this.push(i)
    }
  }

  private less (a: number, b: number): boolean {
    const c = compareKeys(this.sources[a].key, this.sources[b].key)
    return c < 0 || (c === 0 && a < b)
  }

  private push (i: number): void {
    const h = this.heap
    let pos = h.length
    h.push(i)
    while (pos > 0) {
      const parent = (pos - 1) >> 1
      if (!this.less(h[pos], h[parent])) break;
      [h[pos], h[parent]] = [h[parent], h[pos]]
      pos = parent
    }
  }

  private siftDown (): void {
    const h = this.heap
    let pos = 0
    for (;;) {
      const l = 2 * pos + 1
      if (l >= h.length) return
      const r = l + 1
      const m = r < h.length && this.less(h[r], h[l]) ? r : l
      if (!this.less(h[m], h[pos])) return;
      [h[pos], h[m]] = [h[m], h[pos]]
      pos = m
    }
  }

  /** Advances to the next record in merged order; false at the end. */
  next (): boolean {
    const h = this.heap
    if (h.length === 0) return false
    const top = h[0]
    const src = this.sources[top]
    this.key = src.key
    this.value = src.value
    if (src.next()) {
      this.siftDown()
    } else {
      const last = h.pop() as number
      if (h.length > 0) {
        h[0] = last
        this.siftDown()
      }
    }
    return true
  }
}

/** Calls `fn` once per distinct key with all its values, in merged order. */
export function forEachGroup (merge: KWayMerge, fn: (key: string, values: string[]) => void): void {
  if (!merge.next()) return
  let key = merge.key
  let values = [merge.value]
  while (merge.next()) {
    if (merge.key === key) {
      values.push(merge.value)
      continue
    }
    fn(key, values)
    key = merge.key
    values = [merge.value]
  }
  fn(key, values)
}

/** An in-memory sorted source: lets spilled and unspilled data share the merge. */
export class ArraySource implements RecordSource {
  key = ''
  value = ''
  private i = 0
  constructor (private readonly records: ReadonlyArray<readonly [string, string]>) {}
  next (): boolean {
    if (this.i >= this.records.length) return false
    const r = this.records[this.i++]
    this.key = r[0]
    this.value = r[1]
    return true
  }

  close (): void {}
}
