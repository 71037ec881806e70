import type { Startable } from '@libp2p/interface'
import type { z } from 'zod'
import type { JobRecord } from '../protocol/history-messages.js'
import {
  CancelRequest, type CancelResponse, DoJobResponse, EndRequest, JOB_PROTOCOLS, jobRefOf, OkResponse, RegisterRequest, RegisterResponse, ReportRequest, StatusRequest,
  ReplicateResponse, SourcesRequest, type SourcesResponse, StatusResponse, SubmitRequest, SubmitResponse,
  type JobFailure, type JobRef, type Report, type StoredPart
} from '../protocol/job-messages.js'
import type { Manifest } from '../protocol/dataset-messages.js'
import { partFileName } from '../mapreduce/output-dir.js'
import { checkCancelSeal, checkSealedSpec } from '../protocol/job-seal.js'
import type { RegisteredHandler } from '../protocol/reqresp.js'
import type { Rpc } from '../protocol/rpc.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { MerkleTree } from '../util/merkle-tree.js'
import { HistoryRecorder, orphanedRecord } from './history-recorder.js'
import { Scheduler } from './scheduler.js'
import type { JobProgress, JobSpec, SchedulerEffect, SchedulerEvent, TaskRef } from './scheduler-types.js'
import { DEFAULT_MAX_JOBS } from './coordinator-defaults.js'

export class NotCoordinatorError extends Error {
  static readonly NAME = 'NotCoordinatorError'
  override readonly name = NotCoordinatorError.NAME
}

export type Liveness = 'alive' | 'suspect' | 'dead'

/** What the coordinator role needs from the node. */
export interface CoordinatorServiceComponents {
  self: string
  rpc: Rpc
  /** The epoch of the lease this node holds and may act on now, or undefined. */
  lease: () => number | undefined
  liveness: (peer: string) => Liveness | undefined
  /** The workers the membership view holds alive now (this node included when it runs tasks). */
  liveWorkers: () => string[]
  /** The coordinator's own logger (component coordinator). */
  log: Logger
  /** Where the job records go (the history service), and the record this node holds of a job a new epoch takes over. */
  history?: JobHistorySink
  /** Datasets in the mesh, for detached jobs (`submit --detach`): their specs and outputs. */
  detached?: DetachedJobStore
}

/** What the coordinator needs of the mesh's datasets to run a job whose submitter is gone. */
export interface DetachedJobStore {
  /** Binds a detached job's output now (this node holds the lease): undefined, or why it cannot. */
  bindOutput: (name: string, manifest: Manifest) => string | undefined
  /** Stores a sealed spec in the mesh, for the coordinators after this one. */
  storeSpec: (spec: JobSpec, signal: AbortSignal) => Promise<{ cid: string, bytes: number }>
  /** A spec stored so (checked against its CID, then against the spec schema). */
  fetchSpec: (spec: { cid: string, bytes: number }, signal: AbortSignal) => Promise<JobSpec>
}

/** The coordinator's door to the job history: what it knows of a job, and where its records go. */
export interface JobHistorySink {
  held: (jobId: string) => JobRecord | undefined
  /** The records this node holds of jobs still running (as far as it heard). */
  running: () => JobRecord[]
  publish: (records: JobRecord[]) => void
}

/** A running job's record goes out at most this often; an ended one at once. */
const HISTORY_PUBLISH_MS = 1_000

/** The longest a copy of one map output (`--intermediate-replicas`) may take before another node is tried. */
const REPLICATE_MS = 300_000

/** How long a reducer's ask for map outputs waits for one to be done before it is answered with none. */
const SOURCES_WAIT_MS = 1_000
/** Boot ids remembered across leases: a mesh's workers, with room for many that came and went. */
const MAX_BOOT_IDS = 4_096

export { DEFAULT_MAX_JOBS } from './coordinator-defaults.js'

export interface CoordinatorServiceInit {
  /** A job whose submitter has not asked for its status for this long is aborted (its submitter is gone). */
  submitterTimeoutMs?: number
  tickMs?: number
  /**
   * How long a new coordinator waits at most for every live worker to register before it schedules;
   * past this, a worker that has not registered is treated as holding nothing.
   */
  inventoryGraceMs?: number
  /** Jobs held at once (running or waiting); a submit past this is refused with that reason. */
  maxJobs?: number
  /** Only jobs signed by these identities are taken, and only they may cancel (`join --submitters`); undefined: any member. */
  submitters?: ReadonlySet<string>
}

/** A job whose input is under this share of the host's memory may keep its runs uncompressed (rawRuns). */
const RAW_RUNS_MEMORY_SHARE = 10

