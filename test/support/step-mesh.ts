import type { ElectionEffect, ElectionNode } from '../../src/election/index.js'
import type { ControlMessage } from '../../src/election/messages.js'

/** How often a {@link StepMesh} ticks its nodes (ms). */
export const STEP_TICK = 100

/**
 * A few election nodes on a perfect network: every message arrives 5 ms after it is sent, ticks every 100 ms on
 * one shared clock. `cut` drops everything to and from a node, as a frozen process or a pulled cable would;
 * a `frozen` node neither ticks nor receives. Each test file adds what it asks of the mesh.
 */
export class StepMesh {
  now = 0
  readonly nodes = new Map<string, ElectionNode>()
  readonly cut = new Set<string>()
  readonly frozen = new Set<string>()
  readonly log: Array<{ at: number, id: string, e: ElectionEffect }> = []
  private queue: Array<{ at: number, to: string, m: ControlMessage }> = []

  /** `make(id, i)`: node i, started at time 0. */
  constructor (ids: string[], make: (id: string, index: number) => ElectionNode) {
    ids.forEach((id, i) => {
      const n = make(id, i)
      this.nodes.set(id, n)
      this.apply(id, n.start(0))
    })
  }

  get (id: string): ElectionNode {
    const n = this.nodes.get(id)
    if (n === undefined) throw new Error(id)
    return n
  }

  apply (id: string, effects: ElectionEffect[]): void {
    for (const e of effects) {
      this.log.push({ at: this.now, id, e })
      if (e.type !== 'publish' || this.cut.has(id)) continue
      for (const to of this.nodes.keys()) {
        if (to !== id && !this.cut.has(to)) this.queue.push({ at: this.now + 5, to, m: e.message })
      }
    }
  }

  /** Runs for `ms` in 1 ms steps: deliveries, and ticks every 100 ms. */
  run (ms: number): void {
    const end = this.now + ms
    while (this.now < end) {
      this.now += 1
      const due = this.queue.filter(q => q.at <= this.now)
      this.queue = this.queue.filter(q => q.at > this.now)
      for (const q of due) {
        if (this.frozen.has(q.to) || this.cut.has(q.to)) continue
        this.apply(q.to, this.get(q.to).receive(q.m, this.now))
      }
      if (this.now % STEP_TICK === 0) {
        for (const [id, n] of this.nodes) if (!this.frozen.has(id)) this.apply(id, n.tick(this.now))
      }
    }
  }

  coordinators (): string[] {
    return [...this.nodes].filter(([, n]) => n.isCoordinator(this.now)).map(([id]) => id)
  }

  runUntil (cond: () => boolean, maxMs: number): number {
    const start = this.now
    while (!cond()) {
      if (this.now - start > maxMs) throw new Error(`condition not met within ${maxMs} ms`)
      this.run(1)
    }
    return this.now - start
  }
}
