/**
 * A seeded simulation around the coordinator's Scheduler: a fake clock, a
 * mesh of workers that run (or fail, or straggle on) the tasks they are given,
 * crash, restart, get wrongly suspected, and a coordinator that may be replaced
 * mid-job and rebuilt from inventories. Every effect the scheduler returns is
 * checked against what it may do at that moment; the first broken rule throws
 * a SimViolation naming the seed and the last steps.
 *
 * Two views are kept apart on purpose. "Truth" is what the nodes really are
 * (alive, what is on their disks, what they run). "Belief" mirrors what the
 * scheduler has been told (who is up, which attempts run where), built only
 * from the events sent and the effects returned. The rules are about belief
 * (the scheduler cannot know more than it is told); the outcome is checked
 * against truth (a succeeded job really has every part at the submitter).
 */
import { DEFAULT_SCHEDULER_CONFIG, Scheduler } from '../../src/coordinator/scheduler.js'
import type {
  Assignment, JobSpec, SchedulerEffect, SchedulerEvent, TaskKind
} from '../../src/coordinator/scheduler-types.js'
import { Prng } from './prng.js'
import { EventQueue } from './event-queue.js'
import { UNCHECKED_SEAL } from './sealed-job.js'

export type Profile = 'clean' | 'stragglers' | 'faults'

export interface SimCounts {
  steps: number
  dispatches: number
  backups: number
  crashes: number
  diskFaults: number
  lateAbandons: number
  /** Orders a worker did not take (busy, or refusing). */
  refusals: number
  fastRestarts: number
  /** Map outputs copied to a second node (the mesh churned: SchedulerConfig.churnDeaths). */
  copies: number
  suspicions: number
  failovers: number
  userFailures: number
  workerFailures: number
  fetchFailures: number
  duplicates: number
  cancels: number
  succeeded: number
  failed: number
  cancelled: number
}

export interface ScenarioReport {
  seed: number
  profile: Profile
  endTime: number
  counts: SimCounts
}

export class SimViolation extends Error {
  override readonly name = 'SimViolation'
}

interface Knobs {
  crashes: number
  suspicions: number
  failovers: number
  /** A live node loses one map output from its disk: only a reducer's fetch failure can tell. */
  diskFaults: number
  pCancel: number
  pUser: number
  pWorker: number
  pFetch: number
  pSlow: number
  pDup: number
  /** An abandon that reaches a worker after it finished: its output exists and its task-done is sent anyway. */
  pLateAbandon: number
  /** A worker answers an order with a refusal instead of running it. */
  pRefuse: number
}

const TICK_MS = 500
/** How often a reduce started early asks the coordinator for map outputs (the worker's poll). */
const PULL_EVERY_MS = 200
/** The longest rest the scheduler gives a worker after refusals (src/coordinator/scheduler.ts). */
const REFUSAL_REST_MAX_MS = 4_000
const FAULTS_UNTIL = 20_000
const GIVE_UP_AT = 900_000

interface Node {
  readonly peer: string
  slots: number
  alive: boolean
  incarnation: number
  /** Sends a boot id with worker-up, so it may restart before the failure detector notices. */
  readonly bootIds: boolean
  /** Map outputs on its disk, as `jobId/mapIndex`. Lost with a crash, kept through a false suspicion. */
  readonly outputs: Set<string>
  /** Map outputs this incarnation ever wrote (a disk fault may lose some of `outputs` since). */
  readonly made: Set<string>
  /** Attempts it is really running, by attempt key. */
  readonly running: Map<string, Assignment>
  /** Its reduce attempts' shuffle: the map outputs each pulled to its disk, and where it was told the others are. */
  readonly pulls: Map<string, ReducePull>
}

interface ReducePull {
  readonly pulled: Set<number>
  readonly known: Map<number, string>
  /** Pulled since the last report to the coordinator. */
  fresh: number[]
}

interface JobTruth {
  readonly spec: JobSpec
  readonly submitAt: number
  readonly cancelAt: number | undefined
  submitted: boolean
  cancelSent: boolean
  outcome: 'succeeded' | 'failed' | 'cancelled' | undefined
  /** Partitions the submitter holds. */
  readonly committed: Set<number>
}

interface Believed { key: string, peer: string, jobId: string, task: string, kind: TaskKind, start: number }

type QEvent =
  | { t: number, seq: number, type: 'submit', jobId: string }
  | { t: number, seq: number, type: 'finish', peer: string, key: string, incarnation: number, outcome: 'ok' | 'user' | 'worker' }
  /** A reduce attempt's round of the shuffle: pull what it knows of, report it, ask for more. */
  | { t: number, seq: number, type: 'pull', peer: string, key: string, incarnation: number }
  /** The answer to a `replicate`: the copy made at `peer` (as it was when asked) if `from` still holds the output. */
  | { t: number, seq: number, type: 'replicated', peer: string, incarnation: number, from: string, jobId: string, mapIndex: number, gen: number }
  | { t: number, seq: number, type: 'refuse', peer: string, key: string, event: Extract<SchedulerEvent, { type: 'task-refused' }>, gen: number }
  | { t: number, seq: number, type: 'crash' }
  | { t: number, seq: number, type: 'disk-fault' }
  | { t: number, seq: number, type: 'detect', peer: string, incarnation: number }
  | { t: number, seq: number, type: 'rejoin', peer: string }
  | { t: number, seq: number, type: 'suspect' }
  | { t: number, seq: number, type: 'reregister', peer: string }
  | { t: number, seq: number, type: 'failover' }
  | { t: number, seq: number, type: 'cancel', jobId: string }
  /** A repeated message: only ever from the same process (a restarted node does not resend) and coordinator. */
  | { t: number, seq: number, type: 'redeliver', event: SchedulerEvent, gen: number, peer: string, incarnation: number }
  | { t: number, seq: number, type: 'tick' }

