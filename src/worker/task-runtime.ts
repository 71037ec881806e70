// What runs a task inside a runner (task thread or sandboxed task process):
// load the job's code, run the map or reduce, turn any error into a failure
// message. The two entries (task-thread.ts, task-process.ts) only differ in
// how they receive tasks and send replies.
import { statSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Job } from '../mapreduce/job-api.js'
import { readSplitBytes } from '../mapreduce/splits.js'
import { runMapTask } from '../mapreduce/map-task.js'
import { runReduceTask } from '../mapreduce/reduce-task.js'
import { runStreamingMapTask, type StreamingTaskSetting } from '../mapreduce/streaming-map-task.js'
import { runStreamingReduceTask } from '../mapreduce/streaming-reduce-task.js'
import { userStack } from '../mapreduce/user-code.js'
import { InputError, isUserFacingError, StreamingCommandError, UserCodeError, UserFacingError } from '../util/errors.js'
import { SANDBOX_LAUNCHER } from './command-sandbox.js'
import { captureOutput } from './task-output-capture.js'
import type { StreamingTask, ThreadFailure, ThreadReply, ThreadTask } from './thread-messages.js'

type Success = Omit<Extract<ThreadReply, { ok: true }>, 'id'>

/** The job module did not load on this node (top-level code threw, or was refused by the sandbox). */
export class JobModuleLoadError extends UserFacingError {
  static readonly NAME = 'JobModuleLoadError'
  override readonly name = JobModuleLoadError.NAME
  readonly exitCode = 1
  constructor (message: string, readonly userStack: string | undefined) {
    super(message)
  }
}

export interface TaskRuntimeOptions {
  /**
   * Adds to the message of an error thrown by the job's code what only the
   * runner knows (the sandbox names the permission it refused). When set, the
   * job's functions are wrapped so that their errors pass through it.
   */
  explainError?: (err: unknown) => void
  /** Called when a map task has let go of its split's text (map-task.ts): a task thread starts a collection then. */
  onSplitDone?: () => void
}

export interface TaskRuntime {
  /** Runs one task; what its code writes meanwhile goes to `onOutput`, all of it before this resolves. */
  run: (task: ThreadTask, onOutput?: (text: string, cutBytes: number) => void) => Promise<Success>
  /** Lets go of the buffer kept for the next split (a thread left idle). */
  dropSpare: () => void
}

export function createTaskRuntime (opts: TaskRuntimeOptions = {}): TaskRuntime {
  process.setSourceMapsEnabled(true)
  const jobs = new Map<string, Promise<Job>>()

  async function loadJob (codeFile: string, jobName: string): Promise<Job> {
    let job = jobs.get(codeFile)
    if (job === undefined) {
      job = import(pathToFileURL(codeFile).href).then(
        (mod: Record<string, unknown>) => {
          const loaded = (typeof mod.default === 'object' && mod.default !== null ? mod.default : mod) as Job
          return opts.explainError === undefined ? loaded : explained(loaded, opts.explainError)
        },
        (err: unknown) => {
          opts.explainError?.(err)
          // The submitter loaded this very code before sending it: what fails here depends on the node it runs on
          // (its files, its sandbox), and retrying elsewhere is the job's attempt to spend, not a fault of this node.
          throw new JobModuleLoadError(`job ${jobName} failed to load on this node: ${err instanceof Error ? err.message : String(err)}`, userStack(err))
        })
      // A module that failed to load is not kept: the next attempt tries again.
      job.catch(() => { jobs.delete(codeFile) })
      jobs.set(codeFile, job)
    }
    return await job
  }

  // The last split's buffer of a map reading key-value lines, which the next such split is read into: a split's
  // bytes are external memory, freed only when a collection finds their Buffer dead, and a thread that read a new
  // buffer per map held two or three dead splits at a time (the 4 GiB sort's peak: 362–405 MiB a node against
  // 340–345). Only one task runs at a time, and none keeps its split once done.
  let spare: Buffer | undefined
  const readContents = (task: Extract<ThreadTask, { kind: 'map' }>, reuse: boolean): Buffer => {
    const into = reuse ? spare : undefined
    if (reuse) spare = undefined
    const contents = task.splitLength === undefined
      ? readSplitBytes({ path: task.splitFile, offset: 0, length: statSync(task.splitFile).size }, into)
      : readShared(task.splitFile, task.splitOffset ?? 0, task.splitLength, into)
    return contents
  }
  const keep = (contents: Buffer): void => {
    spare = Buffer.from(contents.buffer, contents.byteOffset, contents.buffer.byteLength - contents.byteOffset)
  }

  return {
    dropSpare () {
      spare = undefined
    },
    async run (task, onOutput) {
      const capture = onOutput === undefined ? undefined : captureOutput(onOutput)
      try {
        if (task.streaming !== undefined) {
          // Its commands' stderr goes to this runner's stderr, which the capture above makes the attempt's log.
          const setting = streamingSetting(task.streaming)
          if (task.kind === 'map') return { ok: true, map: await runStreamingMapTask({ ...task, setting, contents: readContents(task, false).toString('latin1') }) }
          return { ok: true, reduce: await runStreamingReduceTask({ ...task, setting }) }
        }
        const job = await loadJob(task.codeFile, task.jobName)
        if (task.kind === 'map') {
          // Only a map that keeps its records in its split holds the split to its end; a map function's text is
          // decoded from it at once, and the buffer is better left to die young than kept past the map.
          // (Not even held here: the map task drops its text's bytes once decoded.)
          if (job.keyValueSeparator === undefined) return { ok: true, map: await runMapTask({ ...task, job, contents: readContents(task, false), onContentsDone: opts.onSplitDone }) }
          const contents = readContents(task, true)
          try {
            return { ok: true, map: await runMapTask({ ...task, job, contents, onContentsDone: opts.onSplitDone }) }
          } finally {
            keep(contents)
          }
        }
        return { ok: true, reduce: runReduceTask({ ...task, job }) }
      } finally {
        capture?.flush()
        capture?.stop()
      }
    }
  }
}