interface HeldJob {
  spec: JobSpec
  /** What every order of this job carries, made once from the spec. */
  ref: JobRef
  /** The splits' tree whose root the job's seal signs: each map order carries its split's proof from it. */
  splits: MerkleTree
  /** The splits' bytes together. */
  inputBytes: number
  lastPoll: number
  progress: JobProgress | undefined
  outcome: { state: 'succeeded' } | { state: 'failed' | 'cancelled', error: JobFailure } | undefined
  endedAt?: number
  /** Aborted because its submitter fell silent; a submitter that turns out alive (it was cut off) brings it back. */
  submitterLost?: boolean
  /** A detached job's parts stored so far, by partition (from reports, and from the record a new epoch resumes). */
  parts?: Map<number, StoredPart>
}

export interface CoordinatorEvents {
  /** For tests and `status`: every effect the scheduler produced, in order. */
  onEffect?: (effect: SchedulerEffect) => void
}

function taskName (t: TaskRef): string {
  return `${t.kind} ${t.index}`
}

/**
 * The coordinator role: the scheduler's state machine fed by Register, Submit,
 * reports and the failure detector, acting through DoJob. Its state is soft:
 * it lives only while this node holds the lease, and a new coordinator
 * rebuilds it from re-sent submissions and the workers' inventories.
 */
export class CoordinatorService implements Startable {
  private scheduler: Scheduler | undefined
  private epoch = -1
  private actingSince = 0
  /** Jobs accepted but not yet handed to the scheduler, because the inventories of this epoch are not all in. */
  private readonly held = new Map<string, JobSpec>()
  private readonly jobs = new Map<string, HeldJob>()
  private recorder: HistoryRecorder | undefined
  private lastPublish = 0
  private lastOrphanCheck = 0
  private lastResumeCheck = 0
  /** Detached jobs whose spec is being fetched from the mesh. */
  private readonly resuming = new Set<string>()
  /** Detached jobs whose spec is being stored in the mesh now, by id: a submit sent again waits on the same store. */
  private readonly specStores = new Map<string, Promise<{ cid: string, bytes: number }>>()
  /** A submitter re-sends its job within a poll or two of finding the new coordinator: this is long past that. */
  private readonly orphanAfterMs: number
  /** The deaths the last scheduler of this node saw: the next one starts from them (the churn rule's window). */
  private pastDeaths: number[] = []
  /**
   * Each worker's boot id as last registered with this node, whatever the epoch: one that comes back under another
   * boot id after a lapse of this node's lease died in between, which the new scheduler could not see.
   */
  private readonly bootIds = new Map<string, string>()
  /** Workers registered in this epoch: their inventories are in, and they are watched for death; their hosts, as they said. */
  private readonly workers = new Map<string, { incarnation: string, host?: string, memoryBytes?: number }>()
  private timer: NodeJS.Timeout | undefined
  private handlers: RegisteredHandler[] = []
  /** Set by stop(): a request that raced the unregistering is refused, it does not start a new epoch's scheduler. */
  private stopped = false
  /** Aborted by stop(): orders and end notices still in flight give up instead of outliving the service. */
  private lifetime = new AbortController()
  private readonly log: Logger
  private readonly submitterTimeoutMs: number
  staleReports = 0
  /** Reducers waiting for map outputs (job/sources): woken whenever a job's progress changes. */
  private readonly sourceWaiters = new Set<() => void>()

  constructor (private readonly c: CoordinatorServiceComponents, private readonly init: CoordinatorServiceInit = {}, private readonly events: CoordinatorEvents = {}) {
    this.log = c.log
    this.submitterTimeoutMs = init.submitterTimeoutMs ?? 6_000
    this.orphanAfterMs = (init.inventoryGraceMs ?? 3_000) + 4 * this.submitterTimeoutMs
  }

  async start (): Promise<void> {
    const rpc = this.c.rpc
    this.stopped = false
    this.lifetime = new AbortController()
    this.handlers = [
      await rpc.serve(JOB_PROTOCOLS.submit, SubmitRequest, (req) => this.onSubmitRequest(req.job, req.committed ?? [])),
      await rpc.serve(JOB_PROTOCOLS.status, StatusRequest, (req) => this.onStatus(req.jobId)),
      await rpc.serve(JOB_PROTOCOLS.register, RegisterRequest, (req, from) => this.onRegister(req, from)),
      await rpc.serve(JOB_PROTOCOLS.report, ReportRequest, (req, from) => this.onReport(req, from)),
      await rpc.serve(JOB_PROTOCOLS.sources, SourcesRequest, async (req, from, signal) => await this.onSources(req, from, signal)),
      await rpc.serve(JOB_PROTOCOLS.cancel, CancelRequest, (req, from) => this.onCancel(req, from))
    ]
    this.timer = setInterval(() => { this.tick() }, this.init.tickMs ?? 200)
    this.timer.unref()
  }