type Payload<E> = E extends unknown ? Omit<E, 't' | 'seq'> : never

const taskKey = (jobId: string, kind: TaskKind, index: number): string => `${jobId}/${kind}${index}`
const mapKey = (jobId: string, mapIndex: number): string => `${jobId}/${mapIndex}`

export function runScenario (seed: number, profile: Profile): ScenarioReport {
  return new Sim(seed, profile).run()
}

class Sim {
  private readonly rng: Prng
  private readonly knobs: Knobs
  private readonly cfg = DEFAULT_SCHEDULER_CONFIG
  private readonly nodes = new Map<string, Node>()
  private readonly jobs = new Map<string, JobTruth>()
  private coordinator = 'C'
  private sched: Scheduler
  private gen = 0
  private now = 0
  private seq = 0
  private readonly queue = new EventQueue<QEvent>()
  private readonly trace: string[] = []
  private readonly counts: SimCounts = {
    steps: 0, dispatches: 0, backups: 0, crashes: 0, diskFaults: 0, lateAbandons: 0, refusals: 0, fastRestarts: 0, copies: 0, suspicions: 0, failovers: 0, userFailures: 0,
    workerFailures: 0, fetchFailures: 0, duplicates: 0, cancels: 0, succeeded: 0, failed: 0, cancelled: 0
  }

  /** When each worker last refused an order: it may rest up to REFUSAL_REST_MAX_MS after (the scheduler's policy). */
  private readonly lastRefusal = new Map<string, number>()

  /** Dispatches per task over the whole run (all coordinators). */
  private readonly runs = new Map<string, number>()

  // Belief: what the current scheduler has been told. Reset at a failover.
  private readonly up = new Map<string, number>()
  private readonly bootSent = new Map<string, string | undefined>()
  private readonly running = new Map<string, Believed>()
  private readonly maxAttempt = new Map<string, number>()
  private readonly userFails = new Map<string, { count: number, message: string, on: Set<string> }>()
  private readonly genSubmitted = new Set<string>()
  private readonly genEnded = new Set<string>()
  private readonly cancelled = new Set<string>()

  constructor (private readonly seed: number, private readonly profile: Profile) {
    this.rng = new Prng(seed)
    const r = this.rng
    this.knobs = profile === 'clean'
      ? { crashes: 0, suspicions: 0, failovers: 0, diskFaults: 0, pCancel: 0, pUser: 0, pWorker: 0, pFetch: 0, pSlow: 0, pDup: 0, pLateAbandon: 0, pRefuse: 0 }
      : profile === 'stragglers'
        ? { crashes: 0, suspicions: 0, failovers: 0, diskFaults: 0, pCancel: 0, pUser: 0, pWorker: 0, pFetch: 0, pSlow: r.pick([0.05, 0.15, 0.3]), pDup: 0, pLateAbandon: 0.3, pRefuse: 0 }
        : {
            crashes: r.int(0, 3),
            suspicions: r.int(0, 2),
            failovers: r.pick([0, 0, 1, 2]),
            diskFaults: r.pick([0, 0, 1, 3]),
            pCancel: 0.05,
            pUser: r.pick([0, 0.02, 0.1, 0.3]),
            pWorker: r.pick([0, 0.05]),
            pFetch: r.pick([0, 0.05, 0.15]),
            pSlow: r.pick([0, 0.1]),
            pDup: 0.1,
            pLateAbandon: 0.3,
            pRefuse: r.pick([0, 0.05, 0.3])
          }
    this.sched = new Scheduler({ self: this.coordinator })
  }

