/**
 * The coordinator's scheduler as a pure state machine: `handle(event)` returns
 * the effects the runtime must carry out, and nothing else happens. No clock
 * is read (every event carries `now`) and nothing is random, so the same
 * events always give the same effects; tests and simulations replay exactly.
 * The rules are those of 6.824 Lab 1 and Google MapReduce §3.3; see
 * docs/scheduler.md for the state picture and what the runtime must feed in.
 */
import {
  type Attempt, type AttemptState, type JobState, KINDS, type Task, type Worker,
  copyProgress, doneOf, insertSorted, median, newJob, progressOf, runningOf, sameProgress, taskAt, tasksOf
} from './scheduler-state.js'
import type {
  Assignment, JobProgress, JobSpec, MapSource, ReduceSources, SchedulerEffect, SchedulerEvent, TaskError, TaskKind, TaskRef
} from './scheduler-types.js'

export type * from './scheduler-types.js'

export interface SchedulerConfig {
  /** A task is never a straggler before it has run this long (ms). */
  backupMinElapsedMs: number
  /** ...nor before it has run this many times the median of its phase's finished tasks. */
  backupSlowFactor: number
  /** Backups start once the phase's unfinished tasks are at most max(1, this × tasks in the phase). */
  backupTailFraction: number
  /**
   * A job that no live worker can run (a streaming job when every node runs --no-exec) fails after waiting this
   * long (ms) for one to register, with the workers' reason.
   */
  noWorkerAbleMs: number
  /**
   * A job's reduces are dispatched once this fraction of its maps is done (Hadoop's reduce slow start); they then
   * pull map outputs as maps finish. 1: not before every map is done.
   */
  reduceSlowStart: number
  /** A lost map runs again where the job has run the fewest maps (false: the least loaded, as any task). */
  spreadReruns: boolean
  /**
   * The mesh churns once this many workers died within `churnWindowMs`, and stays churning until `churnWindowMs`
   * after the last death: a map of a job that left `intermediateReplicas` unset finishing meanwhile gets a second
   * copy, as with `--intermediate-replicas 2`. 0: never.
   */
  churnDeaths: number
  churnWindowMs: number
}

export const DEFAULT_SCHEDULER_CONFIG: Readonly<SchedulerConfig> = Object.freeze({
  backupMinElapsedMs: 2000,
  backupSlowFactor: 2,
  backupTailFraction: 0.2,
  noWorkerAbleMs: 10_000,
  reduceSlowStart: 0.05,
  spreadReruns: true,
  churnDeaths: 2,
  churnWindowMs: 60_000
})

interface EarlyFacts { maps: Map<number, string>, reduces: Set<number> }

/** A worker's first refusal rests it this long; each further one in a row doubles it, up to the maximum. */
const REFUSAL_REST_MS = 250
const REFUSAL_REST_MAX_MS = 4_000

/** Dead workers remembered so that their return is not counted as another death: many more than a mesh's workers. */
const MAX_COUNTED_DOWN = 4_096

/** Jobs whose inventory or committed parts arrived before their submit, kept at once. */
const MAX_EARLY_JOBS = 64

export class Scheduler {
  private readonly self: string
  private readonly config: SchedulerConfig
  /** Live peers (the failure detector's view), in registration order. Includes holders with 0 slots. */
  private readonly workers = new Map<string, Worker>()
  private workerSeq = 0
  /** Jobs still running; Map order is submit order, which is the FIFO service order. */
  private readonly active = new Map<string, JobState>()
  /** Final progress of ended jobs: they answer progress() and make later events about them no-ops. */
  private readonly ended = new Map<string, JobProgress>()
  /** Cancelled before their submit arrived: a late submit must not start them. */
  private readonly cancelledEarly = new Set<string>()
  private readonly submitted: string[] = []
  /** Inventory and committed parts that came in before the job's submit (coordinator failover). */
  private readonly early = new Map<string, EarlyFacts>()
  private out: SchedulerEffect[] = []
  private readonly dirty = new Set<JobState>()
  /** When workers died within the last churn window, oldest first. */
  private deaths: number[] = []
  private churnUntil = -Infinity
  /** Workers whose death this scheduler counted and that have not registered since: their return is no new death. */
  private readonly countedDown = new Set<string>()

  /**
   * `deaths`: when workers died before this scheduler began (a previous `recentDeaths()` of this node's): a
   * coordinator whose lease lapsed and came back keeps seeing the churn it saw.
   */
  constructor (opts: { self: string, config?: Partial<SchedulerConfig>, deaths?: readonly number[] }) {
    this.self = opts.self
    this.config = { ...DEFAULT_SCHEDULER_CONFIG, ...opts.config }
    for (const t of [...opts.deaths ?? []].sort((a, b) => a - b)) this.countDeath(t)
  }

