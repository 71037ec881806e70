import { readFileSync } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Startable } from '@libp2p/interface'
import { JobRecordSchema, newerRecord, type JobRecord, type JobState, type JobSummary } from '../protocol/history-messages.js'
import { JOB_ID_PATTERN } from '../protocol/job-messages.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'

/** Records a node keeps unless told (`join --history-jobs`). */
export const DEFAULT_HISTORY_JOBS = 1_000
/** Days a record is kept unless told (`join --history-days`). */
export const DEFAULT_HISTORY_DAYS = 30

export interface HistoryStoreInit {
  /** Where the records live, one file per job; undefined: in memory only. */
  dir: string | undefined
  maxJobs?: number
  maxAgeMs?: number
  log: Logger
  /** The wall clock (tests set it). */
  now?: () => number
}

export type HistoryChange = { type: 'put', record: JobRecord } | { type: 'drop', jobId: string }

/**
 * The job records this node keeps: in memory for answers, and one file per job (`history/<jobId>.json`,
 * written whole or not at all) so that they outlive a restart. A node killed mid-write leaves the old
 * version or the new, and a file that does not parse (a disk that lied) is set aside, never fatal.
 * Bounded by count and age; the oldest go first. In memory it holds every record's summary, but whole
 * records only of running jobs: a thousand ended jobs of a thousand tasks each would otherwise be
 * hundreds of MiB; an ended record is read from its file when asked for.
 */
export class HistoryStore implements Startable {
  private readonly records = new Map<string, JobSummary>()
  /** Whole records held in memory: running jobs' (they change every second), or all of them without a dir. */
  private readonly whole = new Map<string, JobRecord>()
  private readonly maxJobs: number
  private readonly maxAgeMs: number
  private readonly now: () => number
  /** The newest version waiting to be written, per job: a burst of pushes writes each job once. */
  private readonly pending = new Map<string, JobRecord | 'drop'>()
  private writing: Promise<void> | undefined
  /** The version being written now: until its rename, the file still holds the one before. */
  private current: [string, JobRecord | 'drop'] | undefined
  private readonly listeners = new Set<(change: HistoryChange) => void>()

  constructor (private readonly init: HistoryStoreInit) {
    this.maxJobs = init.maxJobs ?? DEFAULT_HISTORY_JOBS
    this.maxAgeMs = init.maxAgeMs ?? DEFAULT_HISTORY_DAYS * 86_400_000
    this.now = init.now ?? Date.now
  }

  async start (): Promise<void> {
    const dir = this.init.dir
    if (dir === undefined) return
    await mkdir(dir, { recursive: true })
    for (const name of await readdir(dir)) {
      const path = join(dir, name)
      if (name.endsWith('.tmp')) {
        // A write that a kill interrupted: the record's previous version is still in place under its own name.
        await rm(path, { force: true })
        continue
      }
      const jobId = name.endsWith('.json') ? name.slice(0, -'.json'.length) : undefined
      if (jobId === undefined || !JOB_ID_PATTERN.test(jobId)) continue
      try {
        const record = JobRecordSchema.parse(JSON.parse(await readFile(path, 'utf8')))
        if (record.jobId !== jobId) throw new Error(`holds job ${record.jobId}`)
        this.hold(record)
      } catch (err) {
        this.init.log.warn({ file: path, err: errorMessage(err) }, 'unreadable history record set aside')
        await rename(path, `${path}.unreadable`).catch(() => {})
      }
    }
    this.prune()
    await this.flushed()
  }

  async stop (): Promise<void> {
    await this.flushed()
  }

  /** Keeps `record` if it is newer than the version held; returns whether it was. */
  put (record: JobRecord): boolean {
    const held = this.records.get(record.jobId)
    if (held !== undefined && !newerRecord(record, held)) return false
    if (this.expired(record)) return false
    this.hold(record)
    this.queue(record.jobId, record)
    this.emit({ type: 'put', record })
    this.prune()
    return true
  }

