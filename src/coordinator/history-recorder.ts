import type {
  AttemptOutcomeName, AttemptRecord, JobCounters, JobRecord, JobState, TaskCounters, TaskRecord
} from '../protocol/history-messages.js'
import { MAX_RECORDED_ATTEMPTS } from '../protocol/history-messages.js'
import type { StoredPart } from '../protocol/job-messages.js'
import { NO_COUNTS, sumCounts, withCounts, type ProgressCounts } from './progress-counts.js'
import type { JobFailure, JobSpec, SchedulerEffect, TaskKind, TaskRef } from './scheduler-types.js'

/** The first line of a message, cut to what a record keeps. */
export function firstLine (message: string): string {
  const line = message.split('\n', 1)[0] ?? ''
  return line.length > 500 ? `${line.slice(0, 497)}...` : line
}

const ZERO_COUNTERS: JobCounters = {
  mapRecordsIn: 0, mapBytesIn: 0, mapRecordsOut: 0, mapBytesOut: 0, reduceRecordsIn: 0, reduceRecordsOut: 0, reduceBytesOut: 0, shuffleRawBytes: 0, shuffleBytes: 0, shuffleLinkedBytes: 0, inputFetchedBytes: 0, blockFetchedBytes: 0, outputSentBytes: 0
}

interface Recording {
  record: JobRecord
  /** Tasks by kind and index, for the attempts' updates. */
  tasks: Map<string, TaskRecord>
  /** Tasks whose first success is counted already. */
  counted: Set<string>
  attempts: number
  dirty: boolean
  /** What the coordinators before this one counted (failed attempts, lost outputs): this scheduler counts from 0. */
  before: ProgressCounts
}

function taskKey (kind: TaskKind, index: number): string {
  return `${kind}:${index}`
}

/**
 * The record of a job that no coordinator holds any more, ended: its submitter went away while no
 * coordinator held it (both died), so nothing will ever finish it. Its running attempts are lost with it.
 */
export function orphanedRecord (record: JobRecord, self: string, epoch: number, now: number): JobRecord {
  const tasks = record.tasks.map((t) => ({
    ...t,
    attempts: t.attempts.map((a) => a.outcome === 'running' ? { ...a, outcome: 'lost' as const, endedAt: now, error: a.error ?? 'its coordinator changed' } : a)
  }))
  return {
    ...record,
    tasks,
    state: 'failed',
    endedAt: now,
    updatedAt: Math.max(now, record.updatedAt + 1),
    coordinator: self,
    epoch,
    progress: { ...record.progress, running: 0, phase: 'failed' },
    failure: { task: 'job', message: 'the job was lost: its submitter did not come back to a new coordinator' }
  }
}

/**
 * Builds each job's history record from what the coordinator sees: the scheduler's effects (an order sent,
 * an attempt abandoned, the job's end) and the workers' reports. Pure, like the scheduler it watches: the
 * wall clock comes in with every call. A coordinator that takes over a running job starts from the record
 * the previous one last pushed, so attempts of earlier epochs stay in the history.
 */
export class HistoryRecorder {
  private readonly jobs = new Map<string, Recording>()

  constructor (private readonly self: string, private readonly epoch: number) {}

  /**
   * A job this coordinator now runs. `prior`: the record this node holds for it (pushed by an earlier
   * coordinator); `restarted`: the job had ended and is run again (its submitter came back).
   */
  begin (spec: JobSpec, now: number, prior?: JobRecord, restarted = false): void {
    if (this.jobs.has(spec.jobId) && !restarted) return
    const base: JobRecord = prior !== undefined && !restarted && prior.state === 'running'
      ? { ...prior, coordinator: this.self, epoch: this.epoch, updatedAt: now }
      : {
          jobId: spec.jobId,
          jobName: spec.jobName,
          submitter: spec.submitter.peer,
          identity: spec.seal.signer,
          codeHash: spec.codeHash,
          inputs: { count: new Set(spec.splits.map((s) => s.document)).size, bytes: spec.splits.reduce((n, s) => n + s.length, 0) },
          maps: spec.splits.length,
          reduces: spec.reduces,
          params: spec.params,
          options: { taskTimeoutMs: spec.taskTimeoutMs, memoryBytes: spec.memoryBytes, compress: spec.compress },
          maxAttempts: spec.maxAttempts,
          submittedAt: prior?.submittedAt ?? now,
          state: 'running',
          coordinator: this.self,
          epoch: this.epoch,
          updatedAt: now,
          generation: prior === undefined ? 0 : prior.generation + (restarted || prior.state !== 'running' ? 1 : 0),
          progress: { maps: { done: 0, total: spec.splits.length }, reduces: { done: 0, total: spec.reduces }, running: 0, failedAttempts: 0, phase: 'map' },
          counters: { ...ZERO_COUNTERS },
          tasks: [],
          attemptsOmitted: 0,
          sampleLog: spec.sampleLog,
          streaming: spec.streaming,
          detached: spec.detached !== undefined && spec.meshOutput !== undefined ? { output: spec.meshOutput.name, parts: [] } : undefined
        }
    const tasks = new Map<string, TaskRecord>()
    const counted = new Set<string>()
    let attempts = 0
    const record: JobRecord = { ...base, counters: { ...base.counters }, tasks: base.tasks.map((t) => ({ ...t, attempts: t.attempts.map((a) => ({ ...a })) })) }
    for (const t of record.tasks) {
      tasks.set(taskKey(t.kind, t.index), t)
      // Whatever an earlier coordinator saw running is not ours to hear about: its orders died with its epoch.
      attempts += t.attempts.length
      for (const a of t.attempts) {
        if (a.outcome === 'running') { a.outcome = 'lost'; a.endedAt = now; a.error ??= 'its coordinator changed' }
        if (a.outcome === 'succeeded') counted.add(taskKey(t.kind, t.index))
      }
    }
    const before = prior !== undefined && !restarted && prior.state === 'running' ? sumCounts(prior.progress) : NO_COUNTS
    this.jobs.set(spec.jobId, { record, tasks, counted, attempts, dirty: true, before })
  }