  /** When workers died within the last churn window, oldest first (for the next scheduler of this node). */
  recentDeaths (): number[] {
    return [...this.deaths]
  }

  handle (event: SchedulerEvent): SchedulerEffect[] {
    this.out = []
    switch (event.type) {
      case 'submit': this.onSubmit(event.job); break
      case 'worker-up':
        // Back under a new boot id, and not yet counted dead here: it died while no scheduler of this node watched.
        if (event.restarted === true && !this.workers.has(event.peer) && !this.countedDown.has(event.peer) && event.slots > 0) this.countDeath(event.now)
        this.countedDown.delete(event.peer)
        this.onWorkerUp(event.peer, event.slots, event.self === true || event.peer === this.self, event.incarnation, event.noExec, event.now)
        break
      case 'worker-down': this.onWorkerDown(event.peer, event.now); break
      case 'task-done': this.onTaskDone(event.ref, event.attempt, event.peer, event.now); break
      case 'task-failed': this.onTaskFailed(event); break
      case 'task-refused': this.onTaskRefused(event.ref, event.attempt, event.peer, event.now); break
      case 'reduce-pulled': this.onReducePulled(event); break
      case 'map-replicated': this.onMapReplicated(event.jobId, event.mapIndex, event.peer, event.ok); break
      case 'map-output-known': this.onMapOutputKnown(event.jobId, event.mapIndex, event.peer, event.now); break
      case 'reduce-committed': this.onReduceCommitted(event.jobId, event.partition); break
      case 'cancel': this.onCancel(event.jobId); break
      case 'forget': this.onForget(event.jobId); break
      case 'tick': break
    }
    this.schedule(event.now, event.type === 'tick')
    this.flushProgress()
    const out = this.out
    this.out = []
    return out
  }

  progress (jobId: string): JobProgress | undefined {
    const job = this.active.get(jobId)
    if (job !== undefined) return progressOf(job)
    const final = this.ended.get(jobId)
    return final === undefined ? undefined : copyProgress(final)
  }

  /**
   * The map outputs reduce attempt `attempt` of `ref`, running at `peer`, may pull now: those done at a live
   * holder that it has not reported as pulled. `stop` when that attempt is not running (any more).
   */
  reduceSources (ref: TaskRef, attempt: number, peer: string): ReduceSources {
    const task = ref.kind === 'reduce' ? this.activeTask(ref) : undefined
    const a = task?.attempts[attempt - 1]
    if (task === undefined || task.done || a === undefined || a.peer !== peer || a.state !== 'running') return { sources: [], stop: true, complete: false }
    const sources = locatedMaps(task.job).filter((s) => !a.pulled.has(s.mapIndex))
    return { sources, stop: false, complete: a.pulled.size === task.job.maps.length }
  }

  /** Every submitted job id in submit order, ended ones included (their progress says how they ended). */
  jobs (): string[] {
    return [...this.submitted]
  }

  // ── events ────────────────────────────────────────────────────────────

  private onSubmit (spec: JobSpec): void {
    const id = spec.jobId
    const known = this.progress(id)
    if (known !== undefined) {
      // The submitter re-sends Submit to every new coordinator and on retries: answer, change nothing.
      this.out.push({ type: 'progress', jobId: id, progress: known })
      return
    }
    validateSpec(spec)
    const job = newJob(spec)
    this.submitted.push(id)
    if (this.cancelledEarly.has(id)) {
      this.cancelledEarly.delete(id)
      this.endJob(job, 'failed')
      return
    }
    this.active.set(id, job)
    this.dirty.add(job)
    const facts = this.early.get(id)
    this.early.delete(id)
    if (facts !== undefined) {
      for (const [index, peer] of facts.maps) {
        const task = job.maps[index]
        if (task !== undefined && !task.done) this.complete(task, peer, undefined)
      }
      for (const index of facts.reduces) {
        const task = job.reduces[index]
        if (task !== undefined && !task.done) this.complete(task, undefined, undefined)
      }
    }
  }

  private onWorkerUp (peer: string, slots: number, self: boolean, incarnation: string | undefined, noExec: string | undefined, now: number): void {
    let w = this.workers.get(peer)
    if (w !== undefined && incarnation !== undefined && w.incarnation !== undefined && w.incarnation !== incarnation) {
      // It restarted faster than the failure detector noticed: what it ran and held is gone.
      this.onWorkerDown(peer, now)
      w = undefined
    }
    const n = Number.isFinite(slots) && slots > 0 ? Math.floor(slots) : 0
    if (w === undefined) {
      this.workers.set(peer, { peer, slots: n, self, incarnation, running: new Set(), order: this.workerSeq++, refusals: 0, restUntil: 0, noExec })
      return
    }
    w.noExec = noExec
    // Registering again is a worker saying it is ready.
    this.endRest(peer)
    // Fewer slots than running attempts: nothing is stopped, it just gets no more until it is under.
    w.slots = n
    w.self = self
    if (incarnation !== undefined) w.incarnation = incarnation
  }