  run (): ScenarioReport {
    const r = this.rng
    this.nodes.set('C', this.newNode('C', r.int(1, 2)))
    const workers = r.int(0, 5)
    for (let i = 0; i < workers; i++) this.nodes.set(`w${i}`, this.newNode(`w${i}`, r.int(1, 3)))
    // Workers register a little after start, in an order of their own.
    for (const node of r.shuffle([...this.nodes.values()])) {
      this.now = node.peer === 'C' ? 0 : r.int(0, 300)
      this.push({ type: 'rejoin', peer: node.peer }, this.now)
      node.alive = false
      node.incarnation = -1
    }
    this.now = 0
    const jobCount = r.int(1, 3)
    for (let j = 0; j < jobCount; j++) {
      const jobId = `job${j}`
      const maps = r.chance(0.05) ? 0 : r.int(1, 12)
      const submitAt = r.int(0, 2500)
      const spec: JobSpec = {
        jobId,
        jobName: 'sim',
        codeHash: `h${j}`,
        splits: Array.from({ length: maps }, (_, i) => ({ document: `in-${i}`, index: i, offset: 0, length: 1000, firstLine: 1 })),
        reduces: r.int(1, 4),
        params: {},
        submitter: { peer: 'S', addrs: [] },
        maxAttempts: r.int(1, 4),
        seal: UNCHECKED_SEAL
      }
      const cancelAt = r.chance(this.knobs.pCancel) ? submitAt + r.int(0, 8000) : undefined
      this.jobs.set(jobId, { spec, submitAt, cancelAt, submitted: false, cancelSent: false, outcome: undefined, committed: new Set() })
      this.push({ type: 'submit', jobId }, submitAt)
      if (cancelAt !== undefined) this.push({ type: 'cancel', jobId }, cancelAt)
    }
    for (let i = 0; i < this.knobs.crashes; i++) this.push({ type: 'crash' }, r.int(0, FAULTS_UNTIL))
    for (let i = 0; i < this.knobs.diskFaults; i++) this.push({ type: 'disk-fault' }, r.int(0, FAULTS_UNTIL))
    for (let i = 0; i < this.knobs.suspicions; i++) this.push({ type: 'suspect' }, r.int(0, FAULTS_UNTIL))
    for (let i = 0; i < this.knobs.failovers; i++) this.push({ type: 'failover' }, r.int(200, FAULTS_UNTIL))
    this.push({ type: 'tick' }, TICK_MS)

    while (!this.allEnded()) {
      const ev = this.pop()
      if (ev === undefined) this.fail('the event queue ran dry with jobs still open')
      if (ev.t > GIVE_UP_AT) this.fail(`jobs still open at t=${ev.t}: ${[...this.jobs.values()].filter((j) => j.outcome === undefined).map((j) => `${j.spec.jobId} ${JSON.stringify(this.sched.progress(j.spec.jobId))}`).join('; ')}`)
      this.now = ev.t
      this.step(ev)
    }
    this.finalChecks()
    return { seed: this.seed, profile: this.profile, endTime: this.now, counts: this.counts }
  }

  // ── the world ─────────────────────────────────────────────────────────

  private step (ev: QEvent): void {
    const r = this.rng
    switch (ev.type) {
      case 'submit': {
        const job = this.jobs.get(ev.jobId) as JobTruth
        job.submitted = true
        if (job.outcome === undefined) this.send({ type: 'submit', job: job.spec, now: this.now })
        break
      }
      case 'tick':
        this.send({ type: 'tick', now: this.now })
        this.push({ type: 'tick' }, this.now + TICK_MS)
        break
      case 'finish': this.finish(ev); break
      case 'pull': this.pull(ev); break
      case 'replicated': {
        // Its coordinator is gone: the new one rebuilds from inventories, which name only finished copies.
        if (ev.gen !== this.gen) break
        const to = this.nodes.get(ev.peer) as Node
        const from = this.nodes.get(ev.from)
        const key = mapKey(ev.jobId, ev.mapIndex)
        const ok = to.alive && to.incarnation === ev.incarnation && from?.alive === true && from.outputs.has(key)
        if (ok) {
          to.outputs.add(key)
          to.made.add(key)
          this.counts.copies++
        }
        this.send({ type: 'map-replicated', jobId: ev.jobId, mapIndex: ev.mapIndex, peer: ev.peer, ok, now: this.now })
        break
      }
      case 'refuse': {
        // The answer to the order: it comes back to the coordinator that gave it, or to nobody.
        if (ev.gen !== this.gen) break
        this.counts.refusals++
        this.lastRefusal.set(ev.peer, this.now)
        this.forgetAttempt(ev.key)
        this.send({ ...ev.event, now: this.now })
        break
      }
      case 'crash': {
        const victims = [...this.nodes.values()].filter((n) => n.alive && n.peer !== this.coordinator)
        if (victims.length === 0) break
        const n = r.pick(victims)
        this.counts.crashes++
        n.alive = false
        n.outputs.clear()
        n.made.clear()
        n.running.clear()
        n.pulls.clear()
        if (n.bootIds && r.chance(0.4)) {
          // Back before the failure detector noticed: only the new boot id tells.
          this.counts.fastRestarts++
          this.push({ type: 'rejoin', peer: n.peer }, this.now + r.int(50, 800))
          this.push({ type: 'detect', peer: n.peer, incarnation: n.incarnation }, this.now + r.int(1000, 2000))
        } else {
          const detectAt = this.now + r.int(0, 1500)
          this.push({ type: 'detect', peer: n.peer, incarnation: n.incarnation }, detectAt)
          this.push({ type: 'rejoin', peer: n.peer }, detectAt + r.int(100, 5000))
        }
        break
      }
      case 'disk-fault': {
        const holders = [...this.nodes.values()].filter((n) => n.alive && n.outputs.size > 0)
        if (holders.length === 0) break
        const n = r.pick(holders)
        n.outputs.delete(r.pick([...n.outputs]))
        this.counts.diskFaults++
        break
      }
      case 'detect': {
        const n = this.nodes.get(ev.peer) as Node
        if (n.incarnation === ev.incarnation && this.up.has(n.peer)) this.send({ type: 'worker-down', peer: n.peer, now: this.now })
        break
      }
      case 'rejoin': {
        const n = this.nodes.get(ev.peer) as Node
        n.alive = true
        n.incarnation++
        if (n.incarnation > 0 && r.chance(0.3)) n.slots = r.int(1, 3)
        this.register(n)
        break
      }
      case 'suspect': {
        const targets = [...this.nodes.values()].filter((n) => n.alive && n.peer !== this.coordinator && this.up.has(n.peer))
        if (targets.length === 0) break
        const n = r.pick(targets)
        this.counts.suspicions++
        // Missed heartbeats, not a crash: it keeps running and keeps its disk.
        this.send({ type: 'worker-down', peer: n.peer, now: this.now })
        this.push({ type: 'reregister', peer: n.peer }, this.now + r.int(200, 2500))
        break
      }
      case 'reregister': {
        const n = this.nodes.get(ev.peer) as Node
        if (n.alive && !this.up.has(n.peer)) this.register(n)
        break
      }
      case 'failover': this.failover(); break
      case 'cancel': {
        const job = this.jobs.get(ev.jobId) as JobTruth
        if (job.outcome !== undefined) break
        this.counts.cancels++
        job.cancelSent = true
        this.cancelled.add(ev.jobId)
        const out = this.send({ type: 'cancel', jobId: ev.jobId, reason: 'submitter gone', now: this.now })
        if (!out.some((e) => e.type === 'job-ended' && e.jobId === ev.jobId)) this.fail(`cancel of open ${ev.jobId} did not end it`)
        break
      }
      case 'redeliver': {
        const n = this.nodes.get(ev.peer) as Node
        if (ev.gen !== this.gen || !n.alive || n.incarnation !== ev.incarnation) break
        this.counts.duplicates++
        this.send({ ...ev.event, now: this.now })
        break
      }
    }
  }