function streamingSetting (task: StreamingTask): StreamingTaskSetting {
  return { streaming: task.job, cwd: task.cwd, where: task.where, launcher: task.sandbox ? SANDBOX_LAUNCHER : undefined }
}

const JOB_FUNCTIONS = ['map', 'reduce', 'combine', 'partition'] as const

const RUNTIME_FILE = fileURLToPath(import.meta.url)

/** Drops the wrapper's own frame from a stack, which would otherwise show among the user's frames. */
function passThrough (err: unknown, explain: (err: unknown) => void): void {
  explain(err)
  if (err instanceof Error && typeof err.stack === 'string') {
    err.stack = err.stack.split('\n').filter((line) => !line.includes(RUNTIME_FILE)).join('\n')
  }
}

/** The job with each of its functions wrapped so that what they throw (or reject with) goes through `explain` first. */
function explained (job: Job, explain: (err: unknown) => void): Job {
  // The original stays the prototype and `this`: a job may keep helpers of its own beside map and reduce.
  const wrapped = Object.create(job) as Record<string, unknown>
  for (const name of JOB_FUNCTIONS) {
    const fn = job[name] as ((...args: unknown[]) => unknown) | undefined
    if (typeof fn !== 'function') continue
    // Object.assign keeps what marks a function the engine knows (range-partition.ts) on its wrapper.
    wrapped[name] = Object.assign(function (...args: unknown[]): unknown {
      try {
        const out = fn.apply(job, args)
        if (out instanceof Promise) return out.catch((err: unknown) => { passThrough(err, explain); throw err })
        return out
      } catch (err) {
        passThrough(err, explain)
        throw err
      }
    }, fn)
  }
  return wrapped as unknown as Job
}

/** A `--shared` input that this node cannot read is the job's mistake, not this node's: it counts toward the job's attempts. */
function readShared (path: string, offset: number, length: number, into?: Buffer): Buffer {
  try {
    return readSplitBytes({ path, offset, length }, into)
  } catch (err) {
    throw new InputError(`shared input ${path} cannot be read on this node: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

export function failure (err: unknown): ThreadFailure {
  if (err instanceof StreamingCommandError) return { message: err.message, userCode: true, setup: err.setup }
  if (err instanceof UserCodeError || err instanceof JobModuleLoadError) return { message: err.message, stack: err.userStack, userCode: true }
  if (err instanceof InputError) return { message: err.message, userCode: true }
  if (isUserFacingError(err)) return { message: err.message, userCode: false }
  return { message: err instanceof Error ? err.message : String(err), userCode: false }
}
