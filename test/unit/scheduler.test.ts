import { describe, expect, it } from 'vitest'
import { Scheduler } from '../../src/coordinator/scheduler.js'
import type {
  Assignment, JobSpec, SchedulerEffect, SchedulerEvent, TaskRef
} from '../../src/coordinator/scheduler-types.js'
import { UNCHECKED_SEAL } from '../support/sealed-job.js'

type Dispatch = Extract<SchedulerEffect, { type: 'dispatch' }>

function spec (jobId: string, maps: number, reduces: number, extra: Partial<JobSpec> = {}): JobSpec {
  return {
    jobId,
    jobName: 'wc',
    codeHash: 'sha256-x',
    splits: Array.from({ length: maps }, (_, i) => ({ document: `doc-${i}.txt`, index: i, offset: 0, length: 100, firstLine: 1 })),
    reduces,
    params: {},
    submitter: { peer: 'S', addrs: [] },
    maxAttempts: 3,
    seal: UNCHECKED_SEAL,
    ...extra
  }
}

const refOf = (t: Assignment): TaskRef => ({ jobId: t.jobId, kind: t.kind, index: t.index })
const dispatches = (effects: SchedulerEffect[]): Dispatch[] => effects.filter((e): e is Dispatch => e.type === 'dispatch')
const ofType = <T extends SchedulerEffect['type']>(effects: SchedulerEffect[], type: T): Array<Extract<SchedulerEffect, { type: T }>> =>
  effects.filter((e): e is Extract<SchedulerEffect, { type: T }> => e.type === type)
/** Dispatches as 'peer:kind index#attempt' strings: one line says what went where. */
const where = (effects: SchedulerEffect[]): string[] => dispatches(effects).map((d) => `${d.peer}:${d.task.kind}${d.task.index}#${d.task.attempt}`)

/** A scheduler with a clock and the dispatches it handed out that have not ended yet. */
class Harness {
  readonly s: Scheduler
  now = 0
  readonly log: SchedulerEffect[] = []

  /** Reduces start after every map unless a test says otherwise: most rules are easier to read one phase at a time. */
  constructor (self = 'C', config?: ConstructorParameters<typeof Scheduler>[0]['config'], deaths?: number[]) {
    this.s = new Scheduler({ self, config: { reduceSlowStart: 1, ...config }, deaths })
  }

  send (event: SchedulerEvent): SchedulerEffect[] {
    const out = this.s.handle(event)
    this.log.push(...out)
    return out
  }

  at (now: number): this { this.now = now; return this }
  up (peer: string, slots = 1, self?: boolean): SchedulerEffect[] { return this.send({ type: 'worker-up', peer, slots, self, now: this.now }) }
  down (peer: string): SchedulerEffect[] { return this.send({ type: 'worker-down', peer, now: this.now }) }
  submit (job: JobSpec): SchedulerEffect[] { return this.send({ type: 'submit', job, now: this.now }) }
  tick (): SchedulerEffect[] { return this.send({ type: 'tick', now: this.now }) }
  done (d: Dispatch, peer = d.peer): SchedulerEffect[] {
    return this.send({ type: 'task-done', ref: refOf(d.task), attempt: d.task.attempt, peer, now: this.now })
  }

  fail (d: Dispatch, cause: 'user' | 'worker' | 'fetch' | 'setup', extra: { message?: string, fetch?: { mapIndex: number, peer: string } } = {}): SchedulerEffect[] {
    return this.send({ type: 'task-failed', ref: refOf(d.task), attempt: d.task.attempt, peer: d.peer, cause, error: { message: extra.message ?? 'boom', stack: 'Error: boom\n    at map (job.js:1:1)' }, fetch: extra.fetch, now: this.now })
  }

  /** Completes every outstanding dispatch, in order, until the job table is empty or nothing is left. */
  drain (pending: Dispatch[]): void {
    while (pending.length > 0) {
      const d = pending.shift() as Dispatch
      pending.push(...dispatches(this.done(d)))
    }
  }
}

function find (effects: SchedulerEffect[], kind: 'map' | 'reduce', index: number): Dispatch {
  const d = dispatches(effects).find((x) => x.task.kind === kind && x.task.index === index)
  if (d === undefined) throw new Error(`no dispatch of ${kind} ${index} in ${JSON.stringify(where(effects))}`)
  return d
}


/**
 * A 2-map, 1-reduce job whose map was re-run at `peer` (the only worker left holding outputs): once that map is
 * done, reduce 0 runs again at `peer`, pulls both map outputs from it, and its success ends the job.
 */
function expectRerunFinishesJob (h: Harness, rerun: Dispatch, peer: string): void {
  const again = h.done(rerun)
  expect(where(again)).toEqual([`${peer}:reduce0#2`])
  expect(find(again, 'reduce', 0).task).toMatchObject({ sources: [{ mapIndex: 0, peer }, { mapIndex: 1, peer }] })
  expect(ofType(h.done(find(again, 'reduce', 0)), 'job-succeeded')).toHaveLength(1)
}

describe('who works', () => {
  it('a 1-node mesh runs jobs on the coordinator itself', () => {
    const h = new Harness('C')
    h.up('C', 2, true)
    const out = h.submit(spec('j', 3, 1))
    expect(where(out)).toEqual(['C:map0#1', 'C:map1#1'])
  })

  it('the coordinator is left out while another worker is up, and used again when it is alone', () => {
    const h = new Harness('C')
    h.up('C', 4) // recognised as self by its peer id, without the flag
    h.up('A', 1)
    const out = h.submit(spec('j', 3, 1))
    expect(where(out)).toEqual(['A:map0#1'])
    expect(where(h.down('A'))).toEqual(['C:map0#2', 'C:map1#1', 'C:map2#1'])
  })

  it('never runs more attempts on a worker than its slots, and spreads over the least loaded', () => {
    const h = new Harness()
    h.up('A', 2)
    h.up('B', 2)
    const out = h.submit(spec('j', 10, 1))
    expect(where(out)).toEqual(['A:map0#1', 'B:map1#1', 'A:map2#1', 'B:map3#1'])
    expect(dispatches(h.tick())).toEqual([])
    // Freed slot goes to the next map, on the worker that freed it (the only one with room).
    expect(where(h.done(find(out, 'map', 1)))).toEqual(['B:map4#1'])
  })

  it('weighs load by slots: a 3-slot worker takes three before a 1-slot worker takes a second', () => {
    const h = new Harness()
    h.up('A', 1)
    h.up('B', 3)
    expect(where(h.submit(spec('j', 4, 1)))).toEqual(['A:map0#1', 'B:map1#1', 'B:map2#1', 'B:map3#1'])
  })

  it('worker-up again is idempotent and updates slots', () => {
    const h = new Harness()
    h.up('A', 1)
    const first = h.submit(spec('j', 4, 1))
    expect(where(first)).toEqual(['A:map0#1'])
    expect(where(h.up('A', 1))).toEqual([])
    expect(where(h.up('A', 3))).toEqual(['A:map1#1', 'A:map2#1'])
    // Fewer slots stops nothing running, it just stops new dispatches.
    expect(where(h.up('A', 1))).toEqual([])
    expect(where(h.done(find(first, 'map', 0)))).toEqual([])
  })

  it('a worker that re-registers with a new incarnation restarted: its attempts are re-queued', () => {
    const h = new Harness()
    h.send({ type: 'worker-up', peer: 'A', slots: 1, incarnation: 'boot-1', now: 0 })
    expect(where(h.submit(spec('j', 1, 1)))).toEqual(['A:map0#1'])
    expect(where(h.send({ type: 'worker-up', peer: 'A', slots: 1, incarnation: 'boot-1', now: 1 }))).toEqual([])
    expect(where(h.send({ type: 'worker-up', peer: 'A', slots: 1, incarnation: 'boot-2', now: 2 }))).toEqual(['A:map0#2'])
  })
})