  private onWorkerDown (peer: string, now: number): void {
    for (const facts of this.early.values()) {
      for (const [index, p] of facts.maps) if (p === peer) facts.maps.delete(index)
    }
    const w = this.workers.get(peer)
    if (w === undefined) return
    this.workers.delete(peer)
    if (w.slots > 0) {
      this.countDeath(now)
      this.countedDown.add(peer)
      if (this.countedDown.size > MAX_COUNTED_DOWN) this.countedDown.delete(this.countedDown.values().next().value as string)
    }
    for (const a of [...w.running]) {
      this.endAttempt(a, 'lost')
      a.task.job.failedAttempts++
      this.requeueIfIdle(a.task)
    }
    for (const job of this.active.values()) {
      // Every reduce reads every map, so any map output is needed while any reduce is not done.
      if (job.reducesDone === job.reduces.length) continue
      for (const m of job.maps) {
        if (m.done && (m.location === peer || m.copies.includes(peer))) this.dropHolder(m, peer, 'down')
        else if (m.copying?.from === peer) {
          // Its only copy died before the second was made.
          m.copying = undefined
          job.outputs.lostDown++
          this.requeueIfIdle(m)
        } else if (m.copying?.to === peer) this.copyElsewhere(m)
      }
    }
  }

  private onTaskDone (ref: TaskRef, attempt: number, peer: string, now: number): void {
    const task = this.activeTask(ref)
    if (task === undefined || task.done) return
    const a = task.attempts[attempt - 1]
    if (a === undefined || a.peer !== peer) return
    this.endRest(peer)
    if (a.state === 'running') {
      this.endAttempt(a, 'done')
    } else if (a.state === 'lost') {
      // A reduce's part is at the submitter whoever reports it. A map output is only worth something
      // on a peer we hold for alive, and not if that peer has restarted since (its disk was wiped).
      if (ref.kind === 'map') {
        const w = this.workers.get(peer)
        if (w === undefined || (a.incarnation !== undefined && w.incarnation !== undefined && w.incarnation !== a.incarnation)) return
      }
      a.state = 'done'
    } else {
      return
    }
    const replicas = task.job.spec.intermediateReplicas ?? (now < this.churnUntil ? 2 : 1)
    if (ref.kind === 'map' && replicas > 1) {
      this.copyOutput(task, peer, now - this.workStart(a))
      return
    }
    this.complete(task, peer, now - this.workStart(a))
  }

  /** A worker died at `now`: enough deaths within the window make the mesh churn (SchedulerConfig.churnDeaths). */
  private countDeath (now: number): void {
    const { churnDeaths, churnWindowMs } = this.config
    if (churnDeaths <= 0) return
    this.deaths = this.deaths.filter((t) => t > now - churnWindowMs)
    this.deaths.push(now)
    if (this.deaths.length >= churnDeaths) this.churnUntil = now + churnWindowMs
  }

  /**
   * `--intermediate-replicas 2`: a finished map's output is copied to a second node before the map counts as
   * done, so that it survives its mapper. Other attempts stop now: the output exists.
   */
  private copyOutput (task: Task, from: string, duration: number): void {
    insertSorted(task.job.durations.map, duration)
    for (const a of task.attempts) if (a.state === 'running') this.abandon(a)
    task.job.idle.map.delete(task.ref.index)
    task.copying = { from, to: '', tried: new Set([from]) }
    this.copyElsewhere(task)
  }

  /**
   * The next node to copy to: where this job holds the fewest copies, then the longest registered (under churn,
   * the likeliest to stay). With none left, the map is done with the one copy it has.
   */
  private copyElsewhere (m: Task): void {
    const c = m.copying
    if (c === undefined) return
    const held = new Map<string, number>()
    for (const x of m.job.maps) for (const p of x.copies) held.set(p, (held.get(p) ?? 0) + 1)
    let best: Worker | undefined
    for (const w of this.workers.values()) {
      if (w.slots === 0 || c.tried.has(w.peer)) continue
      if (best === undefined) { best = w; continue }
      const d = (held.get(w.peer) ?? 0) - (held.get(best.peer) ?? 0)
      if (d < 0 || (d === 0 && w.order < best.order)) best = w
    }
    if (best === undefined) {
      m.copying = undefined
      this.complete(m, c.from, undefined)
      return
    }
    c.to = best.peer
    c.tried.add(best.peer)
    this.dirty.add(m.job)
    this.out.push({ type: 'replicate', peer: best.peer, jobId: m.job.spec.jobId, mapIndex: m.ref.index, from: c.from })
  }

