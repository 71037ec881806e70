import { z } from 'zod'
import { pickDeclared } from '../util/pick-declared.js'
import { DEFAULT_MEMORY_BYTES, DEFAULT_TASK_TIMEOUT_MS, MAX_TASK_TIMEOUT_MS, MIN_MEMORY_BYTES } from './job-option-defaults.js'

export { DEFAULT_MEMORY_BYTES, DEFAULT_TASK_TIMEOUT_MS, MAX_TASK_TIMEOUT_MS, MIN_MEMORY_BYTES }

/**
 * A job's tuning knobs, read by the engine and the worker that runs its tasks (and one by the scheduler). They
 * travel whole: from `submit`'s flags through the job spec (protocol/job-messages.ts extends this schema) and
 * every order's job ref to the task itself, and `run` takes the same. So a new option is this schema, the code
 * that reads it, and its flag. Each is optional, so that older submitters that omit it are still understood.
 */
export const JobOptionsSchema = z.object({
  /** An attempt running longer is ended and counts as a failure of the job's code. */
  taskTimeoutMs: z.number().int().min(1).max(MAX_TASK_TIMEOUT_MS).optional(),
  /** Map output a task holds in memory before it spills a sorted run to disk (`--memory`; DEFAULT_MEMORY_BYTES). */
  memoryBytes: z.number().int().min(MIN_MEMORY_BYTES).max(2 ** 40).optional(),
  /** false: map output is stored as is (`--no-compress`); unset or true: compressed where that pays (not for a small job whose workers share one host: coordinator-service.ts, `rawRuns`). */
  compress: z.boolean().optional(),
  /**
   * The share of maps done before the job's reduces start pulling their outputs (`--reduce-slow-start`; the
   * scheduler's default, 0.05, when unset). 1: reduces only after every map, as MapReduce was first described.
   */
  reduceSlowStart: z.number().min(0).max(1).optional(),
  /**
   * Copies of each finished map output, on distinct nodes, before the map counts as done (`--intermediate-replicas`;
   * 1 when unset): a map output then survives its node, at the cost of sending it once more.
   */
  intermediateReplicas: z.number().int().min(1).max(2).optional()
})
export type JobOptions = z.output<typeof JobOptionsSchema>

/** The job options among `source`'s fields (a plan or a job ref that carries them beside its own). */
export function jobOptionsOf (source: JobOptions): JobOptions {
  return pickDeclared(JobOptionsSchema, source)
}