describe('phases', () => {
  it('dispatches reduces only when every map is done, with every map output location in map order', () => {
    const h = new Harness()
    h.up('A', 4)
    h.up('B', 4)
    const out = h.submit(spec('j', 2, 2))
    expect(where(out)).toEqual(['A:map0#1', 'B:map1#1'])
    const afterFirst = h.done(find(out, 'map', 1))
    expect(dispatches(afterFirst)).toEqual([])
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 1, total: 2 }, phase: 'map' })
    const afterAll = h.done(find(out, 'map', 0))
    expect(where(afterAll)).toEqual(['A:reduce0#1', 'B:reduce1#1'])
    for (const d of dispatches(afterAll)) {
      expect(d.task).toMatchObject({ kind: 'reduce', sources: [{ mapIndex: 0, peer: 'A' }, { mapIndex: 1, peer: 'B' }] })
    }
    expect(h.s.progress('j')?.phase).toBe('reduce')
    h.done(find(afterAll, 'reduce', 0))
    const end = h.done(find(afterAll, 'reduce', 1))
    expect(end.map((e) => e.type)).toEqual(['progress', 'job-succeeded', 'job-ended'])
    expect(ofType(end, 'job-ended')[0].peers).toEqual(['A', 'B'])
    expect(h.s.progress('j')).toEqual({ maps: { done: 2, total: 2 }, reduces: { done: 2, total: 2 }, running: 0, failedAttempts: 0, phase: 'done' })
  })

  it('a map task carries its split', () => {
    const h = new Harness()
    h.up('A')
    const job = spec('j', 1, 1)
    job.splits[0] = { document: 'big.txt', index: 0, offset: 4096, length: 2048, firstLine: 77 }
    expect(dispatches(h.submit(job))[0].task).toEqual({ kind: 'map', jobId: 'j', index: 0, attempt: 1, split: job.splits[0] })
  })

  it('a map over a block of a dataset goes to a node that holds the block when one has a free slot; the rest go anywhere', () => {
    const h = new Harness()
    for (const p of ['A', 'B', 'D']) h.up(p)
    const job = spec('j', 4, 1)
    const cid = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    job.splits = job.splits.map((s, i) => ({ ...s, block: { cid, hosts: i === 3 ? [] : [['D'], ['B'], ['D', 'A']][i] } }))
    // In queue order without locality, map 0 would go to A (the least loaded, first registered).
    expect(where(h.submit(job)).sort()).toEqual(['A:map2#1', 'B:map1#1', 'D:map0#1'])
    const first = dispatches(h.log)
    // Map 3 names no holder: it takes the first free slot.
    expect(where(h.done(first.find((d) => d.task.index === 1) as Dispatch))).toEqual(['B:map3#1'])
  })

  it('the map whose block has fewer free holders chooses first: both maps run where their blocks are', () => {
    const h = new Harness()
    for (const p of ['A', 'B']) h.up(p)
    const job = spec('j', 2, 1)
    const cid = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    // In queue order, map 0 (on A and B) would take A, the first registered, and leave map 1 (only on A) to pull its block.
    job.splits = job.splits.map((s, i) => ({ ...s, block: { cid, hosts: [['B', 'A'], ['A']][i] } }))
    expect(where(h.submit(job)).sort()).toEqual(['A:map1#1', 'B:map0#1'])
  })

  it('a job with no splits goes straight to its reduces, with no sources', () => {
    const h = new Harness()
    h.up('A')
    expect(dispatches(h.submit(spec('j', 0, 1)))[0].task).toEqual({ kind: 'reduce', jobId: 'j', index: 0, attempt: 1, sources: [], maps: 0 })
  })

  it('emits progress only when something changed', () => {
    const h = new Harness()
    h.up('A', 1)
    const out = h.submit(spec('j', 2, 1))
    expect(ofType(out, 'progress')).toEqual([{ type: 'progress', jobId: 'j', progress: { maps: { done: 0, total: 2 }, reduces: { done: 0, total: 1 }, running: 1, failedAttempts: 0, phase: 'map' } }])
    expect(ofType(h.tick(), 'progress')).toEqual([])
    expect(ofType(h.up('A', 1), 'progress')).toEqual([])
  })
})

describe('worker failures', () => {
  it('re-queues the running attempts of a worker that went down', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 1))
    expect(where(out)).toEqual(['A:map0#1', 'B:map1#1'])
    // B is busy, so map 0 waits for a slot; it does not run twice.
    expect(where(h.down('A'))).toEqual([])
    expect(h.s.progress('j')).toMatchObject({ running: 1, failedAttempts: 1 })
    expect(where(h.done(find(out, 'map', 1)))).toEqual(['B:map0#2'])
  })

  it('re-runs finished maps whose worker went down while reduces still need them; waiting reduces wait again', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 2))
    h.done(find(out, 'map', 0))
    const reduces = h.done(find(out, 'map', 1))
    expect(where(reduces)).toEqual(['A:reduce0#1', 'B:reduce1#1'])
    h.done(find(reduces, 'reduce', 1))
    // A held map 0 and ran reduce 0: both are gone; map 0 must be redone before reduce 0 runs again.
    const afterDown = h.down('A')
    expect(where(afterDown)).toEqual(['B:map0#2'])
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 1 }, reduces: { done: 1 }, phase: 'map' })
    expectRerunFinishesJob(h, find(afterDown, 'map', 0), 'B')
  })

  it('does not re-run a map whose output was lost if no reduce needs it any more', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 1))
    h.done(find(out, 'map', 0))
    const r = h.done(find(out, 'map', 1))
    h.done(find(r, 'reduce', 0))
    expect(h.down('A')).toEqual([])
  })

  it("cause 'worker' re-queues without counting toward maxAttempts", () => {
    const h = new Harness()
    h.up('A')
    let out = h.submit(spec('j', 1, 1, { maxAttempts: 1 }))
    for (let attempt = 1; attempt <= 5; attempt++) {
      const d = find(out, 'map', 0)
      expect(d.task.attempt).toBe(attempt)
      out = h.fail(d, 'worker')
    }
    expect(h.s.progress('j')).toMatchObject({ phase: 'map', failedAttempts: 5 })
  })

  it('a late task-done from a lost reduce attempt is kept (the part is at the submitter); a lost map output stays lost', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 2))
    h.done(find(out, 'map', 0))
    const r = h.done(find(out, 'map', 1))
    // A goes down with reduce 0 running and map 0's output; its reduce had already committed. B runs reduce 1,
    // and its map slot takes map 0 again.
    expect(where(h.down('A'))).toEqual(['B:map0#2'])
    expect(where(h.done(find(r, 'reduce', 0)))).toEqual([])
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 1 }, reduces: { done: 1 } })
    // A repeat of map 0's old report does not bring its output back.
    expect(h.done(find(out, 'map', 0))).toEqual([])
    expect(h.s.progress('j')?.maps.done).toBe(1)
  })

  it('a wrongly suspected worker that comes back and reports its lost map is believed', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 1))
    h.down('A')
    // While A is held for dead, its report cannot be used: nobody could fetch from it.
    expect(h.done(find(out, 'map', 0))).toEqual([])
    h.up('A')
    const again = h.done(find(out, 'map', 0))
    expect(h.s.progress('j')?.maps.done).toBe(1)
    expect(ofType(again, 'abandon')).toEqual([{ type: 'abandon', peer: 'A', ref: { jobId: 'j', kind: 'map', index: 0 }, attempt: 2 }])
  })
})

