import { fileURLToPath } from 'node:url'
import { Worker, type ResourceLimits } from 'node:worker_threads'
import { createLogger } from '../util/logger.js'
import type { ThreadFailure, ThreadReply, ThreadTask } from './thread-messages.js'

const log = createLogger('task-pool')

/** The compiled thread entry; under vitest (TypeScript sources) the built copy in dist/. */
function threadEntry (): string {
  const here = fileURLToPath(import.meta.url)
  return here.endsWith('.ts')
    ? here.replace(/\/src\/worker\/task-pool\.ts$/, '/dist/src/worker/task-thread.js')
    : here.replace(/task-pool\.js$/, 'task-thread.js')
}

export class TaskAbortedError extends Error {
  static readonly NAME = 'TaskAbortedError'
  override readonly name = TaskAbortedError.NAME
}

export type TaskOutcome = Extract<ThreadReply, { ok: true }> | { ok: false, error: ThreadFailure }

interface Slot {
  /** Started on first use: an idle node holds no task threads. */
  worker: Worker | undefined
  busy: boolean
}

export interface TaskPoolOptions {
  slots: number
  /** Caps each task thread's heap, so a job that allocates without bound fails its attempt, not the node. */
  resourceLimits?: ResourceLimits
}

/**
 * A fixed set of task threads (one per slot). A task that is abandoned, runs
 * out of memory or calls process.exit loses its thread; the thread is replaced
 * and the node lives on.
 */
export class TaskPool {
  private readonly slots: Slot[] = []
  private nextId = 1
  private stopped = false

  constructor (private readonly opts: TaskPoolOptions) {}

  get size (): number {
    return this.opts.slots
  }

  get busy (): number {
    return this.slots.filter((s) => s.busy).length
  }

  start (): void {
    for (let i = 0; i < this.opts.slots; i++) this.slots.push({ worker: undefined, busy: false })
  }

  async stop (): Promise<void> {
    this.stopped = true
    await Promise.all(this.slots.map(async (s) => await s.worker?.terminate()))
    this.slots.length = 0
  }

  private spawn (): Worker {
    const worker = new Worker(threadEntry(), { resourceLimits: this.opts.resourceLimits })
    worker.unref()
    return worker
  }

  /** Runs a task on a free thread. The caller (the scheduler) never asks for more than `size` at once. */
  async run (task: ThreadTask, options: { signal?: AbortSignal } = {}): Promise<TaskOutcome> {
    const slot = this.slots.find((s) => !s.busy)
    if (slot === undefined || this.stopped) throw new Error('no free task slot')
    options.signal?.throwIfAborted()
    slot.busy = true
    const id = this.nextId++
    slot.worker ??= this.spawn()
    const worker = slot.worker
    let threadLost = false
    try {
      return await new Promise<TaskOutcome>((resolve, reject) => {
        const cleanup = (): void => {
          worker.off('message', onMessage)
          worker.off('error', onError)
          worker.off('exit', onExit)
          options.signal?.removeEventListener('abort', onAbort)
        }
        const onMessage = (reply: ThreadReply): void => {
          if (reply.id !== id) return
          cleanup()
          resolve(reply)
        }
        const onError = (err: Error): void => {
          cleanup()
          threadLost = true
          const oom = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY'
          resolve({ ok: false, error: { message: oom ? 'task ran out of memory (its heap is capped per task)' : `task thread failed: ${err.message}`, userCode: true } })
        }
        const onExit = (code: number): void => {
          cleanup()
          threadLost = true
          resolve({ ok: false, error: { message: `task code ended its thread (process.exit(${code}))`, userCode: true } })
        }
        const onAbort = (): void => {
          cleanup()
          reject(new TaskAbortedError('task abandoned'))
        }
        worker.on('message', onMessage)
        worker.on('error', onError)
        worker.on('exit', onExit)
        options.signal?.addEventListener('abort', onAbort, { once: true })
        worker.postMessage({ id, task })
      })
    } catch (err) {
      threadLost = true
      throw err
    } finally {
      if (threadLost) this.replace(slot)
      slot.busy = false
    }
  }

  /** A thread that was abandoned mid-task cannot be trusted to be idle: end it; the next task starts a fresh one. */
  private replace (slot: Slot): void {
    slot.worker?.terminate().catch((err: unknown) => { log.warn({ err }, 'terminating a task thread failed') })
    slot.worker = undefined
  }
}
