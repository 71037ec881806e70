/**
 * The scheduler's internal records. Kept apart from the rules in scheduler.ts
 * so those read as rules; nothing here is exported from the package.
 */
import type { JobProgress, JobSpec, TaskKind, TaskRef } from './scheduler-types.js'

export const KINDS: readonly TaskKind[] = ['map', 'reduce']

/**
 * running → done (it won) | failed (it reported an error) | lost (its worker
 * went down) | abandoned (another attempt won, or the job ended). A lost
 * attempt may still turn into done: a reduce's part is at the submitter
 * whoever reports it, and a wrongly suspected worker still holds its map output.
 */
export type AttemptState = 'running' | 'done' | 'failed' | 'lost' | 'abandoned'

export interface Attempt {
  readonly task: Task
  readonly attempt: number
  readonly peer: string
  /** The worker's boot id when it was dispatched, if the runtime gives one. */
  readonly incarnation: string | undefined
  readonly start: number
  readonly backup: boolean
  state: AttemptState
  /** Reduce only: the maps whose output this attempt reported as pulled to its own disk (it keeps them while it runs). */
  readonly pulled: Set<number>
}

export interface Task {
  readonly job: JobState
  readonly ref: TaskRef
  done: boolean
  /** Map only: the peer that holds this map's output while `done` (reducers are sent there). */
  location: string | undefined
  /** Map only: other peers holding a copy of it (`--intermediate-replicas`); one takes over when `location` is lost. */
  copies: string[]
  /** Map only: its output is done at `from` and being copied to `to` before the map counts as done. */
  copying: { from: string, to: string, tried: Set<string> } | undefined
  /** Every attempt ever issued, `attempts[n - 1]` being attempt n: numbers are never reused. */
  readonly attempts: Attempt[]
  /** How many of `attempts` are running. */
  running: number
  userFailures: number
  /** Workers where the user's code failed on this task: a retry avoids them when it can. */
  readonly failedOn: Set<string>
}

export interface JobState {
  readonly spec: JobSpec
  readonly maps: Task[]
  readonly reduces: Task[]
  mapsDone: number
  reducesDone: number
  /** Tasks that are neither done nor running, by kind, lowest index first. */
  readonly idle: Record<TaskKind, IndexQueue>
  /** Durations of the winning attempts, by kind, sorted (for the straggler median). */
  readonly durations: Record<TaskKind, number[]>
  running: number
  failedAttempts: number
  /** Every peer that ran an attempt or held an output of this job: cleanup targets. */
  readonly peers: Set<string>
  lastProgress: JobProgress | undefined
  /** Peers where the job cannot start at all (a `setup` failure: a streaming command not found there), with why. */
  readonly unableOn: Map<string, string>
  /** Since when no live worker could run this job while it had tasks waiting (streaming jobs on --no-exec nodes). */
  blockedSince: number | undefined
  /** Map attempts of this job given to each peer: a re-run goes to the peer that has had the fewest. */
  readonly mapAttemptsOn: Map<string, number>
  /** Map outputs whose holder went away: re-run, by why, or kept because every reduce not done had pulled them; and those copied. */
  readonly outputs: { lostDown: number, lostFetch: number, kept: number, copied: number }
  /** Map outputs held by reducers alone, to check again once a reduce attempt has ended without finishing. */
  heldCheck: boolean
  /** Since when every map has been done: a reduce started early is timed from here, not from its dispatch. */
  mapsDoneAt: number | undefined
}

export interface Worker {
  readonly peer: string
  slots: number
  self: boolean
  incarnation: string | undefined
  readonly running: Set<Attempt>
  /** Registration order: the last tie-break, so choices never depend on anything but the events. */
  readonly order: number
  /** Refusals in a row, and until when it gets no order because of them (see the task-refused event). */
  refusals: number
  restUntil: number
  /** Why it runs no streaming commands (`join --no-exec`, or `--sandbox` without bubblewrap); undefined when it does. */
  noExec: string | undefined
}

/** A worker's running attempts of one kind: maps and reduces have `slots` each (a reduce pulling early waits on I/O, not a core). */
export function runningOf (w: Worker, kind: TaskKind): number {
  let n = 0
  for (const a of w.running) if (a.task.ref.kind === kind) n++
  return n
}