describe('refused orders', () => {
  const refuse = (h: Harness, d: Dispatch): SchedulerEffect[] => h.send({ type: 'task-refused', ref: refOf(d.task), attempt: d.task.attempt, peer: d.peer, now: h.now })

  it('a refused task goes to another worker at once, and the refusal is no failure of the job', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 3, 1))
    expect(where(out)).toEqual(['A:map0#1', 'B:map1#1'])
    const next = h.done(find(out, 'map', 1))
    expect(where(next)).toEqual(['B:map2#1'])
    // A refuses map 0: B is busy with map 2, A rests, so map 0 waits; nothing is counted as failed.
    expect(where(refuse(h, find(out, 'map', 0)))).toEqual([])
    expect(h.s.progress('j')).toMatchObject({ running: 1, failedAttempts: 0 })
    expect(where(h.done(find(next, 'map', 2)))).toEqual(['B:map0#2'])
  })

  it('a worker that refuses everything rests longer each time (250, 500, 1000 ms …); a report of finished work ends the run', () => {
    const h = new Harness()
    h.up('A')
    let d = find(h.submit(spec('j', 1, 1)), 'map', 0)
    const rests: number[] = []
    for (let i = 0; i < 5; i++) {
      const refusedAt = h.now
      expect(where(refuse(h, d))).toEqual([])
      let out: SchedulerEffect[] = []
      while (dispatches(out).length === 0) out = h.at(h.now + 50).tick()
      rests.push(h.now - refusedAt)
      d = find(out, 'map', 0)
    }
    expect(rests).toEqual([250, 500, 1000, 2000, 4000])
    const reduce = h.done(d)
    expect(where(reduce)).toEqual(['A:reduce0#1'])
    // The done report ended the run of refusals: the next refusal rests it 250 ms again.
    refuse(h, find(reduce, 'reduce', 0))
    h.at(h.now + 200)
    expect(where(h.tick())).toEqual([])
    expect(where(h.at(h.now + 50).tick())).toEqual(['A:reduce0#2'])
  })

  it('a worker that refused because it was busy with an older coordinator\'s task is back once it reports that output', () => {
    const h = new Harness()
    h.up('A')
    const out = h.submit(spec('j', 2, 1))
    expect(where(refuse(h, find(out, 'map', 0)))).toEqual([])
    // Its old-epoch attempt of map 1 finishes: the coordinator learns of the output, and A's slot is free now.
    expect(where(h.send({ type: 'map-output-known', jobId: 'j', mapIndex: 1, peer: 'A', now: h.now }))).toEqual(['A:map0#2'])
  })

  it('with its only other worker resting, the task waits: the coordinator\'s own node stays free', () => {
    const h = new Harness('C')
    h.up('C', 1, true)
    h.up('A', 1)
    const out = h.submit(spec('j', 1, 1))
    expect(where(out)).toEqual(['A:map0#1'])
    expect(where(refuse(h, find(out, 'map', 0)))).toEqual([])
    expect(where(h.at(250).tick())).toEqual(['A:map0#2'])
  })
})

describe('restarts', () => {
  it('a lost map reported by a peer that restarted since is not believed: its disk was wiped', () => {
    const h = new Harness()
    h.send({ type: 'worker-up', peer: 'A', slots: 1, incarnation: 'boot-1', now: 0 })
    h.up('B')
    const out = h.submit(spec('j', 2, 1))
    h.down('A')
    h.send({ type: 'worker-up', peer: 'A', slots: 1, incarnation: 'boot-2', now: 1 })
    expect(h.done(find(out, 'map', 0))).toEqual([])
    expect(h.s.progress('j')?.maps.done).toBe(0)
  })
})

describe('user failures', () => {
  it('retries on another worker, then fails the job with the user error after maxAttempts', () => {
    const h = new Harness()
    h.up('A', 2)
    h.up('B', 2)
    h.up('D', 2)
    const out = h.submit(spec('j', 4, 1, { maxAttempts: 3 }))
    expect(where(out)).toEqual(['A:map0#1', 'B:map1#1', 'D:map2#1', 'A:map3#1'])
    // A is as loaded as B and registered first, but the code just failed there.
    const second = h.fail(find(out, 'map', 0), 'user')
    expect(where(second)).toEqual(['B:map0#2'])
    const third = h.fail(find(second, 'map', 0), 'user', { message: 'second' })
    expect(where(third)).toEqual(['D:map0#3'])
    expect(h.s.progress('j')).toMatchObject({ failedAttempts: 2, phase: 'map' })
    const end = h.fail(find(third, 'map', 0), 'user', { message: 'TypeError: x is undefined' })
    expect(ofType(end, 'job-failed')).toEqual([{
      type: 'job-failed',
      jobId: 'j',
      error: { message: 'TypeError: x is undefined', stack: 'Error: boom\n    at map (job.js:1:1)', task: { jobId: 'j', kind: 'map', index: 0 } }
    }])
    // What still ran is abandoned; everyone who touched the job is told to clean up.
    expect(ofType(end, 'abandon').map((e) => `${e.peer}:${e.ref.kind}${e.ref.index}#${e.attempt}`)).toEqual(['B:map1#1', 'D:map2#1', 'A:map3#1'])
    expect(ofType(end, 'job-ended')).toEqual([{ type: 'job-ended', jobId: 'j', peers: ['A', 'B', 'D'] }])
    expect(h.s.progress('j')).toMatchObject({ phase: 'failed', running: 0, failedAttempts: 3 })
    // The job is over: nothing about it does anything any more.
    expect(h.done(find(out, 'map', 1))).toEqual([])
    expect(h.tick()).toEqual([])
  })

  it('waits for another worker rather than re-run where the code failed', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 1))
    expect(where(h.fail(find(out, 'map', 0), 'user'))).toEqual([])
    expect(where(h.done(find(out, 'map', 1)))).toEqual(['B:map0#2'])
  })

  it('re-runs on the same worker when there is no other', () => {
    const h = new Harness()
    h.up('A')
    const out = h.submit(spec('j', 1, 1))
    expect(where(h.fail(find(out, 'map', 0), 'user'))).toEqual(['A:map0#2'])
  })

  it('maxAttempts 1: the first user failure fails the job, with reduces too', () => {
    const h = new Harness()
    h.up('A')
    const out = h.submit(spec('j', 1, 1, { maxAttempts: 1 }))
    const r = h.done(find(out, 'map', 0))
    const end = h.fail(find(r, 'reduce', 0), 'user', { message: 'reduce threw' })
    expect(ofType(end, 'job-failed')[0].error).toMatchObject({ message: 'reduce threw', task: { kind: 'reduce', index: 0 } })
  })

  it('failures of different tasks do not add up', () => {
    const h = new Harness()
    h.up('A', 2)
    let out = h.submit(spec('j', 2, 1, { maxAttempts: 2 }))
    out = [...h.fail(find(out, 'map', 0), 'user'), ...h.fail(find(out, 'map', 1), 'user')]
    expect(ofType(out, 'job-failed')).toEqual([])
    h.drain(dispatches(out))
    expect(h.s.progress('j')?.phase).toBe('done')
  })
})

