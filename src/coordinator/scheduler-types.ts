/**
 * The coordinator's scheduler speaks only in these values: events in, effects
 * out. Nothing here touches a socket, a timer or the clock, so the runtime can
 * change (or be replaced in a simulation) without the rules changing.
 * docs/scheduler.md describes the state machine behind them.
 */

// The shapes that cross the wire are the protocol's schemas' (type-only: this module stays free of I/O and zod).
import type {
  Assignment, FailureCause, JobFailure, JobProgress, JobSpec, MapAssignment, ReduceAssignment, Report, SplitDescriptor, TaskError, TaskKind
} from '../protocol/job-messages.js'

export type { Assignment, FailureCause, JobFailure, JobProgress, JobSpec, MapAssignment, ReduceAssignment, SplitDescriptor, TaskError, TaskKind }

/** Where one map output can be pulled from. */
export type MapSource = ReduceAssignment['sources'][number]

/**
 * What a reduce attempt started early may pull now; `stop` when the attempt is no longer wanted, `complete`
 * when it has reported every map's output pulled.
 */
export interface ReduceSources { sources: MapSource[], stop: boolean, complete: boolean }

export interface TaskRef { jobId: string, kind: TaskKind, index: number }

export type SchedulerEvent =
  /** Idempotent: the same jobId again (even after the job ended) is a no-op that returns the current progress. */
  | { type: 'submit', job: JobSpec, now: number }
  /**
   * Idempotent; also updates slots and `noExec` (why it runs no streaming job's commands; such jobs go elsewhere). `incarnation` (the node's boot id, if the
   * runtime has one) tells a restart that the failure detector missed from a
   * repeated registration: a new value is handled as worker-down then worker-up. `restarted`: the runtime saw
   * this node under another boot id before this scheduler began (an earlier lease of this node), so it died in
   * between: counted as a death for the churn rule.
   */
  | { type: 'worker-up', peer: string, slots: number, self?: boolean, incarnation?: string, noExec?: string, restarted?: boolean, now: number }
  | { type: 'worker-down', peer: string, now: number }
  | { type: 'task-done', ref: TaskRef, attempt: number, peer: string, partitionBytes?: number[], now: number }
  | { type: 'task-failed', ref: TaskRef, attempt: number, peer: string, cause: FailureCause, error: TaskError, fetch?: Report['fetch'], now: number }
  /**
   * The worker did not take the order (no free slot, not its coordinator, a stale epoch): the task goes back to
   * the queue at once and the refusal is no failure of the job, but that worker gets no order for a pause that
   * doubles with each refusal in a row, so a worker that refuses everything is not offered every task in a loop.
   */
  | { type: 'task-refused', ref: TaskRef, attempt: number, peer: string, now: number }
  /**
   * A reduce attempt started before every map was done pulled these map outputs to its own disk (`maps`), or could
   * not fetch one (`failed`: that output is lost, as with a fetch failure, but the attempt goes on).
   */
  | { type: 'reduce-pulled', ref: TaskRef, attempt: number, peer: string, maps: number[], failed?: MapSource, now: number }
  /** The copy of a map output that a `replicate` effect asked for is made at `peer` (`ok`), or could not be. */
  | { type: 'map-replicated', jobId: string, mapIndex: number, peer: string, ok: boolean, now: number }
  /** A worker's inventory after a coordinator change: this finished map output exists there. */
  | { type: 'map-output-known', jobId: string, mapIndex: number, peer: string, now: number }
  /** The submitter already holds this part. */
  | { type: 'reduce-committed', jobId: string, partition: number, now: number }
  | { type: 'cancel', jobId: string, reason: string, now: number }
  /**
   * Forget how an ended job ended, so that a later submit of the same id starts it afresh: a submitter that was
   * cut off long enough to be taken for dead comes back. No-op for a job still running.
   */
  | { type: 'forget', jobId: string, now: number }
  | { type: 'tick', now: number }

export type SchedulerEffect =
  | { type: 'dispatch', peer: string, task: Assignment }
  /** Copy map `mapIndex`'s finished output from `from` to `peer` (`--intermediate-replicas`); answered by `map-replicated`. */
  | { type: 'replicate', peer: string, jobId: string, mapIndex: number, from: string }
  /** Another attempt won or the job ended: stop/ignore this one. */
  | { type: 'abandon', peer: string, ref: TaskRef, attempt: number }
  /** Emitted whenever a count or the phase changes (at most once per job per event), and in reply to a repeated submit. */
  | { type: 'progress', jobId: string, progress: JobProgress }
  | { type: 'job-succeeded', jobId: string }
  | { type: 'job-failed', jobId: string, error: TaskError & { task: TaskRef } }
  /** After success/failure/cancel: peers that may hold its intermediate files (to clean up), sorted. */
  | { type: 'job-ended', jobId: string, peers: string[] }
