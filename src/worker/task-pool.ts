import type { Startable } from '@libp2p/interface'
import { DEFAULT_TASK_TIMEOUT_MS } from '../mapreduce/job-options.js'
import { errorMessage } from '../util/errors.js'
import type { ComponentLogger, Logger } from '../util/logger.js'
import { ThreadRunner, type RunnerLoss, type TaskRunner } from './task-runner.js'
import { ProcessRunner } from './task-sandbox.js'
import type { ThreadFailure, ThreadReply, ThreadTask } from './thread-messages.js'
import { DEFAULT_TASK_MEMORY_MB } from './task-defaults.js'

export { DEFAULT_TASK_MEMORY_MB } from './task-defaults.js'

export class TaskAbortedError extends Error {
  static readonly NAME = 'TaskAbortedError'
  override readonly name = TaskAbortedError.NAME
}

export type TaskOutcome = Extract<ThreadReply, { ok: true }> | { ok: false, error: ThreadFailure }

/**
 * How a task is kept from the node: `thread` runs it on a worker thread of
 * the node's process; `sandbox` in a child process of its own under Node's
 * permission model (docs/isolation.md).
 */
export type Isolation = 'thread' | 'sandbox'

interface Slot {
  /** A thread is started on first use and kept while it behaves; a sandboxed process lives for one attempt. */
  runner: TaskRunner | undefined
  busy: boolean
}

export interface TaskPoolOptions {
  slots: number
  isolation?: Isolation
  /** Caps each task's heap, so a job that allocates without bound fails its attempt, not the node. */
  memoryMb?: number
  /** The node's logger; the pool and its runners log under components of their own. */
  logger: ComponentLogger
}

export interface RunOptions {
  signal?: AbortSignal
  /** An attempt still running after this long is ended and fails as the job's fault. */
  timeoutMs?: number
  /** What the task's code writes, as it comes: its attempt's log. */
  onOutput?: (text: string, cutBytes: number) => void
}