  /** When an attempt's own work began: a reduce dispatched before the maps were done was only waiting until then. */
  private workStart (a: Attempt): number {
    const since = a.task.ref.kind === 'reduce' ? a.task.job.mapsDoneAt : undefined
    return since === undefined ? a.start : Math.max(a.start, since)
  }

  /** A worker that reports finished work has a free slot again: whatever it refused before is behind it. */
  private endRest (peer: string): void {
    const w = this.workers.get(peer)
    if (w === undefined) return
    w.refusals = 0
    w.restUntil = 0
  }

  private onTaskRefused (ref: TaskRef, attempt: number, peer: string, now: number): void {
    const task = this.activeTask(ref)
    if (task === undefined || task.done) return
    const a = task.attempts[attempt - 1]
    if (a === undefined || a.peer !== peer || a.state !== 'running') return
    this.endAttempt(a, 'abandoned')
    const w = this.workers.get(peer)
    if (w !== undefined) {
      w.refusals++
      w.restUntil = now + Math.min(REFUSAL_REST_MAX_MS, REFUSAL_REST_MS * 2 ** (w.refusals - 1))
    }
    this.requeueIfIdle(task)
  }

  private onTaskFailed (ev: Extract<SchedulerEvent, { type: 'task-failed' }>): void {
    const task = this.activeTask(ev.ref)
    if (task === undefined || task.done) return
    const a = task.attempts[ev.attempt - 1]
    // An attempt already written off (lost with its worker, or abandoned) was accounted for then.
    if (a === undefined || a.peer !== ev.peer || a.state !== 'running') return
    const job = task.job
    this.endAttempt(a, 'failed')
    job.failedAttempts++
    this.dirty.add(job)
    const cause = ev.cause === 'fetch' && (task.ref.kind !== 'reduce' || ev.fetch === undefined) ? 'worker' : ev.cause
    // A node out of disk is tried elsewhere like a failing job; if every node is, the job fails instead of looping.
    if (cause === 'user' || cause === 'resource') {
      task.userFailures++
      task.failedOn.add(ev.peer)
      if (task.userFailures >= job.spec.maxAttempts) {
        const error: TaskError & { task: TaskRef } = { message: ev.error.message, task: { ...task.ref } }
        if (ev.error.stack !== undefined) error.stack = ev.error.stack
        this.endJob(job, 'failed', error)
        return
      }
    } else if (cause === 'setup') {
      // The job cannot start on that node (its command is not there): it goes elsewhere, and fails at once when no
      // node is left that could run it, rather than spending every attempt on every node the same way.
      job.unableOn.set(ev.peer, ev.error.message)
      if (this.pool(job).length === 0) {
        this.endJob(job, 'failed', { message: ev.error.message, task: { ...task.ref } })
        return
      }
    } else if (cause === 'fetch' && ev.fetch !== undefined) {
      // Only a report about where the map output is now condemns it; one about an old location is stale.
      const m = job.maps[ev.fetch.mapIndex]
      if (m !== undefined && m.done && m.location === ev.fetch.peer) this.dropHolder(m, ev.fetch.peer, 'fetch')
    }
    this.requeueIfIdle(task)
  }

  private onReducePulled (ev: Extract<SchedulerEvent, { type: 'reduce-pulled' }>): void {
    const task = ev.ref.kind === 'reduce' ? this.activeTask(ev.ref) : undefined
    if (task === undefined || task.done) return
    const a = task.attempts[ev.attempt - 1]
    if (a === undefined || a.peer !== ev.peer || a.state !== 'running') return
    const maps = task.job.maps
    for (const i of ev.maps) if (Number.isInteger(i) && i >= 0 && i < maps.length) a.pulled.add(i)
    const report = ev.failed
    const failed = report === undefined ? undefined : maps[report.mapIndex]
    // As with a fetch failure, only a report about where the output is now condemns it.
    if (report !== undefined && failed !== undefined && failed.done && failed.location === report.peer) this.dropHolder(failed, report.peer, 'fetch')
  }

  private onMapReplicated (jobId: string, mapIndex: number, peer: string, ok: boolean): void {
    const job = this.active.get(jobId)
    const m = job?.maps[mapIndex]
    if (m === undefined || m.copying?.to !== peer) return
    if (!ok) {
      this.copyElsewhere(m)
      return
    }
    const from = m.copying.from
    m.copying = undefined
    m.copies = [peer]
    m.job.outputs.copied++
    job?.peers.add(peer)
    this.complete(m, from, undefined)
  }

