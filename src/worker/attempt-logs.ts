import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import type { TaskKind } from '../protocol/job-messages.js'
import type { AttemptLog } from '../protocol/log-messages.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { AttemptName } from './attempt.js'

/** What is kept of one attempt's output: its last 1 MiB. */
export const DEFAULT_ATTEMPT_LOG_CHARS = 1024 * 1024
/** Text in one answer, at most: the rest follows on the next request. */
const ANSWER_CHARS = 2 * 1024 * 1024

const SavedLog = z.object({ start: z.number().int().min(0), end: z.number().int().min(0), text: z.string() })

interface Held { name: AttemptName, start: number, end: number, text: string }

function fileName (n: Pick<AttemptName, 'kind' | 'index' | 'epoch' | 'attempt'>): string {
  return `${n.kind}-${n.index}-${n.epoch}.${n.attempt}.json`
}

const FILE_PATTERN = /^(map|reduce)-(\d+)-(\d+)\.(\d+)\.json$/

/** One attempt's log while it runs: appended to as its code writes, saved when it ends. */
export interface AttemptLogWriter {
  append: (text: string, cutBytes: number) => void
  close: () => Promise<void>
}

/**
 * The logs of the attempts this node ran: in memory while they run, then one file per attempt under
 * `logs/<jobId>/`, each the last DEFAULT_ATTEMPT_LOG_CHARS of what its code wrote. A job's logs go when
 * this node drops the job's history record.
 */
export class AttemptLogs {
  private readonly running = new Map<string, Held>()

  constructor (private readonly root: string, private readonly log: Logger, private readonly maxChars = DEFAULT_ATTEMPT_LOG_CHARS) {}

  open (name: AttemptName): AttemptLogWriter {
    const key = `${name.jobId}/${fileName(name)}`
    const held: Held = { name, start: 0, end: 0, text: '' }
    this.running.set(key, held)
    return {
      append: (text, cut) => {
        held.end += cut + text.length
        held.text += text
        if (held.text.length > this.maxChars) held.text = held.text.slice(held.text.length - this.maxChars)
        held.start = held.end - held.text.length
      },
      close: async () => {
        try {
          if (held.end > 0) {
            const dir = join(this.root, name.jobId)
            mkdirSync(dir, { recursive: true })
            await writeFileAtomic(join(dir, fileName(name)), JSON.stringify({ start: held.start, end: held.end, text: held.text }))
          }
        } catch (err) {
          this.log.warn({ job: name.jobId, err: errorMessage(err) }, 'cannot save an attempt log')
        } finally {
          this.running.delete(key)
        }
      }
    }
  }

  /** The job's logs held here (running attempts' too), from the offsets already read. */
  read (jobId: string, filter: { task?: { kind: TaskKind, index: number }, after?: Array<{ kind: TaskKind, index: number, epoch: number, attempt: number, offset: number }> } = {}): { attempts: AttemptLog[], more: boolean } {
    const offsets = new Map((filter.after ?? []).map((a) => [fileName(a), a.offset]))
    const found = new Map<string, { held: Omit<Held, 'name'>, key: Omit<AttemptLog, 'start' | 'text' | 'end' | 'running'>, running: boolean }>()
    for (const h of this.running.values()) {
      if (h.name.jobId !== jobId) continue
      found.set(fileName(h.name), { held: h, key: { kind: h.name.kind, index: h.name.index, epoch: h.name.epoch, attempt: h.name.attempt }, running: true })
    }
    const dir = join(this.root, jobId)
    let names: string[] = []
    try { names = readdirSync(dir) } catch { /* no logs of this job here */ }
    for (const f of names) {
      const m = FILE_PATTERN.exec(f)
      if (m === null || found.has(f)) continue
      try {
        const saved = SavedLog.parse(JSON.parse(readFileSync(join(dir, f), 'utf8')))
        found.set(f, { held: saved, key: { kind: m[1] as TaskKind, index: Number(m[2]), epoch: Number(m[3]), attempt: Number(m[4]) }, running: false })
      } catch (err) {
        this.log.debug({ file: f, err: errorMessage(err) }, 'unreadable attempt log')
      }
    }
    const attempts: AttemptLog[] = []
    let budget = ANSWER_CHARS
    let more = false
    const ordered = [...found.entries()].sort(([, a], [, b]) => (a.key.kind === b.key.kind ? 0 : a.key.kind === 'map' ? -1 : 1) || a.key.index - b.key.index || a.key.epoch - b.key.epoch || a.key.attempt - b.key.attempt)
    for (const [f, { held, key, running }] of ordered) {
      if (filter.task !== undefined && (filter.task.kind !== key.kind || filter.task.index !== key.index)) continue
      const from = Math.max(offsets.get(f) ?? 0, held.start)
      let text = held.text.slice(from - held.start)
      if (text.length > budget) { text = text.slice(0, budget); more = true }
      budget -= text.length
      attempts.push({ ...key, start: from, text, end: from + text.length, running })
    }
    return { attempts, more }
  }

  /** Drops a job's logs (its history record is gone from this node). */
  removeJob (jobId: string): void {
    rmSync(join(this.root, jobId), { recursive: true, force: true })
  }

  /** The jobs whose logs are on disk here. */
  jobs (): string[] {
    try { return readdirSync(this.root) } catch { return [] }
  }
}