  private register (n: Node): void {
    const boot = n.bootIds ? `boot-${n.incarnation}` : undefined
    this.send({ type: 'worker-up', peer: n.peer, slots: n.slots, self: n.peer === this.coordinator ? true : undefined, incarnation: boot, now: this.now })
  }

  private finish (ev: Extract<QEvent, { type: 'finish' }>): void {
    const r = this.rng
    const n = this.nodes.get(ev.peer) as Node
    const task = n.running.get(ev.key)
    if (task === undefined || !n.alive || n.incarnation !== ev.incarnation) return
    n.running.delete(ev.key)
    const ref = { jobId: task.jobId, kind: task.kind, index: task.index }
    const base = { ref, attempt: task.attempt, peer: n.peer, now: this.now }
    if (ev.outcome !== 'ok') {
      this.sendFailed({ type: 'task-failed', ...base, cause: ev.outcome, error: { message: `${ev.outcome} error in ${ev.key}` } })
      return
    }
    let event: SchedulerEvent
    const job = this.jobs.get(task.jobId) as JobTruth
    if (task.kind === 'map') {
      n.outputs.add(mapKey(task.jobId, task.index))
      n.made.add(mapKey(task.jobId, task.index))
      event = { type: 'task-done', ...base, partitionBytes: Array.from({ length: job.spec.reduces }, () => r.int(0, 100)) }
    } else {
      const pull = n.pulls.get(ev.key)
      n.pulls.delete(ev.key)
      if (pull === undefined || pull.pulled.size !== job.spec.splits.length) this.fail(`${ev.key} finished without every map output on its disk`)
      job.committed.add(task.index)
      event = { type: 'task-done', ...base }
    }
    this.forgetAttempt(this.attemptKey(ref.jobId, ref.kind, ref.index, task.attempt))
    this.send(event)
    if (r.chance(this.knobs.pDup)) this.push({ type: 'redeliver', event, gen: this.gen, peer: n.peer, incarnation: n.incarnation }, this.now + r.int(0, 3000))
  }

