// Apart from the pool, so that the CLI reads it without loading the worker.

/** Heap cap of one task (MiB) when the node is not told otherwise. */
export const DEFAULT_TASK_MEMORY_MB = 1024