  has (jobId: string): boolean {
    return this.jobs.has(jobId)
  }

  /** What the scheduler did: orders, abandoned attempts, progress and the job's end. */
  effect (effect: SchedulerEffect, now: number): void {
    switch (effect.type) {
      case 'dispatch': {
        const rec = this.jobs.get(effect.task.jobId)
        if (rec === undefined) return
        const task = this.task(rec, effect.task.kind, effect.task.index)
        if (rec.attempts >= MAX_RECORDED_ATTEMPTS) {
          rec.record.attemptsOmitted++
        } else {
          rec.attempts++
          task.attempts.push({ epoch: this.epoch, attempt: effect.task.attempt, node: effect.peer, startedAt: now, outcome: 'running' })
        }
        rec.record.startedAt ??= now
        this.touch(rec, now)
        return
      }
      case 'abandon': {
        const rec = this.jobs.get(effect.ref.jobId)
        if (rec === undefined) return
        const won = rec.counted.has(taskKey(effect.ref.kind, effect.ref.index))
        this.end(rec, effect.ref, effect.attempt, won ? 'backup-lost' : 'killed', now)
        return
      }
      case 'progress': {
        const rec = this.jobs.get(effect.jobId)
        if (rec === undefined) return
        rec.record.progress = withCounts(effect.progress, rec.before)
        this.touch(rec, now)
        return
      }
      case 'job-succeeded':
        this.finish(effect.jobId, 'succeeded', now)
        return
      case 'job-failed':
        this.finish(effect.jobId, 'failed', now, { message: effect.error.message, stack: effect.error.stack, task: `${effect.error.task.kind} ${effect.error.task.index}` })
        return
      case 'job-ended':
    }
  }

  /** A worker's report of one attempt of this epoch. */
  reported (ref: TaskRef, attempt: number, ok: boolean, now: number, detail: { counters?: TaskCounters, bytes?: number, error?: string }): void {
    const rec = this.jobs.get(ref.jobId)
    if (rec === undefined) return
    const key = taskKey(ref.kind, ref.index)
    let a = this.end(rec, ref, attempt, ok ? 'succeeded' : 'failed', now)
    if (a === undefined && ok && rec.record.state === 'running' && !rec.counted.has(key)) {
      // The scheduler may learn of a map's output from its worker's registration (the inventory) before that
      // worker's report, and abandon the attempt that made it; the report then says what really happened.
      a = rec.tasks.get(key)?.attempts.find((x) => x.epoch === this.epoch && x.attempt === attempt && x.outcome === 'killed')
      if (a !== undefined) { a.outcome = 'succeeded'; a.endedAt = now; this.touch(rec, now) }
    }
    if (a === undefined) return
    if (ok) {
      a.bytes = detail.bytes
      if (!rec.counted.has(key)) {
        rec.counted.add(key)
        addCounters(rec.record.counters, ref.kind, detail.counters)
      }
    } else if (detail.error !== undefined) {
      a.error = firstLine(detail.error)
    }
  }

  /** The order did not reach the worker (`lost` with it), or the worker would not take it (`refused`). */
  notTaken (ref: TaskRef, attempt: number, unreachable: boolean, reason: string, now: number): void {
    const rec = this.jobs.get(ref.jobId)
    if (rec === undefined) return
    const a = this.end(rec, ref, attempt, unreachable ? 'lost' : 'refused', now)
    if (a !== undefined) a.error = firstLine(reason)
  }

  /** Whether a job's record that has not gone out yet is an ended one (it goes out at once). */
  hasEnded (): boolean {
    for (const rec of this.jobs.values()) if (rec.dirty && rec.record.state !== 'running') return true
    return false
  }

