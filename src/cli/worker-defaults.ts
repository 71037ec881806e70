/**
 * The worker's free-disk reserve as the CLI shows and passes it: the worker
 * keeps this much free under its data dir beyond an attempt's input. It must
 * equal the worker's own fallback (src/worker/worker-service.ts); the CLI
 * reads it only through this module, so that once src/worker exports the
 * value this file becomes a re-export of it.
 */
export const DEFAULT_MIN_FREE_DISK_BYTES = 64 * 2 ** 20