  private onMapOutputKnown (jobId: string, mapIndex: number, peer: string, now: number): void {
    if (this.ended.has(jobId) || this.cancelledEarly.has(jobId)) return
    // A peer that just answered an inventory is alive; a later worker-down must find it to drop the output.
    if (!this.workers.has(peer)) this.onWorkerUp(peer, 0, peer === this.self, undefined, undefined, now)
    this.endRest(peer)
    const job = this.active.get(jobId)
    if (job === undefined) {
      const facts = this.earlyFacts(jobId)
      if (!facts.maps.has(mapIndex)) facts.maps.set(mapIndex, peer)
      return
    }
    const task = taskAt(job, { jobId, kind: 'map', index: mapIndex })
    if (task !== undefined && !task.done) this.complete(task, peer, undefined)
    // Kept only by reducers until now: a reduce that starts again can pull it from here.
    else if (task !== undefined && task.location === undefined) task.location = peer
    else if (task !== undefined && task.location !== peer && !task.copies.includes(peer)) task.copies.push(peer)
  }

  private onReduceCommitted (jobId: string, partition: number): void {
    if (this.ended.has(jobId) || this.cancelledEarly.has(jobId)) return
    const job = this.active.get(jobId)
    if (job === undefined) {
      this.earlyFacts(jobId).reduces.add(partition)
      return
    }
    const task = taskAt(job, { jobId, kind: 'reduce', index: partition })
    if (task !== undefined && !task.done) this.complete(task, undefined, undefined)
  }

  private onForget (jobId: string): void {
    if (this.active.has(jobId)) return
    this.ended.delete(jobId)
    this.cancelledEarly.delete(jobId)
    const i = this.submitted.indexOf(jobId)
    if (i >= 0) this.submitted.splice(i, 1)
  }

  private onCancel (jobId: string): void {
    const job = this.active.get(jobId)
    if (job !== undefined) {
      this.endJob(job, 'failed')
    } else if (!this.ended.has(jobId)) {
      this.early.delete(jobId)
      this.cancelledEarly.add(jobId)
    }
  }

  // ── task state changes ───────────────────────────────────────────────

  /** First to finish wins: the task is done, every other attempt of it is abandoned. */
  private complete (task: Task, peer: string | undefined, duration: number | undefined): void {
    const job = task.job
    const kind = task.ref.kind
    task.done = true
    // An inventory or a late report may finish a map whose copy is still being made: that copy is not awaited.
    task.copying = undefined
    job.idle[kind].delete(task.ref.index)
    if (kind === 'map') {
      task.location = peer
      job.mapsDone++
    } else {
      job.reducesDone++
    }
    if (peer !== undefined) job.peers.add(peer)
    if (duration !== undefined) insertSorted(job.durations[kind], duration)
    for (const a of task.attempts) if (a.state === 'running') this.abandon(a)
    this.dirty.add(job)
    if (job.reducesDone === job.reduces.length) this.endJob(job, 'done')
  }

  /**
   * Map `m`'s holder is gone (down, or a reducer could not fetch from it). Its output is re-run unless every
   * reduce not done has a running attempt that already pulled it: then nothing needs it from a mapper any more.
   */
  private dropHolder (m: Task, peer: string, why: 'down' | 'fetch'): void {
    const job = m.job
    m.copies = m.copies.filter((p) => p !== peer)
    if (m.location === peer) m.location = m.copies.shift()
    // Another copy lives: reducers are sent there from now on.
    if (m.location !== undefined) return
    this.dirty.add(job)
    if (this.heldByReducers(m)) {
      job.outputs.kept++
      return
    }
    if (why === 'down') job.outputs.lostDown++
    else job.outputs.lostFetch++
    this.loseMapOutput(m)
  }

  private heldByReducers (m: Task): boolean {
    const i = m.ref.index
    for (const r of m.job.reduces) {
      if (r.done) continue
      if (!r.attempts.some((a) => a.state === 'running' && a.pulled.has(i))) return false
    }
    return true
  }

  /**
   * After reduce attempts ended unfinished: an output only reducers held, and that some reduce not done no longer
   * holds, runs again (its holder went down before, so it counts as lost to a node down).
   */
  private recheckHeld (): void {
    for (const job of this.active.values()) {
      if (!job.heldCheck) continue
      job.heldCheck = false
      for (const m of job.maps) {
        if (m.done && m.location === undefined && !this.heldByReducers(m)) {
          job.outputs.lostDown++
          this.loseMapOutput(m)
        }
      }
    }
  }

  private loseMapOutput (m: Task): void {
    m.done = false
    m.location = undefined
    m.copies = []
    m.job.mapsDone--
    this.dirty.add(m.job)
    this.requeueIfIdle(m)
  }

  private requeueIfIdle (task: Task): void {
    if (!task.done && task.running === 0 && task.copying === undefined) task.job.idle[task.ref.kind].add(task.ref.index)
    this.dirty.add(task.job)
  }

