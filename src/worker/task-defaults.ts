// Apart from the pool, so that the CLI reads it without loading the worker.

/** Heap cap of one task (MiB) when the node is not told otherwise. */
export const DEFAULT_TASK_MEMORY_MB = 1024

/**
 * V8's young generation of one task (MiB; Node's own default is several times this). Measured on the 1 GiB sort,
 * 3 nodes: a node's peak RSS 499 MiB with the default, 421 MiB with 8, at the same speed (39 s); 4 was slower
 * (47 s) and no smaller. wc's speed did not move (10.2–10.5 s a GiB either way). docs/performance.md.
 */
export const TASK_YOUNG_GENERATION_MB = 8

/**
 * A task thread starts a full collection after a task that left at least this much heap (MiB): about one default
 * split (32 MiB) decoded. Smaller tasks (the lab's books) leave less and pay nothing. See heap-collector.ts.
 */
export const TASK_COLLECT_AFTER_MB = 32

/**
 * The nice value of a task thread (Linux; the node's own threads stay at 0). A node's main thread serves map
 * output, pulls it, and sends heartbeats: when task threads filled every core, it waited its turn behind them, and
 * a pull of map output ran at the pace of whatever CPU was left. At nice 10 a runnable main thread gets about nine
 * times a task thread's share; when nothing else runs, the tasks get every core all the same. The 1 GiB sort, two
 * runs each: the uncompressed shuffle at 0.29–0.36× a bare stream at nice 0, 0.52–0.59× at 5, 0.68–0.80× at 10,
 * the job's time unchanged (docs/performance.md).
 */
export const TASK_NICE = 10

/** A task thread idle this long lets go of the split buffer it keeps for its next map (task-runtime.ts). */
export const SPARE_IDLE_MS = 2000