describe('fetch failures', () => {
  it('re-runs the map whose output could not be fetched, then the reduce, without counting', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 1, { maxAttempts: 1 }))
    h.done(find(out, 'map', 0))
    const r = h.done(find(out, 'map', 1))
    expect(where(r)).toEqual(['A:reduce0#1'])
    const afterFetch = h.fail(find(r, 'reduce', 0), 'fetch', { fetch: { mapIndex: 1, peer: 'B' } })
    expect(where(afterFetch)).toEqual(['A:map1#2'])
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 1 }, phase: 'map' })
    expectRerunFinishesJob(h, find(afterFetch, 'map', 1), 'A')
  })

  it('a fetch report about an old location does not re-run the map again', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 1, 2))
    const r = h.done(find(out, 'map', 0)) // map 0's output is at A
    expect(where(r)).toEqual(['A:reduce0#1', 'B:reduce1#1'])
    expect(where(h.fail(find(r, 'reduce', 1), 'fetch', { fetch: { mapIndex: 0, peer: 'A' } }))).toEqual(['B:map0#2'])
    // Reduce 0 cannot fetch from A either: map 0 is already being redone, so nothing new runs.
    expect(where(h.fail(find(r, 'reduce', 0), 'fetch', { fetch: { mapIndex: 0, peer: 'A' } }))).toEqual([])
    const again = h.done({ type: 'dispatch', peer: 'B', task: { kind: 'map', jobId: 'j', index: 0, attempt: 2, split: spec('j', 1, 1).splits[0] } })
    expect(where(again)).toEqual(['A:reduce0#2', 'B:reduce1#2'])
    // A late report naming A after map 0 moved to B is stale: only the reduce runs again.
    expect(where(h.fail(find(again, 'reduce', 0), 'fetch', { fetch: { mapIndex: 0, peer: 'A' } }))).toEqual(['A:reduce0#3'])
    expect(h.s.progress('j')?.maps.done).toBe(1)
    expect(h.s.progress('j')?.failedAttempts).toBe(3)
  })
})

describe('stragglers', () => {
  /** 5 maps on 3 workers; all but map 4 finish at t=1000 (median 1000 → threshold max(2000, 2×1000)). */
  function tail (): { h: Harness, out: SchedulerEffect[] } {
    const h = new Harness()
    h.up('A', 2)
    h.up('B', 2)
    h.up('D', 2)
    const out = h.submit(spec('j', 5, 1))
    expect(where(out)).toEqual(['A:map0#1', 'B:map1#1', 'D:map2#1', 'A:map3#1', 'B:map4#1'])
    h.at(1000)
    for (let i = 0; i < 4; i++) h.done(find(out, 'map', i))
    return { h, out }
  }

  it('backs up a slow task in the tail, on another worker, and the first to finish wins', () => {
    const { h, out } = tail()
    expect(where(h.at(2000).tick())).toEqual([]) // elapsed 2000 is not > 2000
    expect(where(h.at(2000).send({ type: 'worker-up', peer: 'A', slots: 2, now: 2001 }))).toEqual([]) // backups only on tick
    const backup = h.at(2001).tick()
    expect(where(backup)).toEqual(['A:map4#2'])
    expect(where(h.at(2500).tick())).toEqual([]) // one backup only
    const win = h.at(2600).done(find(backup, 'map', 4))
    expect(ofType(win, 'abandon')).toEqual([{ type: 'abandon', peer: 'B', ref: { jobId: 'j', kind: 'map', index: 4 }, attempt: 1 }])
    expect(find(win, 'reduce', 0).task).toMatchObject({ sources: [{ peer: 'A' }, { peer: 'B' }, { peer: 'D' }, { peer: 'A' }, { peer: 'A' }] })
    // The slow original finishing afterwards is a duplicate: ignored, and map 4 stays where it was first.
    expect(h.at(2700).done(find(out, 'map', 4))).toEqual([])
    const retry = h.fail(find(win, 'reduce', 0), 'worker')
    expect(find(retry, 'reduce', 0).task).toMatchObject({ sources: [{ peer: 'A' }, { peer: 'B' }, { peer: 'D' }, { peer: 'A' }, { peer: 'A' }] })
  })

  it('the original can still win: the backup is abandoned and the first location kept', () => {
    const { h, out } = tail()
    const backup = h.at(2001).tick()
    const win = h.at(2100).done(find(out, 'map', 4))
    expect(ofType(win, 'abandon')).toEqual([{ type: 'abandon', peer: 'A', ref: { jobId: 'j', kind: 'map', index: 4 }, attempt: 2 }])
    expect(find(win, 'reduce', 0).task).toMatchObject({ sources: [{ peer: 'A' }, { peer: 'B' }, { peer: 'D' }, { peer: 'A' }, { peer: 'B' }] })
    expect(h.at(2200).done(find(backup, 'map', 4))).toEqual([])
  })

  it('the threshold follows the median of the phase: slow jobs are not flooded with backups', () => {
    const h = new Harness()
    h.up('A', 2)
    h.up('B', 2)
    h.up('D', 2)
    const out = h.submit(spec('j', 5, 1))
    h.at(5000)
    for (let i = 0; i < 4; i++) h.done(find(out, 'map', i))
    expect(where(h.at(10_000).tick())).toEqual([])
    expect(where(h.at(10_001).tick())).toEqual(['A:map4#2'])
  })

  it('no backup before the tail of the phase', () => {
    const h = new Harness()
    h.up('A', 10)
    h.up('B', 10)
    const out = h.submit(spec('j', 10, 1))
    h.at(100)
    for (let i = 0; i < 7; i++) h.done(find(out, 'map', i)) // 3 left > 0.2 × 10
    expect(where(h.at(60_000).tick())).toEqual([])
    h.done(find(out, 'map', 7)) // 2 left ≤ 2
    expect(where(h.at(60_001).tick())).toEqual(['B:map8#2', 'A:map9#2'])
  })

  it('reduces get backups too, and never on the worker already running the task', () => {
    const h = new Harness()
    h.up('A', 1)
    h.up('B', 1)
    const out = h.submit(spec('j', 1, 1))
    const r = h.at(100).done(find(out, 'map', 0))
    expect(where(r)).toEqual(['A:reduce0#1'])
    expect(where(h.at(2101).tick())).toEqual(['B:reduce0#2'])
  })

  it('fast tasks never get a backup', () => {
    const h = new Harness()
    h.up('A', 2)
    h.up('B', 2)
    const pending = dispatches(h.submit(spec('j', 6, 3)))
    let t = 0
    while (pending.length > 0) {
      t += 300
      h.at(t).tick()
      const d = pending.shift() as Dispatch
      pending.push(...dispatches(h.done(d)))
    }
    const runs = where(h.log)
    expect(runs.every((x) => x.endsWith('#1'))).toBe(true)
    expect(runs).toHaveLength(9)
  })
})