  private endAttempt (a: Attempt, state: AttemptState): void {
    a.state = state
    if (a.task.ref.kind === 'reduce' && state !== 'done' && a.pulled.size > 0) a.task.job.heldCheck = true
    a.task.running--
    a.task.job.running--
    this.workers.get(a.peer)?.running.delete(a)
    this.dirty.add(a.task.job)
  }

  private abandon (a: Attempt): void {
    this.out.push({ type: 'abandon', peer: a.peer, ref: { ...a.task.ref }, attempt: a.attempt })
    this.endAttempt(a, 'abandoned')
  }

  private endJob (job: JobState, outcome: 'done' | 'failed', error?: TaskError & { task: TaskRef }): void {
    const id = job.spec.jobId
    for (const kind of KINDS) {
      for (const t of tasksOf(job, kind)) for (const a of t.attempts) if (a.state === 'running') this.abandon(a)
    }
    this.active.delete(id)
    this.dirty.delete(job)
    const final = progressOf(job, outcome)
    this.ended.set(id, final)
    this.out.push({ type: 'progress', jobId: id, progress: copyProgress(final) })
    if (outcome === 'done') this.out.push({ type: 'job-succeeded', jobId: id })
    else if (error !== undefined) this.out.push({ type: 'job-failed', jobId: id, error })
    this.out.push({ type: 'job-ended', jobId: id, peers: [...job.peers].sort() })
  }

  // ── dispatch ─────────────────────────────────────────────────────────

  private schedule (now: number, backups: boolean): void {
    this.recheckHeld()
    // Maps and reduces have `slots` each on every worker, as Hadoop 1's TaskTrackers had: a reduce started early
    // mostly waits for map outputs, and must not hold back the maps it waits for.
    const free: Record<TaskKind, number> = { map: 0, reduce: 0 }
    for (const w of this.pool()) {
      if (w.restUntil > now) continue
      for (const kind of KINDS) free[kind] += Math.max(0, w.slots - runningOf(w, kind))
    }
    for (const job of this.active.values()) {
      if (job.mapsDone < job.maps.length) job.mapsDoneAt = undefined
      else job.mapsDoneAt ??= now
    }
    for (const job of [...this.active.values()]) {
      if (free.map === 0 && free.reduce === 0) break
      const pool = this.pool(job)
      if (!this.checkAble(job, pool, now)) continue
      for (const kind of KINDS) {
        if (kind === 'reduce' && job.mapsDone < this.slowStartMaps(job)) continue
        const queue = job.idle[kind]
        const tasks = tasksOf(job, kind)
        if (kind === 'map') free.map -= this.dispatchLocal(job, pool, free.map, now)
        let i = 0
        while (i < queue.size && free[kind] > 0) {
          const task = tasks[queue.at(i)]
          const w = this.pick(pool, task, undefined, true, now)
          if (w === undefined) { i++; continue }
          queue.removeAt(i)
          this.dispatch(task, w, now, false)
          free[kind]--
        }
      }
    }
    if (backups && free.map + free.reduce > 0) this.launchBackups(now, free)
  }

  /**
   * Maps over blocks of a dataset first go where their block is (Hadoop's data-local maps): each queued map whose
   * split names holders gets a free slot on one of them, if one has a slot. The maps with the fewest free holders
   * choose first, so that one whose block is on a single node is not crowded out there by one that had a choice.
   * What is left goes anywhere after, and pulls its block. How many were dispatched.
   */
  private dispatchLocal (job: JobState, pool: Worker[], free: number, now: number): number {
    const queue = job.idle.map
    const tasks = tasksOf(job, 'map')
    const open = (w: Worker): boolean => runningOf(w, 'map') < w.slots && w.restUntil <= now
    const candidates: Array<{ task: Task, hosts: Worker[], open: number }> = []
    for (let i = 0; i < Math.min(queue.size, LOCALITY_SCAN); i++) {
      const task = tasks[queue.at(i)]
      const names = job.spec.splits[task.ref.index]?.block?.hosts
      if (names === undefined || names.length === 0) continue
      const hosts = pool.filter((w) => names.includes(w.peer))
      const openHosts = hosts.filter(open).length
      if (openHosts > 0) candidates.push({ task, hosts, open: openHosts })
    }
    candidates.sort((a, b) => a.open - b.open)
    let sent = 0
    for (const { task, hosts } of candidates) {
      if (sent === free) break
      const w = this.pick(hosts, task, undefined, true, now)
      if (w === undefined) continue
      queue.delete(task.ref.index)
      this.dispatch(task, w, now, false)
      sent++
    }
    return sent
  }

  /** How many of the job's maps must be done before its reduces are dispatched. */
  private slowStartMaps (job: JobState): number {
    const share = job.spec.reduceSlowStart ?? this.config.reduceSlowStart
    return Math.min(job.maps.length, Math.ceil(Math.max(0, share) * job.maps.length))
  }

