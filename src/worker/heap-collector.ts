import { getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

type Gc = (options: { type: 'major', execution: 'async' }) => unknown

/** What the heap holds, dead or alive: a long Latin-1 string (a streaming map's input) lives outside it, as external memory. */
export function heldBytes (): number {
  const h = getHeapStatistics()
  return h.used_heap_size + h.external_memory
}

/**
 * What a task thread calls when a map has let go of its split's text, and between tasks: when the heap holds at
 * least `thresholdBytes` (a split's contents are one string of up to twice the split's bytes), it starts a full
 * collection, which runs concurrently with the task's spill merge, or with the next task.
 *
 * V8 frees a large string only in a full collection, and schedules one by how far the heap has grown, not by how
 * much of it is garbage: a thread that maps split after split kept several dead splits at once, so a node's peak
 * RSS rose with the number of tasks, i.e. with the input (wc on 3 nodes: 342 MiB at 256 MiB, 412 at 1 GiB).
 * Collecting after each large task bounds it by one task's working set: wc on 1 GiB 271–295 MiB against
 * 409–437, the sort 364–392 against 420–452, for 4–5 % of the job's time (docs/performance.md).
 * `gc` is not a global of a normal process; `--expose-gc` set now makes it one of contexts made afterwards.
 */
export function heapCollector (thresholdBytes: number): () => void {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as Gc
  return () => {
    if (heldBytes() >= thresholdBytes) gc({ type: 'major', execution: 'async' })
  }
}