describe('duplicates and stale reports', () => {
  it('ignores a second task-done, an unknown attempt, a wrong peer, and events about unknown jobs', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 1))
    const d0 = find(out, 'map', 0)
    expect(h.send({ type: 'task-done', ref: refOf(d0.task), attempt: 7, peer: 'A', now: 1 })).toEqual([])
    expect(h.send({ type: 'task-done', ref: refOf(d0.task), attempt: 1, peer: 'B', now: 1 })).toEqual([])
    expect(h.send({ type: 'task-done', ref: { jobId: 'j', kind: 'map', index: 9 }, attempt: 1, peer: 'A', now: 1 })).toEqual([])
    expect(h.send({ type: 'task-done', ref: { jobId: 'nope', kind: 'map', index: 0 }, attempt: 1, peer: 'A', now: 1 })).toEqual([])
    expect(h.done(d0).length).toBeGreaterThan(0)
    expect(h.done(d0)).toEqual([])
    expect(h.fail(d0, 'user')).toEqual([])
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 1 }, failedAttempts: 0 })
  })

  it('a failure report for an attempt already lost with its worker is not counted twice', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 1, 1, { maxAttempts: 1 }))
    h.down('A')
    expect(ofType(h.fail(find(out, 'map', 0), 'user'), 'job-failed')).toEqual([])
  })

  it('attempt numbers grow per task and are never reused', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    let out = h.submit(spec('j', 1, 1, { maxAttempts: 10 }))
    const seen: number[] = []
    for (let i = 0; i < 6; i++) {
      const d = find(out, 'map', 0)
      seen.push(d.task.attempt)
      out = i % 2 === 0 ? h.fail(d, 'worker') : [...h.down(d.peer), ...h.up(d.peer)]
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6])
  })

  it('a repeated submit is a no-op that answers with the progress', () => {
    const h = new Harness()
    h.up('A')
    const job = spec('j', 2, 1)
    h.submit(job)
    expect(h.submit(job)).toEqual([{ type: 'progress', jobId: 'j', progress: h.s.progress('j') }])
    expect(h.s.jobs()).toEqual(['j'])
  })

  it('refuses a malformed spec before changing anything', () => {
    const h = new Harness()
    expect(() => h.submit(spec('j', 1, 0))).toThrow(RangeError)
    expect(() => h.submit(spec('j', 1, 1, { maxAttempts: 0 }))).toThrow(RangeError)
    const bad = spec('j', 2, 1)
    bad.splits[1] = { ...bad.splits[1], index: 5 }
    expect(() => h.submit(bad)).toThrow(/splits\[1\]/)
    expect(h.s.jobs()).toEqual([])
  })
})

describe('rebuild after a coordinator change', () => {
  it('runs only what is missing, whether the inventory comes before or after the submit', () => {
    const h = new Harness()
    h.up('A', 2)
    h.up('B', 2)
    h.send({ type: 'map-output-known', jobId: 'j', mapIndex: 0, peer: 'A', now: 0 })
    h.send({ type: 'reduce-committed', jobId: 'j', partition: 0, now: 0 })
    const out = h.submit(spec('j', 3, 2))
    expect(where(out)).toEqual(['A:map1#1', 'B:map2#1'])
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 1 }, reduces: { done: 1 } })
    // Map 1's output turns up in B's inventory after the submit: its running attempt is no longer needed.
    const late = h.send({ type: 'map-output-known', jobId: 'j', mapIndex: 1, peer: 'B', now: 1 })
    expect(ofType(late, 'abandon')).toEqual([{ type: 'abandon', peer: 'A', ref: { jobId: 'j', kind: 'map', index: 1 }, attempt: 1 }])
    const r = h.done(find(out, 'map', 2))
    expect(where(r)).toEqual(['A:reduce1#1'])
    expect(find(r, 'reduce', 1).task).toMatchObject({ sources: [{ mapIndex: 0, peer: 'A' }, { mapIndex: 1, peer: 'B' }, { mapIndex: 2, peer: 'B' }] })
    expect(ofType(h.done(find(r, 'reduce', 1)), 'job-succeeded')).toHaveLength(1)
    expect(where(h.log).filter((x) => x.includes('reduce0'))).toEqual([])
  })

  it('a job whose parts are all committed succeeds at once and runs nothing', () => {
    const h = new Harness()
    h.up('A')
    h.send({ type: 'reduce-committed', jobId: 'j', partition: 0, now: 0 })
    h.send({ type: 'reduce-committed', jobId: 'j', partition: 1, now: 0 })
    const out = h.submit(spec('j', 4, 2))
    expect(dispatches(out)).toEqual([])
    expect(ofType(out, 'job-succeeded')).toHaveLength(1)
  })

  it('forgets an early inventory entry whose peer went down before the submit', () => {
    const h = new Harness()
    h.up('A')
    h.up('B')
    h.send({ type: 'map-output-known', jobId: 'j', mapIndex: 0, peer: 'A', now: 0 })
    h.down('A')
    expect(where(h.submit(spec('j', 1, 1)))).toEqual(['B:map0#1'])
  })

  it('an inventory from a peer not registered yet counts, and that peer is watched for worker-down', () => {
    const h = new Harness()
    h.up('B')
    h.send({ type: 'map-output-known', jobId: 'j', mapIndex: 0, peer: 'X', now: 0 })
    const out = h.submit(spec('j', 2, 1))
    expect(where(out)).toEqual(['B:map1#1']) // X has no slots: it holds, it does not work
    expect(where(h.down('X'))).toEqual([])
    expect(h.s.progress('j')?.maps.done).toBe(0)
  })
})