  /** Whether `w` may run `job`'s tasks: a streaming job needs a node that runs commands and has them. */
  private canRun (w: Worker, job: JobState): boolean {
    return !(job.spec.streaming !== undefined && w.noExec !== undefined) && !job.unableOn.has(w.peer)
  }

  /**
   * False when the job has waited `noWorkerAbleMs` with no live worker able to run it, while workers there are:
   * it then fails with their reason, instead of waiting for ever.
   */
  private checkAble (job: JobState, pool: Worker[], now: number): boolean {
    if (pool.length > 0 || this.pool().length === 0) {
      job.blockedSince = undefined
      return true
    }
    job.blockedSince ??= now
    if (now - job.blockedSince < this.config.noWorkerAbleMs) return true
    const why = [...this.workers.values()].find((w) => w.slots > 0 && w.noExec !== undefined)
    const message = why !== undefined
      ? `no node of this mesh runs streaming commands (node ${why.peer}: ${why.noExec ?? ''})`
      : `no node of this mesh can run this job: ${[...job.unableOn.values()][0] ?? 'every worker refused it'}`
    this.endJob(job, 'failed', { message, task: { jobId: job.spec.jobId, kind: 'map', index: 0 } })
    return false
  }

  /**
   * Google MapReduce §3.6: near the end of a phase, a second copy of a slow
   * task. "Slow" is relative to the phase's own finished tasks, so a job of
   * long tasks is not flooded with backups, and never below the floor, so a
   * fast job gets none at all.
   */
  private launchBackups (now: number, free: Record<TaskKind, number>): void {
    const cfg = this.config
    for (const job of this.active.values()) {
      const pool = this.pool(job)
      // The phase in progress: maps until all are done, then reduces.
      const kind = job.mapsDone < job.maps.length ? 'map' : 'reduce'
      if (free[kind] === 0) continue
      const tasks = tasksOf(job, kind)
      const notDone = tasks.length - doneOf(job, kind)
      if (notDone === 0 || notDone > Math.max(1, cfg.backupTailFraction * tasks.length)) continue
      const finished = job.durations[kind]
      const threshold = Math.max(cfg.backupMinElapsedMs, finished.length > 0 ? cfg.backupSlowFactor * median(finished) : cfg.backupMinElapsedMs)
      const slow: Attempt[] = []
      for (const t of tasks) {
        if (t.done || t.running !== 1) continue
        const a = t.attempts.find((x) => x.state === 'running')
        if (a !== undefined && now - this.workStart(a) > threshold) slow.push(a)
      }
      slow.sort((x, y) => x.start - y.start || x.task.ref.index - y.task.ref.index)
      for (const a of slow) {
        const w = this.pick(pool, a.task, a.peer, false, now)
        if (w === undefined) continue
        this.dispatch(a.task, w, now, true)
        if (--free[kind] === 0) break
      }
    }
  }

  /**
   * Every other live worker (that can run `job`, when given), or the coordinator's own node when it is alone: the coordinator keeps its CPU for
   * the job table unless nobody else can work. A worker resting after refusals stays in (see pick): a task
   * waits out a busy worker's rest rather than land on the coordinator.
   */
  private pool (job?: JobState): Worker[] {
    const others: Worker[] = []
    const selves: Worker[] = []
    for (const w of this.workers.values()) {
      if (w.slots === 0 || (job !== undefined && !this.canRun(w, job))) continue
      if (w.self) selves.push(w)
      else others.push(w)
    }
    return others.length > 0 ? others : selves
  }


  /**
   * The least-loaded worker with a free slot and not resting, other than `exclude`. A task
   * whose code failed on some workers goes elsewhere; with `mayWait` it waits
   * for a busy "elsewhere" rather than run again where it failed, and only a
   * mesh with nowhere else reuses one of those.
   */
  private pick (pool: Worker[], task: Task, exclude: string | undefined, mayWait: boolean, now: number): Worker | undefined {
    const kind = task.ref.kind
    // A map whose output was lost goes first where this job has run the fewest maps: under churn, work poured
    // into the nodes that took the most is work lost again when they leave (ties: the longest registered).
    const spread = this.config.spreadReruns && kind === 'map' && task.attempts.some((a) => a.state === 'done') ? task.job.mapAttemptsOn : undefined
    // A map over a block of a dataset goes where the block is, when such a node has a free slot (locality).
    const hosts = kind === 'map' ? task.job.spec.splits[task.ref.index]?.block?.hosts : undefined
    const better = (a: Worker | undefined, b: Worker): Worker => {
      if (a === undefined) return b
      if (hosts !== undefined) {
        const d = Number(hosts.includes(b.peer)) - Number(hosts.includes(a.peer))
        if (d !== 0) return d < 0 ? a : b
      }
      if (spread !== undefined) {
        const d = (spread.get(a.peer) ?? 0) - (spread.get(b.peer) ?? 0)
        if (d !== 0) return d < 0 ? a : b
      }
      return lessLoaded(a, b, kind)
    }
    let best: Worker | undefined
    let avoided: Worker | undefined
    let elsewhere = false
    for (const w of pool) {
      if (w.peer === exclude) continue
      const failedHere = task.failedOn.has(w.peer)
      if (!failedHere) elsewhere = true
      if (runningOf(w, kind) >= w.slots || w.restUntil > now) continue
      if (failedHere) avoided = better(avoided, w)
      else best = better(best, w)
    }
    if (best !== undefined) return best
    return mayWait && elsewhere ? undefined : avoided
  }