  /**
   * One shuffle round of a reduce attempt: each output it knows of is pulled if its holder really has it (a
   * flaky link may fail one); what it pulled and the first it could not are reported, and the coordinator says
   * what else it may pull. With every map's output on its disk, the reduce runs.
   */
  private pull (ev: Extract<QEvent, { type: 'pull' }>): void {
    const r = this.rng
    const n = this.nodes.get(ev.peer) as Node
    const task = n.running.get(ev.key)
    const pull = n.pulls.get(ev.key)
    if (task === undefined || task.kind !== 'reduce' || pull === undefined || !n.alive || n.incarnation !== ev.incarnation) return
    // An attempt of an older coordinator: the new one answers its question with stop.
    if (!ev.key.startsWith(`g${this.gen}:`)) {
      n.running.delete(ev.key)
      n.pulls.delete(ev.key)
      return
    }
    let failed: { mapIndex: number, peer: string } | undefined
    for (const [mapIndex, peer] of pull.known) {
      if (pull.pulled.has(mapIndex)) continue
      const holder = this.nodes.get(peer)
      const there = holder !== undefined && holder.alive && holder.outputs.has(mapKey(task.jobId, mapIndex))
      if (there && !r.chance(this.knobs.pFetch)) {
        pull.pulled.add(mapIndex)
        pull.fresh.push(mapIndex)
      } else {
        pull.known.delete(mapIndex)
        failed ??= { mapIndex, peer }
      }
    }
    const ref = { jobId: task.jobId, kind: task.kind, index: task.index }
    if (failed !== undefined) this.counts.fetchFailures++
    if (pull.fresh.length > 0 || failed !== undefined) {
      this.send({ type: 'reduce-pulled', ref, attempt: task.attempt, peer: n.peer, maps: pull.fresh, failed, now: this.now })
      pull.fresh = []
    }
    if (!n.running.has(ev.key)) return
    if (pull.pulled.size === task.maps) {
      const k = this.knobs
      let duration = r.int(100, 600)
      if (r.chance(k.pSlow)) duration *= r.int(5, 15)
      const roll = r.next()
      const outcome = roll < k.pUser ? 'user' : roll < k.pUser + k.pWorker ? 'worker' : 'ok'
      if (outcome !== 'ok') duration = r.int(1, duration)
      this.push({ type: 'finish', peer: n.peer, key: ev.key, incarnation: n.incarnation, outcome }, this.now + duration)
      return
    }
    const answer = this.sched.reduceSources(ref, task.attempt, n.peer)
    if (answer.stop) {
      // Abandoned, or lost with a wrong suspicion: the worker drops it.
      n.running.delete(ev.key)
      n.pulls.delete(ev.key)
      return
    }
    for (const src of answer.sources) {
      const job = this.jobs.get(task.jobId) as JobTruth
      if (src.mapIndex >= job.spec.splits.length || !this.up.has(src.peer)) this.fail(`${ev.key} told to pull map ${src.mapIndex} from ${src.peer}`)
      if (pull.pulled.has(src.mapIndex)) this.fail(`${ev.key} told to pull map ${src.mapIndex}, which it reported pulled`)
      pull.known.set(src.mapIndex, src.peer)
    }
    this.push({ type: 'pull', peer: n.peer, key: ev.key, incarnation: n.incarnation }, this.now + PULL_EVERY_MS)
  }

  private sendFailed (event: Extract<SchedulerEvent, { type: 'task-failed' }>): void {
    const { ref } = event
    const key = this.attemptKey(ref.jobId, ref.kind, ref.index, event.attempt)
    const counted = this.running.has(key)
    this.forgetAttempt(key)
    if (event.cause === 'user') this.counts.userFailures++
    if (event.cause === 'worker') this.counts.workerFailures++
    let reached = false
    if (counted && event.cause === 'user') {
      const tk = taskKey(ref.jobId, ref.kind, ref.index)
      const f = this.userFails.get(tk) ?? { count: 0, message: '', on: new Set<string>() }
      f.count++
      f.on.add(event.peer)
      f.message = event.error.message
      this.userFails.set(tk, f)
      reached = f.count >= (this.jobs.get(ref.jobId) as JobTruth).spec.maxAttempts
    }
    const out = this.send(event)
    if (reached && !out.some((e) => e.type === 'job-failed' && e.jobId === ref.jobId)) {
      this.fail(`${taskKey(ref.jobId, ref.kind, ref.index)} reached maxAttempts user failures but the job did not fail`)
    }
  }

  /** A new coordinator: a fresh Scheduler rebuilt only from what the design says survives. */
  private failover (): void {
    const r = this.rng
    const alive = [...this.nodes.values()].filter((n) => n.alive)
    if (alive.length === 0) return
    this.counts.failovers++
    this.gen++
    this.coordinator = r.pick(alive).peer
    this.sched = new Scheduler({ self: this.coordinator, config: this.cfg })
    // Workers refuse the old epoch's tasks from now on: whatever ran is dropped.
    for (const n of this.nodes.values()) {
      n.running.clear()
      n.pulls.clear()
    }
    this.up.clear()
    this.bootSent.clear()
    this.running.clear()
    this.maxAttempt.clear()
    this.userFails.clear()
    this.genSubmitted.clear()
    this.genEnded.clear()
    const events: SchedulerEvent[] = []
    const open = [...this.jobs.values()].filter((j) => j.submitted && j.outcome === undefined)
    for (const n of alive) {
      events.push({ type: 'worker-up', peer: n.peer, slots: n.slots, self: n.peer === this.coordinator ? true : undefined, incarnation: n.bootIds ? `boot-${n.incarnation}` : undefined, now: this.now })
      for (const key of n.outputs) {
        const [jobId, index] = key.split('/')
        if (open.some((j) => j.spec.jobId === jobId)) events.push({ type: 'map-output-known', jobId, mapIndex: Number(index), peer: n.peer, now: this.now })
      }
    }
    for (const j of open) {
      for (const p of j.committed) events.push({ type: 'reduce-committed', jobId: j.spec.jobId, partition: p, now: this.now })
      events.push({ type: 'submit', job: j.spec, now: this.now })
    }
    // The inventories, the committed parts and the re-sent submits race each other.
    for (const e of r.shuffle(events)) this.send(e)
    // Nothing finishes inside the rebuild, so what was known must be what the new scheduler counts as done.
    for (const j of open) {
      const id = j.spec.jobId
      if (this.genEnded.has(id)) continue
      const known = new Set<number>()
      for (const e of events) if (e.type === 'map-output-known' && e.jobId === id) known.add(e.mapIndex)
      const p = this.sched.progress(id)
      if (p?.maps.done !== known.size || p.reduces.done !== j.committed.size) {
        this.fail(`rebuilt ${id} as ${JSON.stringify(p)} from ${known.size} known map outputs and ${j.committed.size} committed parts`)
      }
    }
  }

