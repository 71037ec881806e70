import { z } from 'zod'
import { pickDeclared } from '../util/pick-declared.js'

/** A job that does not say how long an attempt may run (as Hadoop's mapreduce.task.timeout, 10 minutes). */
export const DEFAULT_TASK_TIMEOUT_MS = 600_000
/** A week: longer is a mistake, and a timer cannot be set past about 24.8 days anyway. */
export const MAX_TASK_TIMEOUT_MS = 7 * 24 * 3600_000
/**
 * The map output one task holds before it spills a sorted run. Smaller is also faster while the records are
 * small: sort of 1 GiB of 100-byte records through the mesh took 52.4 s at 64 MiB, 43.8 s at 32 MiB and 39.3 s
 * at 16 MiB, and a node's peak RSS fell from 666 to 493 MiB (docs/performance.md).
 */
export const DEFAULT_MEMORY_BYTES = 16 * 2 ** 20
/** A smaller budget spills every few records: a job on the mesh is refused it. */
export const MIN_MEMORY_BYTES = 2 ** 20

/**
 * A job's tuning knobs, read by the engine and the worker that runs its tasks, never by the scheduler. They
 * travel whole: from `submit`'s flags through the job spec (protocol/job-messages.ts extends this schema) and
 * every order's job ref to the task itself, and `run` takes the same. So a new option is this schema, the code
 * that reads it, and its flag. Each is optional, so that older submitters that omit it are still understood.
 */
export const JobOptionsSchema = z.object({
  /** An attempt running longer is ended and counts as a failure of the job's code. */
  taskTimeoutMs: z.number().int().min(1).max(MAX_TASK_TIMEOUT_MS).optional(),
  /** Map output a task holds in memory before it spills a sorted run to disk (`--memory`; DEFAULT_MEMORY_BYTES). */
  memoryBytes: z.number().int().min(MIN_MEMORY_BYTES).max(2 ** 40).optional(),
  /** false: map output is stored as is (`--no-compress`); unset or true: compressed where that pays. */
  compress: z.boolean().optional()
})
export type JobOptions = z.output<typeof JobOptionsSchema>

/** The job options among `source`'s fields (a plan or a job ref that carries them beside its own). */
export function jobOptionsOf (source: JobOptions): JobOptions {
  return pickDeclared(JobOptionsSchema, source)
}