function seconds (ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`
}

/**
 * A fixed set of slots, each running one task at a time on a runner (a thread
 * or a sandboxed process). Whatever a task does (throws, loops forever, runs
 * out of memory, calls process.exit), its attempt fails with a message that
 * says so and the node lives on; the runner is ended and replaced.
 */
export class TaskPool implements Startable {
  private readonly slots: Slot[] = []
  private nextId = 1
  private stopped = false
  /** Ends each task in flight with TaskAbortedError: a runner killed by stop() would never answer. */
  private readonly inFlight = new Set<() => void>()
  /** Tasks waiting for a slot, first come first served. */
  private readonly waiting: Array<() => void> = []
  private readonly isolation: Isolation
  private readonly memoryMb: number
  private readonly log: Logger
  private readonly runnerLog: Logger

  constructor (private readonly opts: TaskPoolOptions) {
    this.isolation = opts.isolation ?? 'thread'
    this.memoryMb = opts.memoryMb ?? DEFAULT_TASK_MEMORY_MB
    this.log = opts.logger.forComponent('task-pool')
    this.runnerLog = opts.logger.forComponent(this.isolation === 'sandbox' ? 'task-sandbox' : 'task-runner')
  }

  get size (): number {
    return this.opts.slots
  }

  get busy (): number {
    return this.slots.filter((s) => s.busy).length
  }

  start (): void {
    for (let i = 0; i < this.opts.slots; i++) this.slots.push({ runner: undefined, busy: false })
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const abandon of [...this.inFlight]) abandon()
    for (const wake of this.waiting.splice(0)) wake()
    await Promise.all(this.slots.map(async (s) => await s.runner?.kill()))
    this.slots.length = 0
  }

  /** A streaming task runs on a thread in either mode: its code is its command, which a --sandbox node confines with bubblewrap. */
  private runnerKind (task: ThreadTask): TaskRunner['kind'] {
    return this.isolation === 'sandbox' && task.streaming === undefined ? 'process' : 'thread'
  }

  private newRunner (kind: TaskRunner['kind']): TaskRunner {
    return kind === 'process' ? new ProcessRunner(this.memoryMb, this.runnerLog) : new ThreadRunner(this.memoryMb, this.runnerLog)
  }

  /** The one place where the ways a runner can end become the message a person reads, for threads and processes alike. */
  private lossMessage (runner: TaskRunner, why: RunnerLoss): ThreadFailure {
    switch (why.kind) {
      case 'out-of-memory':
        return { message: `task ran out of memory (its heap is capped at ${this.memoryMb} MiB per task)`, userCode: true }
      case 'exit':
        return why.signal !== null
          ? { message: `task ${runner.kind} was killed by ${why.signal}`, userCode: true }
          : { message: `task code ended its ${runner.kind} (process.exit(${String(why.code)}))`, userCode: true }
      case 'crash':
        return { message: `task ${runner.kind} failed: ${why.message}`, stack: why.stack, userCode: true }
      case 'unavailable':
        return { message: `task ${runner.kind} unavailable: ${why.message}`, userCode: false }
    }
  }

  /**
   * A free slot, once there is one. A node runs up to `size` maps and `size` reduces, but only `size` tasks
   * compute at once: a reduce that has pulled its inputs while maps hold every slot waits here, and so may a map.
   */
  private async freeSlot (signal: AbortSignal | undefined): Promise<Slot> {
    for (;;) {
      if (this.stopped) throw new TaskAbortedError('task pool stopped')
      if (signal?.aborted === true) throw new TaskAbortedError('task abandoned')
      const slot = this.slots.find((s) => !s.busy)
      if (slot !== undefined) return slot
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        const onAbort = (): void => {
          const i = this.waiting.indexOf(wake)
          if (i >= 0) this.waiting.splice(i, 1)
          resolve()
        }
        this.waiting.push(wake)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  /** Runs a task on a slot, waiting for one to be free. */
  async run (task: ThreadTask, options: RunOptions = {}): Promise<TaskOutcome> {
    // Taken at once when there is one: a stop() or an abort that follows this call must find the task started.
    const slot = (this.stopped ? undefined : this.slots.find((s) => !s.busy)) ?? await this.freeSlot(options.signal)
    options.signal?.throwIfAborted()
    slot.busy = true
    const id = this.nextId++
    // A thread that died while idle (an error the last job's code left behind in a timer) is not reused.
    const kind = this.runnerKind(task)
    const runner = slot.runner?.alive === true && slot.runner.kind === kind ? slot.runner : this.newRunner(kind)
    // A thread this slot kept (for a streaming task of a --sandbox node) is not left running beside its replacement.
    if (slot.runner !== undefined && slot.runner !== runner) void slot.runner.kill()
    slot.runner = runner
    const timeoutMs = options.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS
    // Only a runner that answered with a reply may serve again; after anything else its state is unknown.
    let healthy = false
    try {
      return await new Promise<TaskOutcome>((resolve, reject) => {
        let done = false
        const settle = (): boolean => {
          if (done) return false
          done = true
          clearTimeout(timer)
          options.signal?.removeEventListener('abort', onAbort)
          this.inFlight.delete(onStop)
          return true
        }
        const onAbort = (): void => {
          if (settle()) reject(new TaskAbortedError('task abandoned'))
        }
        const onStop = (): void => {
          if (settle()) reject(new TaskAbortedError('task pool stopped'))
        }
        this.inFlight.add(onStop)
        const timer = setTimeout(() => {
          if (!settle()) return
          this.log.info({ job: task.jobName, kind: task.kind, timeoutMs, runner: runner.kind }, 'task timed out; ending it')
          resolve({ ok: false, error: { message: `task timed out after ${seconds(timeoutMs)}`, userCode: true } })
        }, timeoutMs)
        options.signal?.addEventListener('abort', onAbort, { once: true })
        try {
          runner.start({ id, task }, {
            reply: (reply) => {
              if (!settle()) return
              healthy = true
              resolve(reply)
            },
            lost: (why) => {
              if (settle()) resolve({ ok: false, error: this.lossMessage(runner, why) })
            },
            output: (text, cut) => { if (!done) options.onOutput?.(text, cut) }
          })
        } catch (err) {
          // Our fault or the machine's (a process that cannot be started), not the job's.
          if (settle()) resolve({ ok: false, error: { message: `task ${runner.kind} could not start: ${errorMessage(err)}`, userCode: false } })
        }
      })
    } finally {
      if (!healthy || !runner.reusable) {
        slot.runner = undefined
        runner.kill().catch((err: unknown) => { this.log.warn({ err, runner: runner.kind }, 'ending a task runner failed') })
      }
      slot.busy = false
      this.waiting.shift()?.()
    }
  }
}
