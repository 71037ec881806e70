// The defaults and bounds of a job's options (job-options.ts), apart from its schema: a task process under
// `--sandbox` may read only the engine's own files, not node_modules, so what the engine imports as a value
// must not pull in zod.

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
