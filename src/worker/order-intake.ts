import type { Startable } from '@libp2p/interface'
import { DoJobRequest, EndRequest, JOB_PROTOCOLS, type DoJobResponse, type OkResponse } from '../protocol/job-messages.js'
import type { RegisteredHandler } from '../protocol/reqresp.js'
import { errorMessage } from '../util/errors.js'
import { createLogLimiter } from '../util/log-limiter.js'
import type { Logger } from '../util/logger.js'
import type { z } from 'zod'
import { attemptName, type AttemptOutcome, type WorkOrder } from './attempt.js'
import type { AttemptRunner } from './attempt-runner.js'
import type { EpochFence } from './epoch-fence.js'
import type { IntermediateStore } from './intermediate-store.js'
import type { OrderSealCheck, SealRefusalKind } from './order-seal-check.js'
import type { ReportSender } from './report-sender.js'
import { RunningAttempts } from './running-attempts.js'
import type { CoordinatorRef, WorkerRpc } from './worker-components.js'

type EndOrder = z.output<typeof EndRequest>

/** How long a worker remembers that a job ended, to clean up after attempts that outlive the end order. */
const ENDED_MEMORY_MS = 10 * 60_000

/** Attempts started here and how they ended. */
export interface AttemptCounts { started: number, succeeded: number, failed: number }

/** One attempt that ran here, as the node's metrics count it. */
export interface AttemptObservation {
  kind: 'map' | 'reduce'
  outcome: 'succeeded' | 'failed' | 'abandoned'
  durationMs: number
  outcomeDetail?: AttemptOutcome
}

export interface OrderIntakeParts {
  rpc: WorkerRpc
  coordinator: () => CoordinatorRef | undefined
  fence: EpochFence
  store: IntermediateStore
  attempts: AttemptRunner
  reports: ReportSender
  log: Logger
  /** Told of every attempt that ends here (the node's metrics). */
  onAttempt?: (attempt: AttemptObservation) => void
  /** Why this node runs no streaming commands (`--no-exec`, or `--sandbox` without bubblewrap); undefined when it does. */
  noExec: () => string | undefined
  /** Checks each order's job seal (and signer) before anything of it runs. */
  seals: OrderSealCheck
  /** Told of every order refused for its seal (the node's metrics). */
  onSealRefusal?: (kind: SealRefusalKind) => void
}

/**
 * The worker's end of DoJob and End: takes an order only from the coordinator this node follows and only
 * of an epoch not older than its fence, one per free slot; runs it and has it reported; stops attempts, or
 * drops a whole job's files, when told to.
 */
export class OrderIntake implements Startable {
  readonly running = new RunningAttempts()
  readonly counts: AttemptCounts = { started: 0, succeeded: 0, failed: 0 }
  /** Orders refused for their job's seal. */
  sealRefusals = 0
  private readonly refusalLog = createLogLimiter(10_000)
  /** When each job's end order came (performance.now()), kept for ENDED_MEMORY_MS. */
  private readonly endedAt = new Map<string, number>()
  /** Attempts not yet wound down: `stop()` waits for them, so that nothing of a stopped worker still runs. */
  private readonly inFlight = new Set<Promise<void>>()
  private handlers: RegisteredHandler[] = []

  constructor (private readonly parts: OrderIntakeParts, private readonly slots: number) {}

  async start (): Promise<void> {
    const { rpc } = this.parts
    this.handlers = [
      await rpc.serve(JOB_PROTOCOLS.doJob, DoJobRequest, (req, from) => this.onDoJob(req, from)),
      await rpc.serve(JOB_PROTOCOLS.end, EndRequest, (req, from) => this.onEnd(req, from))
    ]
  }

  /** Unregisters both protocols, stops every attempt, and waits until they have wound down. */
  async stop (): Promise<void> {
    const handlers = this.handlers
    this.handlers = []
    await Promise.all(handlers.map(async (h) => { await h.unregister() }))
    this.running.abortAll()
    await Promise.allSettled([...this.inFlight])
  }