  // ── talking to the scheduler, and checking what it says ───────────────

  private send (event: SchedulerEvent): SchedulerEffect[] {
    this.counts.steps++
    this.noteSent(event)
    const out = this.sched.handle(event)
    this.trace.push(`t=${this.now} gen=${this.gen} ${JSON.stringify(event)}\n    -> ${JSON.stringify(out)}`)
    if (this.trace.length > 40) this.trace.shift()
    for (const e of out) this.apply(e, event)
    this.checkProgress(out)
    return out
  }

  /** Belief updates that follow from the event alone, exactly as the scheduler's rules say. */
  private noteSent (event: SchedulerEvent): void {
    switch (event.type) {
      case 'worker-up': {
        const prev = this.bootSent.get(event.peer)
        if (this.up.has(event.peer) && event.incarnation !== undefined && prev !== undefined && prev !== event.incarnation) this.forgetPeer(event.peer)
        this.up.set(event.peer, event.slots)
        if (event.incarnation !== undefined) this.bootSent.set(event.peer, event.incarnation)
        break
      }
      case 'worker-down':
        this.forgetPeer(event.peer)
        this.up.delete(event.peer)
        this.bootSent.delete(event.peer)
        break
      case 'map-output-known':
        // The scheduler takes an inventory's peer for a live holder with no slots.
        if (!this.up.has(event.peer) && !this.genEnded.has(event.jobId)) this.up.set(event.peer, 0)
        break
      case 'submit':
        this.genSubmitted.add(event.job.jobId)
        break
      default:
        break
    }
  }

  private apply (e: SchedulerEffect, cause: SchedulerEvent): void {
    switch (e.type) {
      case 'dispatch': this.onDispatch(e.peer, e.task, cause); break
      case 'replicate': {
        const to = this.nodes.get(e.peer)
        if (to === undefined || !this.up.has(e.peer)) this.fail(`replicate of ${e.jobId} map ${e.mapIndex} to ${e.peer}, which is down`)
        if (e.peer === e.from) this.fail(`replicate of ${e.jobId} map ${e.mapIndex} onto its own holder ${e.from}`)
        this.push({ type: 'replicated', peer: e.peer, incarnation: to.incarnation, from: e.from, jobId: e.jobId, mapIndex: e.mapIndex, gen: this.gen }, this.now + this.rng.int(20, 300))
        break
      }
      case 'abandon': {
        const key = this.attemptKey(e.ref.jobId, e.ref.kind, e.ref.index, e.attempt)
        const b = this.running.get(key)
        if (b === undefined || b.peer !== e.peer) this.fail(`abandon of ${key} on ${e.peer}, which is not running there`)
        this.forgetAttempt(key)
        if (this.nodes.get(e.peer)?.running.has(key) === true) {
          if (this.rng.chance(this.knobs.pLateAbandon)) this.counts.lateAbandons++
          else this.nodes.get(e.peer)?.running.delete(key)
        }
        break
      }
      case 'progress': break
      case 'job-succeeded': {
        const job = this.openJob(e.jobId)
        for (let p = 0; p < job.spec.reduces; p++) {
          if (!job.committed.has(p)) this.fail(`${e.jobId} succeeded without part ${p} at the submitter`)
        }
        if (this.cancelled.has(e.jobId)) this.fail(`${e.jobId} succeeded after it was cancelled`)
        job.outcome = 'succeeded'
        this.counts.succeeded++
        break
      }
      case 'job-failed': {
        const job = this.openJob(e.jobId)
        const tk = taskKey(e.jobId, e.error.task.kind, e.error.task.index)
        const f = this.userFails.get(tk)
        if (f === undefined || f.count < job.spec.maxAttempts) this.fail(`${e.jobId} failed on ${tk} with ${f?.count ?? 0} user failures < maxAttempts ${job.spec.maxAttempts}`)
        if (e.error.message !== f.message) this.fail(`${e.jobId} failed with "${e.error.message}", not the user's error "${f.message}"`)
        job.outcome = 'failed'
        this.counts.failed++
        break
      }
      case 'job-ended': {
        const job = this.jobs.get(e.jobId)
        if (job === undefined || !this.genSubmitted.has(e.jobId) || this.genEnded.has(e.jobId)) this.fail(`job-ended for ${e.jobId}, which is not open`)
        for (const b of this.running.values()) if (b.jobId === e.jobId) this.fail(`${e.jobId} ended with ${b.key} still running on ${b.peer}`)
        this.genEnded.add(e.jobId)
        if (job.outcome === undefined) {
          if (cause.type !== 'cancel' && !this.cancelled.has(e.jobId)) this.fail(`${e.jobId} ended with no outcome and no cancel`)
          job.outcome = 'cancelled'
          this.counts.cancelled++
        }
        break
      }
    }
  }