describe('jobs side by side', () => {
  it('serves jobs FIFO and both finish', () => {
    const h = new Harness()
    h.up('A', 2)
    h.up('B', 1)
    const a = h.submit(spec('first', 2, 1))
    const b = h.submit(spec('second', 2, 2))
    expect(dispatches(a).map((d) => d.task.jobId)).toEqual(['first', 'first'])
    expect(dispatches(b).map((d) => d.task.jobId)).toEqual(['second'])
    h.drain([...dispatches(a), ...dispatches(b)])
    expect(ofType(h.log, 'job-succeeded').map((e) => e.jobId)).toEqual(['first', 'second'])
    expect(h.s.jobs()).toEqual(['first', 'second'])
    expect(h.s.progress('first')?.phase).toBe('done')
    expect(h.s.progress('second')?.phase).toBe('done')
  })

  it('cancel abandons what runs, ends the job, and leaves the other job alone', () => {
    const h = new Harness()
    h.up('A', 2)
    const a = h.submit(spec('first', 1, 1))
    const b = h.submit(spec('second', 1, 1))
    const out = h.send({ type: 'cancel', jobId: 'first', reason: 'submitter gone', now: 1 })
    expect(ofType(out, 'abandon')).toEqual([{ type: 'abandon', peer: 'A', ref: { jobId: 'first', kind: 'map', index: 0 }, attempt: 1 }])
    expect(ofType(out, 'job-ended')).toEqual([{ type: 'job-ended', jobId: 'first', peers: ['A'] }])
    expect(ofType(out, 'job-failed')).toEqual([])
    expect(h.s.progress('first')?.phase).toBe('failed')
    expect(h.done(find(a, 'map', 0))).toEqual([])
    h.drain(dispatches(b))
    expect(h.s.progress('second')?.phase).toBe('done')
  })

  it('a cancel that comes before the submit keeps the job from starting', () => {
    const h = new Harness()
    h.up('A')
    h.send({ type: 'cancel', jobId: 'j', reason: 'submitter gone', now: 0 })
    const out = h.submit(spec('j', 1, 1))
    expect(dispatches(out)).toEqual([])
    expect(ofType(out, 'job-ended')).toHaveLength(1)
    expect(h.s.progress('j')?.phase).toBe('failed')
  })

  it('forget lets a cancelled job start afresh on its next submit, with no stale attempt counted', () => {
    const h = new Harness()
    h.up('A')
    h.submit(spec('j', 2, 1))
    h.send({ type: 'cancel', jobId: 'j', reason: 'submitter gone', now: 1 })
    expect(dispatches(h.submit(spec('j', 2, 1)))).toEqual([])
    h.send({ type: 'forget', jobId: 'j', now: 2 })
    const again = h.submit(spec('j', 2, 1))
    expect(where(again)).toEqual(['A:map0#1'])
    expect(h.s.jobs()).toEqual(['j'])
    h.drain(dispatches(again))
    expect(h.s.progress('j')?.phase).toBe('done')
  })

  it('forget leaves a running job alone', () => {
    const h = new Harness()
    h.up('A')
    const first = h.submit(spec('j', 1, 1))
    h.send({ type: 'forget', jobId: 'j', now: 1 })
    expect(dispatches(h.submit(spec('j', 1, 1)))).toEqual([])
    h.drain(dispatches(first))
    expect(h.s.progress('j')?.phase).toBe('done')
  })

  it('keeps early facts of at most 64 unsubmitted jobs: made-up job ids cannot grow the table without end', () => {
    const h = new Harness()
    h.up('A')
    for (let j = 0; j <= 64; j++) h.send({ type: 'map-output-known', jobId: `j${j}`, mapIndex: 0, peer: 'A', now: 0 })
    // The oldest was dropped: its map runs; the newest was kept: its map is done already.
    expect(where(h.submit(spec('j0', 1, 1)))).toEqual(['A:map0#1'])
    const h2 = new Harness()
    h2.up('A')
    for (let j = 0; j <= 64; j++) h2.send({ type: 'map-output-known', jobId: `j${j}`, mapIndex: 0, peer: 'A', now: 0 })
    expect(where(h2.submit(spec('j64', 1, 1)))).toEqual(['A:reduce0#1'])
  })
})

describe('streaming jobs: nodes that run no commands, and commands a node lacks', () => {
  const streaming = { mapper: 'python3 mapper.py', reducer: 'cat', files: [], env: {} }
  const noExec = (h: Harness, peer: string): SchedulerEffect[] => h.send({ type: 'worker-up', peer, slots: 2, noExec: 'this node was started with --no-exec', now: h.now })

  it('sends a streaming job\'s tasks only to nodes that run commands, a module job\'s to every node', () => {
    const h = new Harness()
    h.up('C', 2, true)
    noExec(h, 'A')
    h.up('B', 2)
    const s = where(h.submit(spec('s', 4, 1, { streaming })))
    expect(s).toEqual(['B:map0#1', 'B:map1#1'])
    const m = where(h.submit(spec('m', 2, 1)))
    expect(m).toEqual(['A:map0#1', 'A:map1#1'])
  })

  it('a --no-exec node that is the only other worker leaves the job to the coordinator\'s own node', () => {
    const h = new Harness()
    h.up('C', 1, true)
    noExec(h, 'A')
    expect(where(h.submit(spec('s', 1, 1, { streaming })))).toEqual(['C:map0#1'])
  })

  it('a command not found (setup) moves on to the next node without spending attempts, and fails the job once no node is left', () => {
    const h = new Harness()
    h.up('C', 1, true)
    h.up('A', 1)
    h.up('B', 1)
    noExec(h, 'N')
    let d = dispatches(h.submit(spec('s', 1, 1, { streaming, maxAttempts: 1 })))
    const tried: string[] = []
    for (let i = 0; i < 10 && d.length > 0; i++) {
      tried.push(d[0].peer)
      d = dispatches(h.fail(d[0], 'setup', { message: `mapper command not found on node ${d[0].peer}: not found` }))
    }
    // One try per node that runs commands (the coordinator's own last), none on N, though maxAttempts is 1.
    expect(tried).toEqual(['A', 'B', 'C'])
    const failed = ofType(h.log, 'job-failed')
    expect(failed).toHaveLength(1)
    expect(failed[0].error.message).toBe('mapper command not found on node C: not found')
  })

  it('a job no live node can run fails after noWorkerAbleMs with their reason, unless one that can registers first', () => {
    const h = new Harness('C', { noWorkerAbleMs: 10_000 })
    noExec(h, 'A')
    expect(where(h.submit(spec('waits', 1, 1, { streaming })))).toEqual([])
    h.at(9_000).tick()
    expect(ofType(h.log, 'job-failed')).toHaveLength(0)
    expect(where(h.at(9_500).up('B', 1))).toEqual(['B:map0#1'])
    h.submit(spec('stuck', 1, 1, { streaming }))
    h.at(15_000).tick()
    expect(ofType(h.log, 'job-failed')).toHaveLength(0)
    h.at(20_000).tick()
    // B is busy with the first job, not unable: the second waits on.
    expect(ofType(h.log, 'job-failed')).toHaveLength(0)
    h.down('B')
    h.at(21_000).tick()
    h.at(31_000).tick()
    const failed = ofType(h.log, 'job-failed').map((e) => [e.jobId, e.error.message])
    expect(failed).toEqual([
      ['waits', 'no node of this mesh runs streaming commands (node A: this node was started with --no-exec)'],
      ['stuck', 'no node of this mesh runs streaming commands (node A: this node was started with --no-exec)']
    ])
  })
})