  get (jobId: string): JobRecord | undefined {
    if (!this.records.has(jobId)) return undefined
    const held = this.whole.get(jobId) ?? this.pending.get(jobId) ?? (this.current?.[0] === jobId ? this.current[1] : undefined)
    if (held !== undefined) return held === 'drop' ? undefined : held
    const dir = this.init.dir
    if (dir === undefined) return undefined
    try {
      return JobRecordSchema.parse(JSON.parse(readFileSync(join(dir, `${jobId}.json`), 'utf8')))
    } catch (err) {
      this.init.log.warn({ job: jobId, err: errorMessage(err) }, 'cannot read history record')
      return undefined
    }
  }

  private hold (record: JobRecord): void {
    this.records.set(record.jobId, summaryOf(record))
    if (record.state === 'running' || this.init.dir === undefined) this.whole.set(record.jobId, record)
    else this.whole.delete(record.jobId)
  }

  /** The whole records of the jobs that run, as far as this node heard. */
  running (): JobRecord[] {
    return [...this.records.values()].filter((r) => r.state === 'running').map((r) => this.get(r.jobId)).filter((r): r is JobRecord => r !== undefined)
  }

  /** The ids that start with `prefix` (the id itself when held). */
  matching (prefix: string): string[] {
    if (this.records.has(prefix)) return [prefix]
    return [...this.records.keys()].filter((id) => id.startsWith(prefix)).sort()
  }

  /** Newest first, by submission time. */
  list (filter: { state?: JobState, limit?: number } = {}): JobSummary[] {
    return [...this.records.values()]
      .filter((r) => filter.state === undefined || r.state === filter.state)
      .sort((a, b) => b.submittedAt - a.submittedAt || (a.jobId < b.jobId ? -1 : 1))
      .slice(0, filter.limit ?? Number.POSITIVE_INFINITY)
  }

  get size (): number {
    return this.records.size
  }

  versions (): Array<{ jobId: string, generation: number, ended: boolean, updatedAt: number }> {
    return [...this.records.values()].map((r) => ({ jobId: r.jobId, generation: r.generation, ended: r.state !== 'running', updatedAt: r.updatedAt }))
  }

  onChange (listener: (change: HistoryChange) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Resolves when every write queued so far is on disk. */
  async flushed (): Promise<void> {
    while (this.writing !== undefined) await this.writing
  }

  private expired (record: JobSummary): boolean {
    return record.state !== 'running' && this.now() - (record.endedAt ?? record.updatedAt) > this.maxAgeMs
  }

  private prune (): void {
    for (const r of this.records.values()) if (this.expired(r)) this.drop(r.jobId)
    if (this.records.size <= this.maxJobs) return
    // Ended jobs go first, oldest first; a running job only when the bound holds nothing else.
    const byAge = [...this.records.values()].sort((a, b) => (a.state === 'running' ? 1 : 0) - (b.state === 'running' ? 1 : 0) || a.submittedAt - b.submittedAt)
    for (const r of byAge.slice(0, this.records.size - this.maxJobs)) this.drop(r.jobId)
  }

  private drop (jobId: string): void {
    this.records.delete(jobId)
    this.whole.delete(jobId)
    this.queue(jobId, 'drop')
    this.emit({ type: 'drop', jobId })
  }

  private emit (change: HistoryChange): void {
    for (const l of this.listeners) {
      try { l(change) } catch (err) { this.init.log.error({ err: errorMessage(err) }, 'history listener failed') }
    }
  }

  private queue (jobId: string, what: JobRecord | 'drop'): void {
    if (this.init.dir === undefined) return
    this.pending.set(jobId, what)
    this.writing ??= this.writeAll().finally(() => { this.writing = undefined })
  }

  private async writeAll (): Promise<void> {
    const dir = this.init.dir
    if (dir === undefined) return
    while (this.pending.size > 0) {
      const [jobId, what] = this.pending.entries().next().value as [string, JobRecord | 'drop']
      this.pending.delete(jobId)
      this.current = [jobId, what]
      const path = join(dir, `${jobId}.json`)
      try {
        if (what === 'drop') await rm(path, { force: true })
        else await writeFileAtomic(path, JSON.stringify(what))
      } catch (err) {
        this.init.log.error({ job: jobId, err: errorMessage(err) }, 'cannot write history record')
      } finally {
        this.current = undefined
      }
    }
  }
}

export function summaryOf (record: JobRecord): JobSummary {
  const { tasks, params, ...summary } = record
  return summary
}