export function newJob (spec: JobSpec): JobState {
  const job: JobState = {
    spec,
    maps: [],
    reduces: [],
    mapsDone: 0,
    reducesDone: 0,
    idle: { map: new IndexQueue(), reduce: new IndexQueue() },
    durations: { map: [], reduce: [] },
    running: 0,
    failedAttempts: 0,
    peers: new Set(),
    lastProgress: undefined,
    unableOn: new Map(),
    blockedSince: undefined,
    mapAttemptsOn: new Map(),
    outputs: { lostDown: 0, lostFetch: 0, kept: 0, copied: 0 },
    heldCheck: false,
    mapsDoneAt: undefined
  }
  const task = (kind: TaskKind, index: number): Task => {
    job.idle[kind].add(index)
    return { job, ref: { jobId: spec.jobId, kind, index }, done: false, location: undefined, copies: [], copying: undefined, attempts: [], running: 0, userFailures: 0, failedOn: new Set() }
  }
  for (let i = 0; i < spec.splits.length; i++) job.maps.push(task('map', i))
  for (let r = 0; r < spec.reduces; r++) job.reduces.push(task('reduce', r))
  return job
}

export function tasksOf (job: JobState, kind: TaskKind): Task[] {
  return kind === 'map' ? job.maps : job.reduces
}

export function doneOf (job: JobState, kind: TaskKind): number {
  return kind === 'map' ? job.mapsDone : job.reducesDone
}

/** The task a ref names, or undefined for a ref that names nothing (a bad or stale message). */
export function taskAt (job: JobState, ref: TaskRef): Task | undefined {
  if (ref.kind !== 'map' && ref.kind !== 'reduce') return undefined
  const tasks = tasksOf(job, ref.kind)
  return Number.isInteger(ref.index) && ref.index >= 0 && ref.index < tasks.length ? tasks[ref.index] : undefined
}

export function progressOf (job: JobState, phase?: JobProgress['phase']): JobProgress {
  const p: JobProgress = {
    maps: { done: job.mapsDone, total: job.maps.length },
    reduces: { done: job.reducesDone, total: job.reduces.length },
    running: job.running,
    failedAttempts: job.failedAttempts,
    phase: phase ?? (job.mapsDone < job.maps.length ? 'map' : 'reduce')
  }
  // Only once an output went missing or was copied: a calm job's progress stays as short as it was.
  const o = job.outputs
  if (o.lostDown + o.lostFetch + o.kept + o.copied > 0) p.mapOutputs = { ...o }
  return p
}

export function sameProgress (a: JobProgress | undefined, b: JobProgress): boolean {
  return a !== undefined && a.phase === b.phase && a.running === b.running && a.failedAttempts === b.failedAttempts &&
    a.maps.done === b.maps.done && a.maps.total === b.maps.total &&
    a.reduces.done === b.reduces.done && a.reduces.total === b.reduces.total &&
    a.mapOutputs?.lostDown === b.mapOutputs?.lostDown && a.mapOutputs?.lostFetch === b.mapOutputs?.lostFetch && a.mapOutputs?.kept === b.mapOutputs?.kept &&
    a.mapOutputs?.copied === b.mapOutputs?.copied
}

export function copyProgress (p: JobProgress): JobProgress {
  const copy = { ...p, maps: { ...p.maps }, reduces: { ...p.reduces } }
  if (p.mapOutputs !== undefined) copy.mapOutputs = { ...p.mapOutputs }
  return copy
}

/**
 * Ascending set of task indexes. A sorted array: the queue is walked from the
 * front on every event, and re-queued tasks must go back to their place so a
 * retried low index is not starved behind the rest of the job.
 */
export class IndexQueue {
  private readonly items: number[] = []

  get size (): number { return this.items.length }

  at (i: number): number { return this.items[i] }

  add (index: number): void {
    const i = lowerBound(this.items, index)
    if (this.items[i] !== index) this.items.splice(i, 0, index)
  }

  delete (index: number): void {
    const i = lowerBound(this.items, index)
    if (this.items[i] === index) this.items.splice(i, 1)
  }

  removeAt (i: number): void {
    this.items.splice(i, 1)
  }
}

export function insertSorted (xs: number[], x: number): void {
  xs.splice(lowerBound(xs, x), 0, x)
}

export function median (sorted: readonly number[]): number {
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function lowerBound (xs: readonly number[], x: number): number {
  let lo = 0
  let hi = xs.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (xs[mid] < x) lo = mid + 1
    else hi = mid
  }
  return lo
}
