import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { Logger } from '../util/logger.js'
import { parseRunnerMessage, type TaskRequest, type ThreadReply } from './thread-messages.js'
import { TASK_YOUNG_GENERATION_MB } from './task-defaults.js'

/**
 * Why a runner ended in the middle of a task. The pool turns each into the
 * one failure message a person reads, the same for threads and processes.
 */
export type RunnerLoss =
  /** It hit its heap cap. */
  | { kind: 'out-of-memory' }
  /** It ended without a reply: the job's code called process.exit, or something killed it. */
  | { kind: 'exit', code: number | null, signal: NodeJS.Signals | null }
  /** An exception nothing caught ended it (thrown from a timer of the job's code, for one). */
  | { kind: 'crash', message: string, stack?: string }
  /** It could not be started or given its task: the machine's trouble (no processes left, say), not the job's. */
  | { kind: 'unavailable', message: string }

export interface RunnerListener {
  reply: (reply: ThreadReply) => void
  lost: (why: RunnerLoss) => void
  /** What the task's code wrote, as it comes (always before its reply). */
  output?: (text: string, cutBytes: number) => void
}

/**
 * Where one attempt's code runs: a worker thread of the node, or a child
 * process of its own. After `start`, exactly one of `reply` (for that id) or
 * `lost` is called, unless `kill` comes first.
 */
export interface TaskRunner {
  readonly kind: 'thread' | 'process'
  /** Whether it may run another task after a reply: a thread may; a sandboxed process holds one attempt's permissions. */
  readonly reusable: boolean
  /** False once it has ended, on its own or killed. */
  readonly alive: boolean
  start: (request: TaskRequest, listener: RunnerListener) => void
  /** Ends it at once, whatever its code is doing (a loop with no end included). */
  kill: () => Promise<void>
}

/** A compiled entry beside this file; under vitest (TypeScript sources) the built copy in dist/. */
export function compiledEntry (name: string): string {
  const here = fileURLToPath(import.meta.url)
  return here.endsWith('.ts')
    ? here.replace(/\/src\/worker\/task-runner\.ts$/, `/dist/src/worker/${name}.js`)
    : here.replace(/task-runner\.js$/, `${name}.js`)
}

/** A task thread: shares the node's process (and its files), capped in heap by resourceLimits. */
export class ThreadRunner implements TaskRunner {
  readonly kind = 'thread'
  readonly reusable = true
  private readonly worker: Worker
  private listener: RunnerListener | undefined
  /** The task running now: output of an earlier one that comes late is not this one's. */
  private requestId = -1
  private ended = false

  get alive (): boolean {
    return !this.ended
  }

  constructor (memoryMb: number, log: Logger) {
    this.worker = new Worker(compiledEntry('task-thread'), { resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: TASK_YOUNG_GENERATION_MB } })
    this.worker.unref()
    this.worker.on('message', (raw: unknown) => {
      const msg = parseRunnerMessage(raw)
      if (msg === undefined || !('id' in msg)) {
        log.warn('a task thread sent a message that is not a reply; ignored')
        return
      }
      if ('log' in msg) {
        if (msg.id === this.requestId) this.listener?.output?.(msg.log, msg.cut)
      } else this.listener?.reply(msg)
    })
    this.worker.on('error', (err: Error) => {
      this.lose((err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY' ? { kind: 'out-of-memory' } : { kind: 'crash', message: err.message })
    })
    this.worker.on('exit', (code) => { this.lose({ kind: 'exit', code, signal: null }) })
  }

  /** The first cause wins: a thread that runs out of memory also exits. */
  private lose (why: RunnerLoss): void {
    if (this.ended) return
    this.ended = true
    const listener = this.listener
    this.listener = undefined
    listener?.lost(why)
  }

  start (request: TaskRequest, listener: RunnerListener): void {
    if (this.ended) {
      listener.lost({ kind: 'unavailable', message: 'task thread already ended' })
      return
    }
    this.requestId = request.id
    this.listener = {
      reply: (reply) => {
        if (reply.id !== request.id) return
        this.listener = undefined
        listener.reply(reply)
      },
      lost: listener.lost,
      output: listener.output
    }
    this.worker.postMessage(request)
  }

  async kill (): Promise<void> {
    this.ended = true
    this.listener = undefined
    await this.worker.terminate()
  }
}