  private dispatch (task: Task, w: Worker, now: number, backup: boolean): void {
    const job = task.job
    const a: Attempt = { task, attempt: task.attempts.length + 1, peer: w.peer, incarnation: w.incarnation, start: now, backup, state: 'running', pulled: new Set() }
    task.attempts.push(a)
    task.running++
    job.running++
    w.running.add(a)
    job.peers.add(w.peer)
    if (task.ref.kind === 'map') job.mapAttemptsOn.set(w.peer, (job.mapAttemptsOn.get(w.peer) ?? 0) + 1)
    this.dirty.add(job)
    const { jobId, index } = task.ref
    const assignment: Assignment = task.ref.kind === 'map'
      ? { kind: 'map', jobId, index, attempt: a.attempt, split: { ...job.spec.splits[index] } }
      : { kind: 'reduce', jobId, index, attempt: a.attempt, sources: locatedMaps(job), maps: job.maps.length }
    this.out.push({ type: 'dispatch', peer: w.peer, task: assignment })
  }

  // ── helpers ──────────────────────────────────────────────────────────

  private activeTask (ref: TaskRef): Task | undefined {
    const job = this.active.get(ref.jobId)
    return job === undefined ? undefined : taskAt(job, ref)
  }

  private earlyFacts (jobId: string): EarlyFacts {
    let facts = this.early.get(jobId)
    if (facts === undefined) {
      // Facts about jobs not submitted (yet) cannot be checked: a member could name any number of made-up jobs.
      // Keep the newest few; a real job's submit follows its inventory within seconds.
      if (this.early.size >= MAX_EARLY_JOBS) this.early.delete(this.early.keys().next().value as string)
      facts = { maps: new Map(), reduces: new Set() }
      this.early.set(jobId, facts)
    }
    return facts
  }

  /** One progress effect per job per event, and only when something in it changed. */
  private flushProgress (): void {
    for (const job of this.dirty) {
      const p = progressOf(job)
      if (sameProgress(job.lastProgress, p)) continue
      job.lastProgress = p
      this.out.push({ type: 'progress', jobId: job.spec.jobId, progress: copyProgress(p) })
    }
    this.dirty.clear()
  }
}

/** Queued maps looked at for a local slot per scheduling round: enough for any free slot, bounded for huge jobs. */
const LOCALITY_SCAN = 2_000

/** Lower running/slots of that kind first (so a 4-slot worker takes more than a 1-slot one), then earlier registration. */
function lessLoaded (a: Worker | undefined, b: Worker, kind: TaskKind): Worker {
  if (a === undefined) return b
  const d = runningOf(a, kind) * b.slots - runningOf(b, kind) * a.slots
  if (d !== 0) return d < 0 ? a : b
  return a.order <= b.order ? a : b
}

/** The map outputs that can be pulled now, in map order. */
function locatedMaps (job: JobState): MapSource[] {
  const sources: MapSource[] = []
  for (const m of job.maps) if (m.done && m.location !== undefined) sources.push({ mapIndex: m.ref.index, peer: m.location })
  return sources
}

/** A malformed spec is a bug upstream (the runtime validates Submit first): refuse it before any state changes. */
function validateSpec (spec: JobSpec): void {
  if (typeof spec.jobId !== 'string' || spec.jobId === '') throw new RangeError('job id must be a non-empty string')
  if (!Number.isInteger(spec.reduces) || spec.reduces < 1) throw new RangeError(`job ${spec.jobId}: reduces must be an integer >= 1, got ${spec.reduces}`)
  if (!Number.isInteger(spec.maxAttempts) || spec.maxAttempts < 1) throw new RangeError(`job ${spec.jobId}: maxAttempts must be an integer >= 1, got ${spec.maxAttempts}`)
  spec.splits.forEach((s, i) => {
    if (s.index !== i) throw new RangeError(`job ${spec.jobId}: splits[${i}].index is ${s.index}, must be ${i}`)
  })
}