describe('reduces started early (slow start) and map outputs kept by reducers', () => {
  /** Reports that attempt `d` of a reduce pulled these maps (or could not fetch one), then what it may pull now. */
  const pulled = (h: Harness, d: Dispatch, maps: number[], failed?: { mapIndex: number, peer: string }): SchedulerEffect[] =>
    h.send({ type: 'reduce-pulled', ref: refOf(d.task), attempt: d.task.attempt, peer: d.peer, maps, failed, now: h.now })

  it('dispatches reduces once the slow-start share of maps is done, on reduce slots that leave the map slots to maps', () => {
    const h = new Harness('C', { reduceSlowStart: 0.5 })
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 4, 2))
    expect(where(out)).toEqual(['A:map0#1', 'B:map1#1'])
    const next = h.done(find(out, 'map', 0))
    // One map of four is not half: only the next map goes out.
    expect(where(next)).toEqual(['A:map2#1'])
    const half = h.done(find(out, 'map', 1))
    // Two of four: both reduces start, beside the maps, with the two outputs there are and the count of all.
    expect(where(half)).toEqual(['B:map3#1', 'A:reduce0#1', 'B:reduce1#1'])
    expect(find(half, 'reduce', 0).task).toMatchObject({ sources: [{ mapIndex: 0, peer: 'A' }, { mapIndex: 1, peer: 'B' }], maps: 4 })
    const r0 = find(half, 'reduce', 0)
    expect(h.s.reduceSources(refOf(r0.task), r0.task.attempt, 'A')).toEqual({ sources: [{ mapIndex: 0, peer: 'A' }, { mapIndex: 1, peer: 'B' }], stop: false, complete: false })
    pulled(h, r0, [0, 1])
    h.done(find(next, 'map', 2))
    // What it pulled is not offered again; the new output is.
    expect(h.s.reduceSources(refOf(r0.task), r0.task.attempt, 'A')).toEqual({ sources: [{ mapIndex: 2, peer: 'A' }], stop: false, complete: false })
    // Not its attempt, not its peer, or not a reduce: stop.
    expect(h.s.reduceSources(refOf(r0.task), r0.task.attempt, 'B').stop).toBe(true)
    expect(h.s.reduceSources(refOf(r0.task), 9, 'A').stop).toBe(true)
    expect(h.s.reduceSources({ jobId: 'j', kind: 'map', index: 0 }, 1, 'A').stop).toBe(true)
  })

  it('keeps a map output that every reduce still running has pulled when its holder dies, and re-runs it once one of them is lost', () => {
    const h = new Harness('C', { reduceSlowStart: 0 })
    h.up('A')
    h.up('B')
    h.up('D')
    const out = h.submit(spec('j', 3, 2))
    expect(where(out)).toEqual(['A:map0#1', 'B:map1#1', 'D:map2#1', 'A:reduce0#1', 'B:reduce1#1'])
    const [r0, r1] = [find(out, 'reduce', 0), find(out, 'reduce', 1)]
    h.done(find(out, 'map', 2))
    pulled(h, r0, [2])
    pulled(h, r1, [2])
    // D held map 2's output, and both reduces have it on their own disks: nothing to run again.
    expect(where(h.down('D'))).toEqual([])
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 1 }, mapOutputs: { kept: 1, lostDown: 0, lostFetch: 0 } })
    // Nobody can serve it now, so it is offered to nobody.
    expect(h.s.reduceSources(refOf(r0.task), 1, 'A').sources).toEqual([])
    // B dies with reduce 1 (and map 1): map 2 is needed again by the reduce that will start anew, map 1 too.
    // A's map slot is busy with map 0.
    expect(where(h.down('B'))).toEqual([])
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 0 }, mapOutputs: { kept: 1, lostDown: 1 } })
    const m0 = h.done(find(out, 'map', 0))
    expect(where(m0)).toEqual(['A:map1#2'])
    expect(where(h.done(find(m0, 'map', 1)))).toEqual(['A:map2#2'])
  })

  it('a map output a reducer could not fetch runs again while that reduce goes on; a stale report condemns nothing', () => {
    const h = new Harness('C', { reduceSlowStart: 0 })
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 1))
    const r0 = find(out, 'reduce', 0)
    h.done(find(out, 'map', 0))
    h.done(find(out, 'map', 1))
    expect(where(pulled(h, r0, [0], { mapIndex: 1, peer: 'A' }))).toEqual([])
    const again = pulled(h, r0, [], { mapIndex: 1, peer: 'B' })
    expect(where(again)).toEqual(['A:map1#2'])
    expect(h.s.progress('j')).toMatchObject({ running: 2, mapOutputs: { lostFetch: 1 } })
    h.done(find(again, 'map', 1))
    expect(h.s.reduceSources(refOf(r0.task), 1, r0.peer)).toEqual({ sources: [{ mapIndex: 1, peer: 'A' }], stop: false, complete: false })
  })

  it('runs a lost map again where this job has run the fewest maps, not where it ran the most', () => {
    const h = new Harness('C', { reduceSlowStart: 1 })
    h.up('A')
    h.up('B')
    h.up('D')
    const out = h.submit(spec('j', 6, 1))
    expect(where(out)).toEqual(['A:map0#1', 'B:map1#1', 'D:map2#1'])
    // A is quick: it takes maps 3, 4 and 5 too.
    let a = find(out, 'map', 0)
    for (const next of [3, 4, 5]) {
      a = find(h.done(a), 'map', next)
      expect(a.peer).toBe('A')
    }
    h.done(a)
    h.done(find(out, 'map', 1))
    expect(where(h.done(find(out, 'map', 2)))).toEqual(['A:reduce0#1'])
    // B dies: its map goes to D (one map of this job so far), though A is as idle and registered first.
    expect(where(h.down('B'))).toEqual(['D:map1#2'])
  })

  it('times a reduce started early from when the maps were all done: its wait is not slowness', () => {
    const h = new Harness('C', { reduceSlowStart: 0, backupMinElapsedMs: 2_000 })
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 1, 1))
    expect(where(out)).toEqual(['A:map0#1', 'A:reduce0#1'])
    h.at(60_000)
    h.done(find(out, 'map', 0))
    // A minute after its dispatch, a second after the last map: no backup.
    expect(where(h.at(61_000).tick())).toEqual([])
    // Slow by its own work now.
    expect(where(h.at(63_000).tick())).toEqual(['B:reduce0#2'])
  })
})

describe('intermediate replicas: a map output copied to a second node before the map counts as done', () => {
  const replicated = (h: Harness, mapIndex: number, peer: string, ok = true): SchedulerEffect[] =>
    h.send({ type: 'map-replicated', jobId: 'j', mapIndex, peer, ok, now: h.now })
  const copies = (effects: SchedulerEffect[]): string[] => ofType(effects, 'replicate').map((e) => `${e.from}->${e.peer}:map${e.mapIndex}`)

  it('is done once the copy is made, and lives on when its mapper dies', () => {
    const h = new Harness('C', { reduceSlowStart: 1 })
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 1, 1, { intermediateReplicas: 2 }))
    const done = h.done(find(out, 'map', 0))
    expect(copies(done)).toEqual(['A->B:map0'])
    expect(h.s.progress('j')?.maps.done).toBe(0)
    const r = replicated(h, 0, 'B')
    expect(h.s.progress('j')?.maps.done).toBe(1)
    expect(find(r, 'reduce', 0).task).toMatchObject({ sources: [{ mapIndex: 0, peer: 'A' }] })
    // A dies with reduce 0: map 0 is not run again, the next reduce attempt pulls it from B.
    const down = h.down('A')
    expect(where(down)).toEqual(['B:reduce0#2'])
    expect(find(down, 'reduce', 0).task).toMatchObject({ sources: [{ mapIndex: 0, peer: 'B' }] })
    expect(h.s.progress('j')?.mapOutputs).toEqual({ lostDown: 0, lostFetch: 0, kept: 0, copied: 1 })
  })

  it('runs the map again when its mapper dies before the copy is made; a failed copy goes to the next node, and with none left the map is done with one copy', () => {
    const h = new Harness('C', { reduceSlowStart: 1 })
    h.up('A')
    h.up('B')
    h.up('D')
    const out = h.submit(spec('j', 1, 1, { intermediateReplicas: 2 }))
    expect(copies(h.done(find(out, 'map', 0)))).toEqual(['A->B:map0'])
    expect(copies(replicated(h, 0, 'B', false))).toEqual(['A->D:map0'])
    // A late answer from B changes nothing: the copy is D's now.
    expect(replicated(h, 0, 'B')).toEqual([])
    const again = h.down('A')
    expect(where(again)).toEqual(['B:map0#2'])
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 0 }, mapOutputs: { lostDown: 1 } })
    expect(copies(h.done(find(again, 'map', 0)))).toEqual(['B->D:map0'])
    h.down('D')
    // D went down while copying, and every other node has been tried: done with B's copy alone.
    expect(h.s.progress('j')?.maps.done).toBe(1)
  })
})