  private onDoJob (req: WorkOrder, from: string): z.output<typeof DoJobResponse> {
    const { fence, coordinator, log } = this.parts
    // The lease this node follows is as good a witness as a DoJob: an order older than it comes from a deposed coordinator.
    const following = coordinator()?.epoch
    if (following !== undefined) fence.raise(following)
    if (fence.isStale(req.epoch)) {
      log.info({ from, epoch: req.epoch, fence: fence.value }, 'refused an order of a stale epoch')
      return { accepted: false, reason: `stale epoch ${req.epoch} < ${fence.value}` }
    }
    // Only the coordinator this node follows gives orders: any other peer's order (and its epoch, which would
    // raise the fence on disk for good) is refused, so a member cannot run tasks here or lock this worker out.
    const lead = coordinator()
    if (lead === undefined || lead.peer !== from || lead.epoch !== req.epoch) {
      return { accepted: false, reason: 'not the coordinator this node follows' }
    }
    fence.raise(req.epoch)
    // Checked before anything else of the job happens here: no code is fetched, no file made, no slot taken.
    const refusal = this.parts.seals.check(req)
    if (refusal !== undefined) {
      this.sealRefusals++
      this.parts.onSealRefusal?.(refusal.kind)
      const suppressed = this.refusalLog.admit(`${from}:${req.job.jobId}:${refusal.kind}`)
      if (suppressed !== undefined) log.warn({ coordinator: from, job: req.job.jobId, signer: req.job.seal.signer, refusal: refusal.kind, reason: refusal.reason, suppressed }, 'refused an order: its job is not signed as this node requires')
      return { accepted: false, unable: true, reason: refusal.reason }
    }
    if (this.running.sizeOf(req.task.kind) >= this.slots) return { accepted: false, reason: 'no free slot' }
    // The coordinator knows from our registration and sends none; one that does anyway is refused, not obeyed.
    const noExec = req.job.streaming === undefined ? undefined : this.parts.noExec()
    if (noExec !== undefined) return { accepted: false, reason: noExec }
    const name = attemptName(req)
    if (this.running.has(name)) return { accepted: true }
    const signal = this.running.add(name)
    this.counts.started++
    const startedAt = performance.now()
    let released = false
    // Frees the slot: called before the report goes out, since the coordinator fills the slot as soon as it reads it.
    const release = (): void => {
      if (released) return
      released = true
      this.running.delete(name)
      this.dropIfEnded(req.job.jobId, startedAt)
    }
    const attempt: Promise<void> = this.runOrder(req, signal, release, from)
      .catch((err: unknown) => { log.warn({ job: req.job.jobId, task: `${req.task.kind}-${req.task.index}`, err: errorMessage(err) }, 'attempt could not run') })
      .finally(() => {
        release()
        this.inFlight.delete(attempt)
      })
    this.inFlight.add(attempt)
    return { accepted: true }
  }

  private async runOrder (order: WorkOrder, signal: AbortSignal, release: () => void, dispatcher: string): Promise<void> {
    const started = performance.now()
    const outcome = await this.parts.attempts.run(order, signal, dispatcher)
    this.parts.onAttempt?.({ kind: order.task.kind, outcome: outcome === undefined ? 'abandoned' : outcome.ok ? 'succeeded' : 'failed', durationMs: performance.now() - started, outcomeDetail: outcome })
    if (outcome === undefined) return
    if (outcome.ok) this.counts.succeeded++
    else this.counts.failed++
    // Freed only now, the slot was still taken when the coordinator's next order came back on the heels of this
    // report: refused with 'no free slot', and every such task waited out a back-off (about one map in five).
    release()
    await this.parts.reports.send({ ...attemptName(order), ...outcome }, dispatcher)
  }

  private onEnd (req: EndOrder, from: string): z.output<typeof OkResponse> {
    // Only the coordinator this node follows may end a job here (and so delete its files).
    if (this.parts.coordinator()?.peer !== from) return { ok: true }
    if (req.task === undefined) this.endJob(req.jobId)
    else this.running.abort({ jobId: req.jobId, kind: req.task.kind, index: req.task.index, epoch: req.epoch, attempt: req.task.attempt })
    return { ok: true }
  }

  private endJob (jobId: string): void {
    const now = performance.now()
    for (const [id, at] of this.endedAt) if (now - at > ENDED_MEMORY_MS) this.endedAt.delete(id)
    this.endedAt.set(jobId, now)
    this.running.abortJob(jobId)
    this.parts.store.removeJob(jobId)
  }

  /**
   * An attempt that was still winding down when its job's end order came (or whose order overtook it) may have
   * written into the store after the job's folder was removed. The last such attempt removes the folder again.
   */
  private dropIfEnded (jobId: string, startedAt: number): void {
    if ((this.endedAt.get(jobId) ?? -Infinity) < startedAt) return
    if (this.running.hasJob(jobId)) return
    this.parts.store.removeJob(jobId)
  }
}