  /** A worker died or fell out of reach: whatever it was running is lost. */
  workerLost (peer: string, now: number): void {
    for (const rec of this.jobs.values()) {
      if (rec.record.state !== 'running') continue
      for (const t of rec.record.tasks) {
        for (const a of t.attempts) {
          if (a.node === peer && a.outcome === 'running') {
            a.outcome = 'lost'
            a.endedAt = now
            a.error = `node ${peer} lost`
            this.touch(rec, now)
          }
        }
      }
    }
  }

  /** The job was cancelled: by a user, or because its submitter went away. */
  cancelled (jobId: string, now: number, failure: JobFailure, state: Extract<JobState, 'cancelled' | 'failed'>): void {
    this.finish(jobId, state, now, failure)
  }

  /** A detached job's sealed spec is in the mesh: a later coordinator resumes the job from it. */
  specStored (jobId: string, spec: { cid: string, bytes: number }, now: number): void {
    const rec = this.jobs.get(jobId)
    if (rec?.record.detached === undefined) return
    rec.record.detached.spec = spec
    this.touch(rec, now)
  }

  /** A detached job's reduce stored its part in the mesh: kept in the record, so a later coordinator need not run it again. */
  partStored (jobId: string, partition: number, part: StoredPart, now: number): void {
    const rec = this.jobs.get(jobId)
    const detached = rec?.record.detached
    if (rec === undefined || detached === undefined || detached.parts.some((p) => p.partition === partition)) return
    detached.parts.push({ partition, ...part })
    this.touch(rec, now)
  }

  /** Forget a job (it left the coordinator's memory). */
  drop (jobId: string): void {
    this.jobs.delete(jobId)
  }

  get (jobId: string): JobRecord | undefined {
    return this.jobs.get(jobId)?.record
  }

  /** The records changed since the last call (each a snapshot the caller may keep). */
  takeChanged (): JobRecord[] {
    const out: JobRecord[] = []
    for (const rec of this.jobs.values()) {
      if (!rec.dirty) continue
      rec.dirty = false
      out.push(structuredClone(rec.record))
    }
    return out
  }

  private finish (jobId: string, state: Exclude<JobState, 'running'>, now: number, failure?: JobFailure): void {
    const rec = this.jobs.get(jobId)
    if (rec === undefined || rec.record.state !== 'running') return
    rec.record.state = state
    rec.record.endedAt = now
    if (failure !== undefined) rec.record.failure = { message: firstLine(failure.message), stack: failure.stack?.slice(0, 8_000), task: failure.task }
    if (state !== 'succeeded') rec.record.progress = { ...rec.record.progress, phase: 'failed', running: 0 }
    for (const t of rec.record.tasks) {
      for (const a of t.attempts) {
        if (a.outcome === 'running') { a.outcome = 'killed'; a.endedAt = now }
      }
    }
    this.touch(rec, now)
  }

  private end (rec: Recording, ref: TaskRef, attempt: number, outcome: AttemptOutcomeName, now: number): AttemptRecord | undefined {
    const a = rec.tasks.get(taskKey(ref.kind, ref.index))?.attempts.find((x) => x.epoch === this.epoch && x.attempt === attempt)
    // An attempt ends once: a report that comes after it was abandoned (or lost) changes nothing.
    if (a === undefined || a.outcome !== 'running') return undefined
    a.outcome = outcome
    a.endedAt = now
    this.touch(rec, now)
    return a
  }

  private task (rec: Recording, kind: TaskKind, index: number): TaskRecord {
    const key = taskKey(kind, index)
    let t = rec.tasks.get(key)
    if (t === undefined) {
      t = { kind, index, attempts: [] }
      rec.tasks.set(key, t)
      rec.record.tasks.push(t)
      rec.record.tasks.sort((a, b) => a.kind === b.kind ? a.index - b.index : a.kind === 'map' ? -1 : 1)
    }
    return t
  }

  private touch (rec: Recording, now: number): void {
    rec.dirty = true
    rec.record.updatedAt = Math.max(rec.record.updatedAt, now)
  }
}

function addCounters (c: JobCounters, kind: TaskKind, t: TaskCounters | undefined): void {
  if (t === undefined) return
  if (kind === 'map') {
    c.mapRecordsIn += t.recordsIn ?? 0
    c.mapBytesIn += t.bytesIn ?? 0
    c.mapRecordsOut += t.recordsOut ?? 0
    c.mapBytesOut += t.bytesOut ?? 0
    c.inputFetchedBytes += t.inputFetchedBytes ?? 0
    c.blockFetchedBytes += t.blockFetchedBytes ?? 0
  } else {
    c.reduceRecordsIn += t.recordsIn ?? 0
    c.reduceRecordsOut += t.recordsOut ?? 0
    c.reduceBytesOut += t.bytesOut ?? 0
    c.shuffleRawBytes += t.shuffleRawBytes ?? 0
    c.shuffleBytes += t.shuffleBytes ?? 0
    c.shuffleLinkedBytes += t.shuffleLinkedBytes ?? 0
    c.outputSentBytes += t.outputSentBytes ?? 0
  }
}