  /** Drops the soft state, stops the clock and every call in flight, and serves none of the protocols any more. */
  async stop (): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    this.timer = undefined
    this.lifetime.abort()
    const handlers = this.handlers
    this.handlers = []
    await Promise.all(handlers.map(async (h) => { await h.unregister() }))
    // Dropped quietly: the node is going away, this is no change of coordinator worth a line.
    this.dropSoftState()
  }

  get active (): boolean {
    return this.scheduler !== undefined
  }

  /** The scheduler for the lease held now, started afresh for a new epoch; throws when this node does not lead. */
  private acting (): Scheduler {
    const epoch = this.stopped ? undefined : this.c.lease()
    if (epoch === undefined) {
      if (this.scheduler !== undefined) this.stepDown()
      throw new NotCoordinatorError('this node is not the coordinator')
    }
    if (this.scheduler === undefined || epoch !== this.epoch) {
      if (this.scheduler !== undefined) this.pastDeaths = this.scheduler.recentDeaths()
      this.scheduler = new Scheduler({ self: this.c.self, deaths: this.pastDeaths })
      this.recorder = new HistoryRecorder(this.c.self, epoch)
      this.epoch = epoch
      this.actingSince = performance.now()
      this.jobs.clear()
      this.held.clear()
      this.workers.clear()
      this.log.info({ epoch }, 'acting as coordinator')
    }
    return this.scheduler
  }

  private stepDown (): void {
    this.log.info({ epoch: this.epoch }, 'no longer coordinator; dropping soft state')
    this.dropSoftState()
  }

  private dropSoftState (): void {
    for (const wake of [...this.sourceWaiters]) wake()
    if (this.scheduler !== undefined) this.pastDeaths = this.scheduler.recentDeaths()
    this.scheduler = undefined
    this.recorder = undefined
    this.jobs.clear()
    this.held.clear()
    this.workers.clear()
  }

  /**
   * Whether every live worker has told this epoch what it holds. Scheduling before that would run again a map
   * whose output sits, finished, on a worker that has not registered yet.
   */
  private inventoriesIn (now: number): boolean {
    if (now - this.actingSince >= (this.init.inventoryGraceMs ?? 3_000)) return true
    return this.c.liveWorkers().every((peer) => this.workers.has(peer))
  }

  private releaseHeld (now: number): void {
    if (this.held.size === 0 || !this.inventoriesIn(now)) return
    const specs = [...this.held.values()]
    this.held.clear()
    this.log.info({ jobs: specs.length, workers: this.workers.size, waitedMs: Math.round(now - this.actingSince) }, 'inventories in; scheduling held jobs')
    for (const spec of specs) this.feed({ type: 'submit', job: spec, now })
  }

  /**
   * For answers and timers that come back after the fact: the lease may have lapsed meanwhile (found when a
   * coordinator cut off into a minority crashed on a refusal's timer), and then there is nothing left to do.
   */
  private feedLater (epoch: number, event: SchedulerEvent): void {
    if (this.scheduler === undefined || this.epoch !== epoch || this.c.lease() !== epoch) return
    try {
      this.feed(event)
    } catch (err) {
      this.log.error({ err: errorMessage(err), event: event.type }, 'scheduler event failed')
    }
  }

  private feed (event: SchedulerEvent): void {
    const scheduler = this.acting()
    for (const effect of scheduler.handle(event)) this.apply(effect)
  }

  /**
   * A submit. A detached job is taken only once its sealed spec is stored in the mesh, and its record says where:
   * its submitter leaves as soon as it is answered, so a coordinator that died between the answer and the store
   * would lose the job for good. A spec that cannot be stored refuses the job, in one line the submitter shows.
   */
  private onSubmitRequest (spec: JobSpec, committed: number[]): z.input<typeof SubmitResponse> | Promise<z.input<typeof SubmitResponse>> {
    const store = this.c.detached
    if (spec.detached === undefined || store === undefined || this.jobs.has(spec.jobId) || this.c.history?.held(spec.jobId)?.detached?.spec !== undefined) return this.onSubmit(spec, committed)
    this.acting()
    // Nothing of a job refused is stored: onSubmit refuses it (and says why in the log).
    const sealed = checkSealedSpec(spec)
    if (this.refusalOf(spec, sealed) !== undefined) return this.onSubmit(spec, committed, sealed)
    let storing = this.specStores.get(spec.jobId)
    if (storing === undefined) {
      storing = store.storeSpec(spec, this.lifetime.signal).finally(() => { this.specStores.delete(spec.jobId) })
      this.specStores.set(spec.jobId, storing)
    }
    return storing.then((where) => {
      // The lease may have passed on meanwhile: onSubmit checks again.
      const answer = this.onSubmit(spec, committed, sealed)
      if (answer.refused === undefined) {
        this.recorder?.specStored(spec.jobId, where, Date.now())
        this.publishHistory(true)
      }
      return answer
    }, (err: unknown) => {
      if (this.lifetime.signal.aborted) throw err
      this.log.warn({ job: spec.jobId, err: errorMessage(err) }, 'detached job refused: its spec cannot be stored in the mesh')
      return { epoch: this.epoch, refused: `its spec cannot be stored in the mesh, where a later coordinator would find it: ${errorMessage(err)}` }
    })
  }

  /** Why a job may not be taken (its seal, its signer, its id, what a detached job may read), or undefined. */
  private refusalOf (spec: JobSpec, sealed: ReturnType<typeof checkSealedSpec>): string | undefined {
    const held = this.jobs.get(spec.jobId)
    if (sealed.problem !== undefined) return sealed.problem
    if (this.init.submitters !== undefined && !this.init.submitters.has(spec.seal.signer)) return `identity ${spec.seal.signer} is not allowed to submit to this mesh`
    // Another spec under a job id in use would keep that job alive by its polls: the id is taken.
    if (held !== undefined && held.submitterLost !== true && held.spec.seal.signature !== spec.seal.signature) return `job id ${spec.jobId} is taken by another job`
    if (spec.detached !== undefined && (spec.meshOutput === undefined || this.c.detached === undefined || spec.splits.some((s) => s.block === undefined && s.length > 0))) return 'a detached job reads and writes only datasets in the mesh'
    return undefined
  }

  /** `sealed`: the spec's seal and splits as already checked (they depend on the spec alone). */
  private onSubmit (spec: JobSpec, committed: number[], sealed = checkSealedSpec(spec)): z.input<typeof SubmitResponse> {
    this.acting()
    // Checked at every submit, a re-sent one too (the same bytes: Ed25519 signatures are deterministic).
    const signer = spec.seal.signer
    const refusal = this.refusalOf(spec, sealed)
    if (refusal !== undefined || sealed.tree === undefined) {
      this.log.warn({ job: spec.jobId, signer, submitter: spec.submitter.peer, reason: refusal }, 'job refused')
      return { epoch: this.epoch, refused: refusal }
    }
    const now = performance.now()
    let known = this.jobs.get(spec.jobId)
    let restarted = false
    if (known?.submitterLost === true) {
      // Its submitter was cut off, not gone: the job starts again (its intermediate files were dropped with it).
      this.log.warn({ job: spec.jobId }, 'submitter back; restarting its job')
      this.jobs.delete(spec.jobId)
      this.feed({ type: 'forget', jobId: spec.jobId, now })
      known = undefined
      restarted = true
    }
    if (known === undefined) {
      const maxJobs = this.init.maxJobs ?? DEFAULT_MAX_JOBS
      const open = [...this.jobs.values()].filter((j) => j.outcome === undefined).length
      if (open >= maxJobs) {
        this.log.warn({ job: spec.jobId, open, maxJobs }, 'job refused: too many jobs')
        return { epoch: this.epoch, refused: `the coordinator already holds ${open} of at most ${maxJobs} jobs (its --max-jobs); submit again when one has finished` }
      }
    }
    const prior = this.c.history?.held(spec.jobId)
    const stored = spec.detached === undefined ? [] : (prior?.detached?.parts ?? []).map((p) => p.partition)
    for (const partition of [...committed, ...stored]) this.feed({ type: 'reduce-committed', jobId: spec.jobId, partition, now })
    if (known === undefined) {
      const parts = spec.detached === undefined ? undefined : new Map((prior?.detached?.parts ?? []).map(({ partition, ...part }) => [partition, part]))
      this.jobs.set(spec.jobId, { spec, ref: jobRefOf(spec), splits: sealed.tree, inputBytes: spec.splits.reduce((n, s) => n + s.length, 0), lastPoll: now, progress: undefined, outcome: undefined, parts })
      this.recorder?.begin(spec, Date.now(), prior, restarted)
      this.log.info({ job: spec.jobId, name: spec.jobName, maps: spec.splits.length, reduces: spec.reduces, submitter: spec.submitter.peer }, 'job submitted')
    } else {
      known.lastPoll = now
    }
    if (this.inventoriesIn(now)) this.feed({ type: 'submit', job: spec, now })
    else this.held.set(spec.jobId, spec)
    return { epoch: this.epoch }
  }

  private onStatus (jobId: string): z.input<typeof StatusResponse> {
    this.acting()
    const job = this.jobs.get(jobId)
    // A job given up for its silent submitter is unknown to that submitter, which then submits it again.
    if (job === undefined || job.submitterLost === true) return { known: false, epoch: this.epoch }
    job.lastPoll = performance.now()
    const outcome = job.outcome
    return { known: true, epoch: this.epoch, progress: job.progress, error: outcome !== undefined && outcome.state !== 'succeeded' ? outcome.error : undefined, cancelled: outcome?.state === 'cancelled' ? true : undefined }
  }

  /** `mrp2p cancel`: ends a running job everywhere; an ended one is left as it ended. */
  private onCancel (req: z.output<typeof CancelRequest>, from: string): z.input<typeof CancelResponse> {
    this.acting()
    const { jobId, seal } = req
    const job = this.jobs.get(jobId)
    if (job === undefined || job.submitterLost === true) return { known: false }
    if (!checkCancelSeal(jobId, seal)) return { known: true, refused: 'the cancel request\'s signature does not verify' }
    if (this.init.submitters !== undefined && !this.init.submitters.has(seal.signer)) {
      this.log.warn({ job: jobId, signer: seal.signer, from }, 'cancel refused: identity not allowed')
      return { known: true, refused: `identity ${seal.signer} is not allowed to cancel jobs in this mesh` }
    }
    if (job.outcome !== undefined) return { known: true, state: job.outcome.state }
    const now = performance.now()
    const error = { message: `cancelled by ${seal.signer}`, task: 'job' }
    this.log.info({ job: jobId, by: seal.signer, from }, 'job cancelled')
    this.recorder?.cancelled(jobId, Date.now(), error, 'cancelled')
    this.held.delete(jobId)
    job.outcome = { state: 'cancelled', error }
    this.feed({ type: 'cancel', jobId, reason: error.message, now })
    if (job.endedAt === undefined) job.endedAt = now
    this.publishHistory(true)
    return { known: true, state: 'cancelled' }
  }

  private onRegister (req: z.output<typeof RegisterRequest>, from: string): z.input<typeof RegisterResponse> {
    const now = performance.now()
    this.acting()
    this.workers.set(from, { incarnation: req.incarnation, host: req.host, memoryBytes: req.memoryBytes })
    const before = this.bootIds.get(from)
    this.bootIds.set(from, req.incarnation)
    if (this.bootIds.size > MAX_BOOT_IDS) this.bootIds.delete(this.bootIds.keys().next().value as string)
    const restarted = before !== undefined && before !== req.incarnation
    this.feed({ type: 'worker-up', peer: from, slots: req.slots, self: from === this.c.self, incarnation: req.incarnation, noExec: req.noExec, restarted, now })
    for (const o of req.outputs) this.feed({ type: 'map-output-known', jobId: o.jobId, mapIndex: o.mapIndex, peer: from, now })
    this.releaseHeld(now)
    return { epoch: this.epoch }
  }

  private onReport (r: Report, from: string): z.input<typeof OkResponse> {
    const now = performance.now()
    this.acting()
    const ref: TaskRef = { jobId: r.jobId, kind: r.kind, index: r.index }
    if (r.epoch !== this.epoch) {
      // An order of an earlier coordinator: its attempt numbers mean nothing to us, but a finished result is still a result.
      this.staleReports++
      // Taken only from a registered worker. One that has not registered yet will (its inventory lists the output),
      // and counting it as registered here let a job start before its inventory came (a CI run re-ran two maps so).
      // Anyone else's word that it holds an output is not taken: a reducer would be sent to fetch from it.
      if (!this.workers.has(from)) return { ok: true }
      // A map output is a claim the peer answers for (a reducer that cannot fetch it has the map run again). A
      // committed part is not taken on a worker's word: the submitter, which holds the parts, says which it has.
      if (r.ok && r.kind === 'map') this.feed({ type: 'map-output-known', jobId: r.jobId, mapIndex: r.index, peer: from, now })
      return { ok: true }
    }
    this.recorder?.reported(ref, r.attempt, r.ok, Date.now(), {
      counters: r.counters,
      bytes: r.kind === 'map' ? r.partitionBytes?.reduce((n, b) => n + b, 0) : r.counters?.bytesOut,
      error: r.error?.message
    })
    const job = this.jobs.get(r.jobId)
    // Before task-done: the last part's report ends the job, and its output is bound from these.
    if (r.ok && r.kind === 'reduce' && r.part !== undefined && job?.parts !== undefined && !job.parts.has(r.index)) {
      job.parts.set(r.index, r.part)
      this.recorder?.partStored(r.jobId, r.index, r.part, Date.now())
    }
    if (r.ok) this.feed({ type: 'task-done', ref, attempt: r.attempt, peer: from, partitionBytes: r.partitionBytes, now })
    else this.feed({ type: 'task-failed', ref, attempt: r.attempt, peer: from, cause: r.cause ?? 'worker', error: r.error ?? { message: 'unknown failure' }, fetch: r.fetch, now })
    return { ok: true }
  }

  /**
   * A reduce started early: note what it pulled (or could not fetch), then answer with what it may pull now.
   * With nothing new, the answer waits up to SOURCES_WAIT_MS for a map to finish rather than have it ask again
   * and again.
   */
  private async onSources (r: z.output<typeof SourcesRequest>, from: string, signal: AbortSignal | undefined): Promise<z.input<typeof SourcesResponse>> {
    this.acting()
    const stop = { sources: [], stop: true }
    if (r.epoch !== this.epoch) return stop
    const ref: TaskRef = { jobId: r.jobId, kind: 'reduce', index: r.index }
    if (r.pulled.length > 0 || r.failed !== undefined) {
      this.feed({ type: 'reduce-pulled', ref, attempt: r.attempt, peer: from, maps: r.pulled, failed: r.failed, now: performance.now() })
    }
    const until = performance.now() + SOURCES_WAIT_MS
    for (;;) {
      const epoch = this.epoch
      const answer = this.scheduler?.reduceSources(ref, r.attempt, from)
      if (answer === undefined || epoch !== r.epoch) return stop
      const left = until - performance.now()
      if (answer.stop || answer.complete || answer.sources.length > 0 || left <= 0 || signal?.aborted === true || this.stopped) {
        return { sources: answer.sources, stop: answer.stop }
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer)
          this.sourceWaiters.delete(wake)
          resolve()
        }
        const timer = setTimeout(wake, left)
        this.sourceWaiters.add(wake)
      })
    }
  }

  private tick (): void {
    try {
      this.tickOnce()
    } catch (err) {
      // One bad job or event must not stop the clock that drives every other job (or crash the node).
      this.log.error({ err: errorMessage(err) }, 'coordinator tick failed')
    }
  }

  private tickOnce (): void {
    const now = performance.now()
    if (this.c.lease() === undefined) {
      if (this.scheduler !== undefined) this.stepDown()
      return
    }
    if (this.scheduler === undefined) return
    for (const peer of [...this.workers.keys()]) {
      if (this.c.liveness(peer) === 'dead') {
        this.workers.delete(peer)
        this.log.info({ peer }, 'worker lost')
        this.recorder?.workerLost(peer, Date.now())
        this.feed({ type: 'worker-down', peer, now })
      }
    }
    for (const [jobId, job] of this.jobs) {
      if (job.outcome === undefined && job.spec.detached === undefined && now - job.lastPoll > this.submitterTimeoutMs) {
        this.log.warn({ job: jobId, submitter: job.spec.submitter.peer }, 'submitter gone; aborting its job')
        this.held.delete(jobId)
        const error = { message: 'the submitter went away', task: 'job' }
        this.recorder?.cancelled(jobId, Date.now(), error, 'failed')
        this.feed({ type: 'cancel', jobId, reason: 'submitter gone', now })
        job.outcome = { state: 'failed', error }
        job.submitterLost = true
      }
      if (job.endedAt !== undefined && now - job.endedAt > 10 * 60_000) {
        this.jobs.delete(jobId)
        this.recorder?.drop(jobId)
      }
    }
    this.releaseHeld(now)
    this.feed({ type: 'tick', now })
    this.publishHistory(false)
    this.resumeDetached(now)
    this.endOrphans(now)
  }

  /**
   * Detached jobs the records say run, that this coordinator does not hold: their submitter will not send them
   * again, so the coordinator fetches each one's spec from the mesh and takes it as submitted, with the parts the
   * record says are stored.
   */
  private resumeDetached (now: number): void {
    const sink = this.c.history
    const store = this.c.detached
    if (sink === undefined || store === undefined || !this.inventoriesIn(now) || now - this.lastResumeCheck < 1_000) return
    this.lastResumeCheck = now
    const epoch = this.epoch
    for (const r of sink.running()) {
      const spec = r.detached?.spec
      if (spec === undefined || this.jobs.has(r.jobId) || this.held.has(r.jobId) || this.resuming.has(r.jobId)) continue
      this.resuming.add(r.jobId)
      store.fetchSpec(spec, this.lifetime.signal).then((sealed) => {
        if (this.scheduler === undefined || this.epoch !== epoch || this.c.lease() !== epoch || this.jobs.has(r.jobId)) return
        if (sealed.jobId !== r.jobId) throw new Error(`the spec stored for job ${r.jobId} is job ${sealed.jobId}'s`)
        const answer = this.onSubmit(sealed, [])
        if (answer.refused !== undefined) throw new Error(answer.refused)
        this.log.info({ job: r.jobId, parts: r.detached?.parts.length ?? 0 }, 'detached job resumed from its record')
      }).catch((err: unknown) => {
        this.log.warn({ job: r.jobId, err: errorMessage(err) }, 'cannot resume a detached job yet')
      }).finally(() => { this.resuming.delete(r.jobId) })
    }
  }

  /**
   * A detached job's reduces are all done: its output is bound now, from the parts they stored, before the job
   * counts as succeeded. False when the name could not be bound (taken meanwhile): the job fails with that reason.
   */
  private bindDetachedOutput (jobId: string): boolean {
    const job = this.jobs.get(jobId)
    const name = job?.spec.meshOutput?.name
    if (job?.parts === undefined || name === undefined || this.c.detached === undefined) return true
    const files = []
    for (let r = 0; r < job.spec.reduces; r++) {
      const part = job.parts.get(r)
      if (part === undefined) return this.failDetached(job, `part ${r} was never stored`)
      files.push({ path: partFileName(r), size: part.size, blocks: part.blocks })
    }
    const layout = job.spec.meshOutput as NonNullable<JobSpec['meshOutput']>
    const problem = this.c.detached.bindOutput(name, { files, replicas: layout.replicas, blockSize: layout.blockSize })
    if (problem === undefined) {
      this.log.info({ job: jobId, dataset: name }, 'detached job\'s output bound')
      return true
    }
    return this.failDetached(job, `cannot bind the output: ${problem}`)
  }

  private failDetached (job: HeldJob, message: string): false {
    const error = { message, task: 'job' }
    this.log.warn({ job: job.spec.jobId, err: message }, 'detached job failed')
    job.outcome = { state: 'failed', error }
    this.recorder?.cancelled(job.spec.jobId, Date.now(), error, 'failed')
    this.publishHistory(true)
    return false
  }

  /**
   * A record that says "running" for a job this coordinator has not been given, long after every live
   * submitter would have re-sent it (its submitter died with the coordinator that held it), is ended as
   * lost: nothing will finish it, and `jobs` should not show it running for ever.
   */
  private endOrphans (now: number): void {
    const sink = this.c.history
    if (sink === undefined || now - this.actingSince < this.orphanAfterMs || now - this.lastOrphanCheck < 5_000) return
    this.lastOrphanCheck = now
    // A detached job whose spec is in the mesh is resumed (resumeDetached), not lost.
    const orphans = sink.running().filter((r) => !this.jobs.has(r.jobId) && !this.held.has(r.jobId) && r.detached?.spec === undefined)
    if (orphans.length === 0) return
    this.log.warn({ jobs: orphans.map((r) => r.jobId) }, 'jobs no submitter came back for: ended as lost')
    sink.publish(orphans.map((r) => orphanedRecord(r, this.c.self, this.epoch, Date.now())))
  }

  /** Sends the records that changed: ended ones at once, running ones at most every HISTORY_PUBLISH_MS. */
  private publishHistory (now: boolean): void {
    const recorder = this.recorder
    const sink = this.c.history
    if (recorder === undefined || sink === undefined) return
    const t = performance.now()
    if (!now && t - this.lastPublish < HISTORY_PUBLISH_MS && !recorder.hasEnded()) return
    this.lastPublish = t
    const changed = recorder.takeChanged()
    if (changed.length > 0) sink.publish(changed)
  }

  private apply (effect: SchedulerEffect): void {
    if (effect.type === 'job-succeeded' && !this.bindDetachedOutput(effect.jobId)) return
    this.events.onEffect?.(effect)
    this.recorder?.effect(effect, Date.now())
    switch (effect.type) {
      case 'dispatch': {
        const job = this.jobs.get(effect.task.jobId)
        if (job === undefined) return
        void this.dispatch(effect.peer, job, effect.task)
        return
      }
      case 'replicate': {
        const job = this.jobs.get(effect.jobId)
        if (job === undefined) return
        const epoch = this.epoch
        const ask = { epoch, jobId: effect.jobId, mapIndex: effect.mapIndex, from: effect.from, reduces: job.spec.reduces }
        // A copy is as long as the map output: minutes for a big one, not the 10 s of an order.
        void this.c.rpc.call(effect.peer, JOB_PROTOCOLS.replicate, ask, ReplicateResponse, { signal: this.lifetime.signal, timeouts: { responseMs: REPLICATE_MS } })
          .then((r) => r.ok, (err: unknown) => { this.log.debug({ peer: effect.peer, err: errorMessage(err) }, 'copy of a map output failed'); return false })
          .then((ok) => { this.feedLater(epoch, { type: 'map-replicated', jobId: effect.jobId, mapIndex: effect.mapIndex, peer: effect.peer, ok, now: performance.now() }) })
        return
      }
      case 'abandon':
        void this.c.rpc.call(effect.peer, JOB_PROTOCOLS.end, { jobId: effect.ref.jobId, epoch: this.epoch, task: { kind: effect.ref.kind, index: effect.ref.index, attempt: effect.attempt } } satisfies z.input<typeof EndRequest>, OkResponse, { signal: this.lifetime.signal })
          .catch((err: unknown) => { this.log.debug({ peer: effect.peer, err: errorMessage(err) }, 'abandon not delivered') })
        return
      case 'progress': {
        const job = this.jobs.get(effect.jobId)
        if (job !== undefined) job.progress = effect.progress
        for (const wake of [...this.sourceWaiters]) wake()
        return
      }
      case 'job-succeeded': {
        const job = this.jobs.get(effect.jobId)
        if (job !== undefined) job.outcome = { state: 'succeeded' }
        this.log.info({ job: effect.jobId }, 'job succeeded')
        return
      }
      case 'job-failed': {
        const job = this.jobs.get(effect.jobId)
        if (job !== undefined) job.outcome = { state: 'failed', error: { ...effect.error, task: taskName(effect.error.task) } }
        this.log.warn({ job: effect.jobId, err: effect.error.message }, 'job failed')
        return
      }
      case 'job-ended': {
        const job = this.jobs.get(effect.jobId)
        if (job !== undefined) job.endedAt ??= performance.now()
        for (const peer of effect.peers) {
          void this.c.rpc.call(peer, JOB_PROTOCOLS.end, { jobId: effect.jobId, epoch: this.epoch }, OkResponse, { signal: this.lifetime.signal })
            .catch((err: unknown) => { this.log.debug({ peer, err: errorMessage(err) }, 'job end not delivered') })
        }
      }
    }
  }

  /**
   * Whether a map of `job` on `peer` should store its runs uncompressed (attempt-runner.ts): when every worker
   * registered now said it runs on `peer`'s host, reducers link them in place and never send them; and when the
   * job's input is under a tenth of the memory each worker reported, its runs and its output, about twice the input,
   * stay under the kernel's dirty-page limit (a fifth of memory by default) and are never throttled to disk.
   * Past it, compressed runs were faster: the 4 GiB sort on this 24 GiB machine took 64–67 s compressed against
   * 77–81 s not, the 1 GiB sort 15 s against 16–17 (docs/performance.md, stop 34). A hint only: a worker that joins
   * from another host later fetches such runs as they are, which costs bytes, not correctness.
   */
  private rawRuns (peer: string, job: HeldJob): boolean {
    const host = this.workers.get(peer)?.host
    if (host === undefined) return false
    for (const w of this.workers.values()) {
      if (w.host !== host || w.memoryBytes === undefined || job.inputBytes > w.memoryBytes / RAW_RUNS_MEMORY_SHARE) return false
    }
    return true
  }

  private async dispatch (peer: string, job: HeldJob, task: Extract<SchedulerEffect, { type: 'dispatch' }>['task']): Promise<void> {
    const epoch = this.epoch
    let reason: string
    let unreachable = false
    let unable = false
    try {
      const splitProof = task.kind === 'map' ? job.splits.proof(task.index) : undefined
      const order = task.kind === 'map' && this.rawRuns(peer, job) ? { ...task, rawRuns: true as const } : task
      const answer = await this.c.rpc.call(peer, JOB_PROTOCOLS.doJob, { epoch, job: job.ref, task: order, splitProof }, DoJobResponse, { signal: this.lifetime.signal })
      if (answer.accepted) return
      reason = answer.reason ?? 'refused'
      unable = answer.unable === true
    } catch (err) {
      reason = errorMessage(err)
      unreachable = true
    }
    if (this.scheduler === undefined || this.epoch !== epoch) return
    this.log.info({ peer, task: `${task.kind}-${task.index}`, attempt: task.attempt, reason }, 'dispatch failed')
    const ref = { jobId: task.jobId, kind: task.kind, index: task.index }
    this.recorder?.notTaken(ref, task.attempt, unreachable, reason, Date.now())
    if (unreachable) {
      // A node that cannot be reached gets no more orders until it registers again (live workers do so every few
      // seconds); otherwise every re-queued task would go straight back to it, in a tight loop, until the failure
      // detector catches up.
      this.feedLater(epoch, { type: 'task-failed', ref, attempt: task.attempt, peer, cause: 'worker', error: { message: `worker did not take the task: ${reason}` }, now: performance.now() })
      if (this.workers.delete(peer)) this.feedLater(epoch, { type: 'worker-down', peer, now: performance.now() })
      return
    }
    if (unable) {
      // The worker will run none of this job (its seal, or its signer, is refused there): like a command missing
      // there, the job goes to other nodes, and fails with this reason once no node is left that would run it.
      this.feedLater(epoch, { type: 'task-failed', ref, attempt: task.attempt, peer, cause: 'setup', error: { message: reason }, now: performance.now() })
      return
    }
    // A refusal (busy, stale epoch) puts the task back in the queue now; the scheduler rests that worker a while.
    this.feedLater(epoch, { type: 'task-refused', ref, attempt: task.attempt, peer, now: performance.now() })
  }
}