  private onDispatch (peer: string, task: Assignment, cause: SchedulerEvent): void {
    const tk = taskKey(task.jobId, task.kind, task.index)
    const job = this.jobs.get(task.jobId)
    if (job === undefined || !this.genSubmitted.has(task.jobId) || this.genEnded.has(task.jobId)) this.fail(`dispatch of ${tk} for a job that is not open`)
    const slots = this.up.get(peer)
    if (slots === undefined) this.fail(`dispatch of ${tk} to ${peer}, which is down`)
    const load = this.load(peer, task.kind)
    if (load >= slots) this.fail(`dispatch of ${tk} to ${peer} with ${load} ${task.kind}s running on ${slots} slots`)
    if (peer === this.coordinator) {
      const other = [...this.up].find(([p, s]) => p !== this.coordinator && s > 0)
      if (other !== undefined) this.fail(`dispatch of ${tk} to the coordinator while ${other[0]} is up`)
    }
    const last = this.maxAttempt.get(tk) ?? 0
    if (task.attempt <= last) this.fail(`attempt ${task.attempt} of ${tk} after attempt ${last}: numbers must grow`)
    this.maxAttempt.set(tk, task.attempt)
    const others = [...this.running.values()].filter((b) => b.task === tk)
    const failedOn = this.userFails.get(tk)?.on
    if (failedOn?.has(peer) === true) {
      // Back where the user's code failed: only when no other worker could take it (a backup: none free now).
      // A worker that refused lately may be resting: it cannot be blamed for not taking the task.
      const pool = this.pool().filter((p) => this.now - (this.lastRefusal.get(p) ?? -Infinity) > REFUSAL_REST_MAX_MS)
      const elsewhere = others.length === 0
        ? pool.find((p) => !failedOn.has(p))
        : pool.find((p) => !failedOn.has(p) && p !== others[0].peer && this.load(p, task.kind) < (this.up.get(p) ?? 0))
      if (elsewhere !== undefined) this.fail(`${tk} dispatched to ${peer}, where it failed, while ${elsewhere} could take it`)
    }
    if (others.length > 0) {
      // Only a backup may run beside another attempt: on a tick, for a task with one slow attempt, elsewhere.
      this.counts.backups++
      const [o] = others
      if (cause.type !== 'tick') this.fail(`second attempt of ${tk} on a '${cause.type}' event, not a tick`)
      if (others.length !== 1) this.fail(`backup of ${tk} beside ${others.length} running attempts`)
      if (o.peer === peer) this.fail(`backup of ${tk} on ${peer}, where it already runs`)
      if (this.now - o.start <= this.cfg.backupMinElapsedMs) this.fail(`backup of ${tk} after only ${this.now - o.start} ms`)
    }
    if (task.kind === 'map') {
      if (JSON.stringify(task.split) !== JSON.stringify(job.spec.splits[task.index])) this.fail(`${tk} dispatched with the wrong split`)
    } else {
      if (task.maps !== job.spec.splits.length) this.fail(`${tk} says ${task.maps} maps, the job has ${job.spec.splits.length}`)
      const slowStart = Math.ceil(this.cfg.reduceSlowStart * task.maps)
      const mapsDone = this.sched.progress(task.jobId)?.maps.done ?? 0
      if (mapsDone < slowStart) this.fail(`${tk} dispatched with ${mapsDone} maps done, before ${slowStart} were`)
      task.sources.forEach((s, i) => {
        const i0 = i === 0 ? -1 : task.sources[i - 1].mapIndex
        if (s.mapIndex <= i0 || s.mapIndex >= task.maps) this.fail(`${tk} source ${i} names map ${s.mapIndex}`)
        if (!this.up.has(s.peer)) this.fail(`${tk} dispatched with map ${s.mapIndex} at ${s.peer}, which is down`)
        const holder = this.nodes.get(s.peer) as Node
        // A crash the detector has not reported yet is the only excuse for a missing output.
        if (holder.alive && !holder.made.has(mapKey(task.jobId, s.mapIndex))) this.fail(`${tk} dispatched with map ${s.mapIndex} at ${s.peer}, which never made it`)
      })
    }
    this.counts.dispatches++
    this.runs.set(tk, (this.runs.get(tk) ?? 0) + 1)
    const key = this.attemptKey(task.jobId, task.kind, task.index, task.attempt)
    this.running.set(key, { key, peer, jobId: task.jobId, task: tk, kind: task.kind, start: this.now })
    this.execute(peer, key, task)
  }