describe('intermediate replicas and a coordinator change', () => {
  it('an inventory that names a map being copied finishes it once; the copy that answers later changes nothing', () => {
    const h = new Harness('C', { reduceSlowStart: 1 })
    h.up('A')
    h.up('B')
    const out = h.submit(spec('j', 2, 1, { intermediateReplicas: 2 }))
    h.done(find(out, 'map', 0))
    h.send({ type: 'map-output-known', jobId: 'j', mapIndex: 0, peer: 'A', now: h.now })
    expect(h.s.progress('j')?.maps.done).toBe(1)
    h.send({ type: 'map-replicated', jobId: 'j', mapIndex: 0, peer: 'B', ok: true, now: h.now })
    expect(h.s.progress('j')?.maps.done).toBe(1)
  })
})

describe('a mesh that churns: second copies without --intermediate-replicas', () => {
  const copies = (effects: SchedulerEffect[]): string[] => ofType(effects, 'replicate').map((e) => `${e.from}->${e.peer}:map${e.mapIndex}`)
  /** Workers A and B up, then X and Y up and down at `t` and `t + gap`: two deaths. */
  function churned (h: Harness, t: number, gap: number): void {
    h.at(t).up('X')
    h.up('Y')
    h.down('X')
    h.at(t + gap).down('Y')
  }

  it('two worker deaths within a minute: maps that finish from then on are copied, until a minute passes with none', () => {
    const h = new Harness('C', { reduceSlowStart: 1 })
    h.up('A')
    h.up('B')
    churned(h, 0, 59_000)
    const out = h.at(60_000).submit(spec('j', 2, 1))
    expect(copies(h.done(find(out, 'map', 0)))).toEqual(['A->B:map0'])
    h.send({ type: 'map-replicated', jobId: 'j', mapIndex: 0, peer: 'B', ok: true, now: h.now })
    expect(h.s.progress('j')).toMatchObject({ maps: { done: 1 }, mapOutputs: { copied: 1 } })
    // A minute after the last death the mesh is calm again: map 1 is done on its own.
    const late = h.at(119_000).done(find(out, 'map', 1))
    expect(copies(late)).toEqual([])
    expect(h.s.progress('j')?.maps.done).toBe(2)
  })

  it('one death, two a minute apart, or the deaths of nodes that run no tasks: no copies', () => {
    for (const [gap, slots] of [[undefined, 1], [60_000, 1], [1_000, 0]] as const) {
      const h = new Harness('C', { reduceSlowStart: 1 })
      h.up('A')
      h.up('B')
      h.up('X', slots)
      h.down('X')
      if (gap !== undefined) {
        h.up('Y', slots)
        h.at(gap).down('Y')
      }
      const out = h.submit(spec('j', 1, 1))
      expect(copies(h.done(find(out, 'map', 0))), `gap ${String(gap)}, slots ${slots}`).toEqual([])
    }
  })

  it('a scheduler started with the deaths its predecessor on this node saw (a lease that lapsed and came back) churns at once', () => {
    const before = new Harness('C', { reduceSlowStart: 1 })
    before.up('X')
    before.down('X')
    before.up('Y')
    before.at(1_000).down('Y')
    expect(before.s.recentDeaths()).toEqual([0, 1_000])
    const h = new Harness('C', { reduceSlowStart: 1 }, before.s.recentDeaths())
    h.up('A')
    h.up('B')
    const out = h.at(5_000).submit(spec('j', 1, 1))
    expect(copies(h.done(find(out, 'map', 0)))).toEqual(['A->B:map0'])
    const calm = new Harness('C', { reduceSlowStart: 1 }, [1_000])
    calm.up('A')
    calm.up('B')
    const one = calm.at(5_000).submit(spec('j', 1, 1))
    expect(copies(calm.done(find(one, 'map', 0)))).toEqual([])
  })

  it('workers the runtime saw restart before this scheduler began (restarted) count as deaths, once each', () => {
    const h = new Harness('C', { reduceSlowStart: 1 })
    h.up('A')
    h.send({ type: 'worker-up', peer: 'B', slots: 1, incarnation: 'b2', restarted: true, now: 0 })
    // Registering again (as workers do every few seconds) is not another death.
    h.send({ type: 'worker-up', peer: 'B', slots: 1, incarnation: 'b2', restarted: true, now: 500 })
    const one = h.at(1_000).submit(spec('j', 1, 1))
    expect(copies(h.done(find(one, 'map', 0)))).toEqual([])
    h.send({ type: 'worker-up', peer: 'D', slots: 1, incarnation: 'd2', restarted: true, now: 1_000 })
    const two = h.submit(spec('k', 1, 1))
    expect(copies(h.done(find(two, 'map', 0)))).toHaveLength(1)
  })

  it('a worker this scheduler saw go down and come back under a new boot id is one death, not two', () => {
    const h = new Harness('C', { reduceSlowStart: 1 })
    h.up('A')
    h.send({ type: 'worker-up', peer: 'B', slots: 1, incarnation: 'b1', now: 0 })
    h.down('B')
    h.send({ type: 'worker-up', peer: 'B', slots: 1, incarnation: 'b2', restarted: true, now: 2_000 })
    const out = h.at(3_000).submit(spec('j', 1, 1))
    expect(copies(h.done(find(out, 'map', 0)))).toEqual([])
  })

  it('a node back under a new boot id counts as a death; --intermediate-replicas 1 turns the copies off; churnDeaths 0 never makes any', () => {
    const h = new Harness('C', { reduceSlowStart: 1 })
    h.up('A')
    h.send({ type: 'worker-up', peer: 'B', slots: 1, incarnation: 'boot-1', now: 0 })
    h.send({ type: 'worker-up', peer: 'B', slots: 1, incarnation: 'boot-2', now: 1_000 })
    h.send({ type: 'worker-up', peer: 'B', slots: 1, incarnation: 'boot-3', now: 2_000 })
    const auto = h.at(3_000).submit(spec('j', 1, 1))
    expect(copies(h.done(find(auto, 'map', 0)))).toHaveLength(1)
    const one = h.submit(spec('k', 1, 1, { intermediateReplicas: 1 }))
    expect(copies(h.done(find(one, 'map', 0)))).toEqual([])

    const off = new Harness('C', { reduceSlowStart: 1, churnDeaths: 0 })
    off.up('A')
    off.up('B')
    churned(off, 0, 1_000)
    const out = off.submit(spec('j', 1, 1))
    expect(copies(off.done(find(out, 'map', 0)))).toEqual([])
  })
})
