import type { SplitInfo } from '../mapreduce/job-api.js'
import type { JobOptions } from '../mapreduce/job-options.js'
import type { MapTaskResult } from '../mapreduce/map-task.js'
import type { ReduceTaskResult } from '../mapreduce/reduce-task.js'
import type { StreamingJob } from '../mapreduce/streaming-job.js'

/**
 * What an attempt may touch besides the engine's own code. Enforced only in
 * sandbox mode (Node's permission model); a task thread shares the node's
 * process and can touch whatever the node can.
 */
export interface TaskAccess {
  /** Files and folders it may read: the job's code, its input, its work folder. */
  read: string[]
  /** Folders it may write: its own work folder, nothing else. */
  write: string[]
}

/**
 * A streaming job's task: its commands run in `cwd` (holding the job's files), as children of the task thread; on a
 * `--sandbox` node each under bubblewrap (command-sandbox.ts). Such a task always runs on a thread: the job's code is
 * the command, which the sandbox confines, and a task process under Node's permission model may not start one.
 */
export interface StreamingTask {
  job: StreamingJob
  cwd: string
  sandbox: boolean
  /** ` on node <PeerId>`, for errors. */
  where: string
}

/** What the node asks a task thread (or sandboxed task process) to do. All data is passed by path. */
export type ThreadTask =
  | {
    kind: 'map'
    /** The bundled job module, named by its hash. */
    codeFile: string
    jobName: string
    split: SplitInfo
    /** A local file holding the split's bytes, from `splitOffset` for `splitLength` bytes (default: the whole file). */
    splitFile: string
    splitOffset?: number
    splitLength?: number
    reduces: number
    params: Record<string, string>
    outputPaths: string[]
    spillDir: string
    /** The job's options as the job ref carried them (memory budget, compression, …). */
    options: JobOptions
    access: TaskAccess
    streaming?: StreamingTask
  }
  | {
    kind: 'reduce'
    codeFile: string
    jobName: string
    partition: number
    reduces: number
    params: Record<string, string>
    inputs: string[]
    outputPath: string
    access: TaskAccess
    streaming?: StreamingTask
  }

/** Node → runner: one task; `id` pairs it with its reply. */
export interface TaskRequest { id: number, task: ThreadTask }

export interface ThreadFailure {
  message: string
  /** The user's own stack, when their code threw. */
  stack?: string
  /** True when the job's code failed (counts toward the job's attempts); false for our own or the machine's trouble. */
  userCode: boolean
  /** The job's code could not start on this node at all (a streaming command not found): try another node. */
  setup?: boolean
}

export type ThreadReply =
  | { id: number, ok: true, map?: MapTaskResult, reduce?: ReduceTaskResult }
  | { id: number, ok: false, error: ThreadFailure }

/**
 * Runner → node, just before a task process dies of an exception nothing
 * caught (thrown from a timer or an unhandled rejection of the job's code).
 * A task thread reports the same through its `error` event.
 */
export interface RunnerCrash { crash: true, message: string, stack?: string }

/** Task process → node, once the engine has loaded: what fails before this is not the job's code. */
export interface RunnerReady { ready: true }

/** Runner → node, while task `id` runs: what its code wrote; `cut` bytes before it were dropped in the runner. */
export interface RunnerLog { id: number, log: string, cut: number }

function isRecord (x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null
}

function isFailure (x: unknown): x is ThreadFailure {
  return isRecord(x) && typeof x.message === 'string' && typeof x.userCode === 'boolean' && (x.stack === undefined || typeof x.stack === 'string') &&
    (x.setup === undefined || typeof x.setup === 'boolean')
}

/**
 * Checks a message that came from a runner. Job code shares the runner with
 * the engine and could post anything (`parentPort.postMessage`,
 * `process.send`); a malformed message must not be taken for a result.
 */
export function parseRunnerMessage (x: unknown): ThreadReply | RunnerCrash | RunnerReady | RunnerLog | undefined {
  if (!isRecord(x)) return undefined
  if (x.ready === true) return { ready: true }
  if (typeof x.log === 'string') {
    return typeof x.id === 'number' && typeof x.cut === 'number' && Number.isSafeInteger(x.cut) && x.cut >= 0 ? { id: x.id, log: x.log, cut: x.cut } : undefined
  }
  if (x.crash === true) {
    return typeof x.message === 'string' ? { crash: true, message: x.message, stack: typeof x.stack === 'string' ? x.stack : undefined } : undefined
  }
  if (typeof x.id !== 'number') return undefined
  if (x.ok === true) {
    const map = x.map
    const reduce = x.reduce
    const mapOk = map === undefined || (isRecord(map) && Array.isArray(map.partitions) && map.partitions.every((p) => isRecord(p) && typeof p.bytes === 'number'))
    const reduceOk = reduce === undefined || (isRecord(reduce) && typeof reduce.bytes === 'number')
    return mapOk && reduceOk ? x as ThreadReply : undefined
  }
  if (x.ok === false && isFailure(x.error)) return { id: x.id, ok: false, error: x.error }
  return undefined
}