  /** The worker really runs it (if it is really alive): decide now how the attempt ends. */
  private execute (peer: string, key: string, task: Assignment): void {
    const r = this.rng
    const n = this.nodes.get(peer) as Node
    if (!n.alive) return
    const k = this.knobs
    if (r.chance(k.pRefuse)) {
      const event = { type: 'task-refused' as const, ref: { jobId: task.jobId, kind: task.kind, index: task.index }, attempt: task.attempt, peer, now: 0 }
      this.push({ type: 'refuse', peer, key, event, gen: this.gen }, this.now + r.int(1, 30))
      return
    }
    n.running.set(key, task)
    if (task.kind === 'reduce') {
      n.pulls.set(key, { pulled: new Set(), known: new Map(task.sources.map((src) => [src.mapIndex, src.peer])), fresh: [] })
      this.push({ type: 'pull', peer, key, incarnation: n.incarnation }, this.now + r.int(10, 100))
      return
    }
    let duration = r.int(200, 900)
    if (r.chance(k.pSlow)) duration *= r.int(5, 15)
    const roll = r.next()
    const outcome = roll < k.pUser ? 'user' : roll < k.pUser + k.pWorker ? 'worker' : 'ok'
    if (outcome !== 'ok') duration = r.int(1, duration)
    this.push({ type: 'finish', peer, key, incarnation: n.incarnation, outcome }, this.now + duration)
  }

  /** The last progress of a job in one reply must be what progress() says, and count what we believe runs. */
  private checkProgress (out: SchedulerEffect[]): void {
    const last = new Map<string, SchedulerEffect & { type: 'progress' }>()
    for (const e of out) if (e.type === 'progress') last.set(e.jobId, e)
    for (const [jobId, e] of last) {
      const now = this.sched.progress(jobId)
      if (JSON.stringify(now) !== JSON.stringify(e.progress)) this.fail(`progress effect ${JSON.stringify(e.progress)} differs from progress() ${JSON.stringify(now)}`)
      const believed = [...this.running.values()].filter((b) => b.jobId === jobId).length
      if (e.progress.running !== believed) this.fail(`${jobId} reports ${e.progress.running} running, the effects say ${believed}`)
    }
  }

  private finalChecks (): void {
    for (const job of this.jobs.values()) {
      if (job.outcome === undefined) this.fail(`${job.spec.jobId} never ended`)
    }
    if (this.profile === 'faults') return
    for (const job of this.jobs.values()) {
      const tasks = [
        ...job.spec.splits.map((_, i) => taskKey(job.spec.jobId, 'map', i)),
        ...Array.from({ length: job.spec.reduces }, (_, i) => taskKey(job.spec.jobId, 'reduce', i))
      ]
      for (const tk of tasks) {
        const n = this.runs.get(tk) ?? 0
        if (this.profile === 'clean' && n !== 1) this.fail(`${tk} ran ${n} times with no faults and no stragglers`)
        if (this.profile === 'stragglers' && (n < 1 || n > 2)) this.fail(`${tk} ran ${n} times with stragglers only`)
      }
    }
  }

  // ── helpers ───────────────────────────────────────────────────────────

  private newNode (peer: string, slots: number): Node {
    return { peer, slots, alive: true, incarnation: 0, bootIds: this.rng.chance(0.5), outputs: new Set(), made: new Set(), running: new Map(), pulls: new Map() }
  }

  private attemptKey (jobId: string, kind: TaskKind, index: number, attempt: number): string {
    return `g${this.gen}:${taskKey(jobId, kind, index)}#${attempt}`
  }

  /** Attempts of one kind believed running at `peer`: maps and reduces have `slots` each. */
  private load (peer: string, kind: TaskKind): number {
    let n = 0
    for (const b of this.running.values()) if (b.peer === peer && b.kind === kind) n++
    return n
  }

  /** Who may work, as the scheduler must see it: every other live worker, or the coordinator alone. */
  private pool (): string[] {
    const others = [...this.up].filter(([p, s]) => p !== this.coordinator && s > 0).map(([p]) => p)
    if (others.length > 0) return others
    return (this.up.get(this.coordinator) ?? 0) > 0 ? [this.coordinator] : []
  }

  private forgetAttempt (key: string): void {
    this.running.delete(key)
  }

  private forgetPeer (peer: string): void {
    for (const [key, b] of this.running) if (b.peer === peer) this.running.delete(key)
  }

  private openJob (jobId: string): JobTruth {
    const job = this.jobs.get(jobId)
    if (job === undefined || job.outcome !== undefined || this.genEnded.has(jobId)) this.fail(`an outcome for ${jobId}, which is not open`)
    return job
  }

  private allEnded (): boolean {
    for (const j of this.jobs.values()) if (j.outcome === undefined) return false
    return true
  }

  private push (ev: Payload<QEvent>, t: number): void {
    this.queue.push(t, { ...ev, t, seq: this.seq++ } as QEvent)
  }

  private pop (): QEvent | undefined {
    return this.queue.pop()?.item
  }

  private fail (message: string): never {
    throw new SimViolation(
      `seed=${this.seed} profile=${this.profile} t=${this.now}: ${message}\n` +
      `reproduce: SCHED_SIM_SEED=${this.seed} SCHED_SIM_PROFILE=${this.profile} npx vitest run test/unit/scheduler-sim\n` +
      `last steps:\n${this.trace.slice(-15).join('\n')}`
    )
  }
}
