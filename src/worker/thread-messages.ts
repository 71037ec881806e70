import type { SplitInfo } from '../mapreduce/job-api.js'
import type { MapTaskResult } from '../mapreduce/map-task.js'
import type { ReduceTaskResult } from '../mapreduce/reduce-task.js'

/** What the node's main thread asks a task thread to do. All data is passed by path. */
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
    memoryBudgetBytes?: number
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
  }

export interface ThreadFailure {
  message: string
  /** The user's own stack, when their code threw. */
  stack?: string
  /** True when the job's code failed (counts toward the job's attempts); false for our own or the machine's trouble. */
  userCode: boolean
}

export type ThreadReply =
  | { id: number, ok: true, map?: MapTaskResult, reduce?: ReduceTaskResult }
  | { id: number, ok: false, error: ThreadFailure }
