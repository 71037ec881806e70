import { rmSync } from 'node:fs'
import type { BlockWriterOptions } from './run-blocks.js'
import { RecordMerge } from './record-merge.js'
import { RunReader, RunWriter, type RunStats } from './run-file.js'

/**
 * The most runs one merge reads at once. Each reader holds a block of its run (up to 128 KiB raw, run-blocks.ts,
 * and the stored block it came from), so a reduce that merged every map output at once held memory in step with
 * the number of maps: with 256 KiB blocks, the 4 GiB sort (128 maps) peaked at 458 MiB a node against 379 at
 * 1 GiB. Hadoop bounds the same thing with `mapreduce.task.io.sort.factor`. 128 readers of 128 KiB blocks hold
 * what 64 of 256 KiB did; a job of up to 128 maps (4 GiB in 32 MiB splits) then needs no extra pass, which had
 * cost the 4 GiB sort a sixth of its time.
 */
export const MERGE_FAN_IN = 128

/** Runs to merge, after the passes that bring them down to `fanIn`; `temporary` are the runs those passes wrote. */
export interface MergedDown { paths: string[], temporary: string[] }

/**
 * Brings `paths` (sorted runs, in map order) down to at most `fanIn` by merging the earliest ones into one run,
 * as often as needed. The first pass merges just enough runs that every later one, the last included, reads
 * exactly `fanIn` (Hadoop's rule, which writes the fewest bytes again: 128 runs at 64 are a pass over 2, one
 * over 64, and the reduce's own over the last 64). A merged run stands where its runs stood, and the merge keeps
 * equal keys in run order, so the values a reducer sees keep their order. Its runs are written uncompressed:
 * they live only for the task, on the same disk. `scratch(i)` names the i-th run a pass writes; on a throw, the
 * runs written are removed.
 */
export function mergeDown (paths: readonly string[], scratch: (i: number) => string, fanIn = MERGE_FAN_IN): MergedDown {
  if (fanIn < 2) throw new RangeError(`a merge reads at least 2 runs, not ${fanIn}`)
  const runs = [...paths]
  const temporary: string[] = []
  try {
    for (let pass = 0; runs.length > fanIn; pass++) {
      // Every later pass takes `fanIn` runs; the first takes what leaves a whole number of them for the rest.
      const spare = (runs.length - 1) % (fanIn - 1)
      const take = pass === 0 && spare !== 0 ? spare + 1 : fanIn
      const into = scratch(temporary.length)
      mergeRecords(runs.slice(0, take), into, { compress: false })
      temporary.push(into)
      runs.splice(0, take, into)
    }
  } catch (err) {
    removeRuns(temporary)
    throw err
  }
  return { paths: runs, temporary }
}

export function removeRuns (paths: readonly string[]): void {
  for (const p of paths) rmSync(p, { force: true })
}

/**
 * Merges runs into one, copying each record's bytes as they are (record-merge.ts). Decoding every record into
 * strings and encoding it again made the 4 GiB sort's extra pass cost 18 % of the job.
 */
export function mergeRecords (paths: readonly string[], into: string, options: BlockWriterOptions): RunStats {
  const readers: RunReader[] = []
  const writer = RunWriter.create(into, options)
  try {
    for (const p of paths) readers.push(RunReader.open(p))
    new RecordMerge(readers).drain((r) => writer.addRecord(r.buf, r.recordStart, r.recordEnd))
  } catch (err) {
    // The run is half written and the caller removes it; only its descriptor matters now.
    try { writer.close() } catch {}
    throw err
  } finally {
    for (const r of readers) r.close()
  }
  return writer.close()
}
