import { BlockArena } from './block-arena.js'
import { CHUNK } from './chunked-file-writer.js'
import type { Job, ReduceContext } from './job-api.js'
import { forEachGroup, KWayMerge } from './merge.js'
import { mergeDown, removeRuns } from './merge-passes.js'
import { PartWriter } from './part-file.js'
import { RecordMerge } from './record-merge.js'
import { RUN_BLOCK } from './run-blocks.js'
import { RunReader } from './run-file.js'
import { userCodeError } from './user-code.js'

export interface ReduceTaskInput {
  job: Job
  jobName: string
  partition: number
  reduces: number
  params: Readonly<Record<string, string>>
  /** Partition `partition` of every map output, in map task order (that order is the value order). */
  inputs: readonly string[]
  /** The part file to create (the caller commits it by rename). */
  outputPath: string
  /** The most runs one merge reads (default merge-passes.ts MERGE_FAN_IN); more are merged down first, beside the part file. */
  mergeFanIn?: number
}

/** `values`: the records read (one per key and map output that had it, after the mappers' combine). */
export interface ReduceTaskResult { keys: number, bytes: number, values: number }

/** One reduce task: k-way merge of the sorted runs → reduce once per key (or every record as it is) → part file. */
export function runReduceTask (input: ReduceTaskInput): ReduceTaskResult {
  const { job, jobName } = input
  const ctx: ReduceContext = { params: input.params, reduces: input.reduces, partition: input.partition }
  const runs = mergeDown(input.inputs, (i) => `${input.outputPath}.merge-${i}`, input.mergeFanIn)
  const readers: RunReader[] = []
  try {
    // Records are copied from the runs' blocks to the part's chunk as bytes when there is no reduce: all in one arena.
    const arena = job.reduce === undefined ? new BlockArena(runs.paths.length * 2 * RUN_BLOCK + CHUNK) : undefined
    const writer = PartWriter.create(input.outputPath, job.valuesOnly !== true, arena)
    let valuesIn = 0
    try {
      for (const path of runs.paths) readers.push(RunReader.open(path, arena))
      const reduce = job.reduce
      if (reduce === undefined) {
        // Every record is its own line, in merged order: copied as bytes, never decoded (Hadoop's identity reducer).
        new RecordMerge(readers).drain((r) => writer.addRecord(r.buf, r.keyStart, r.keyEnd, r.valueStart, r.recordEnd, r.bufAt))
        valuesIn = writer.lines
      } else {
        forEachGroup(new KWayMerge(readers), (key, values) => {
          valuesIn += values.length
          let out: unknown
          try {
            out = reduce.call(job, key, values, ctx)
          } catch (err) {
            throw userCodeError(jobName, `reduce failed on key ${JSON.stringify(key)}`, err)
          }
          if (typeof out !== 'string') {
            throw userCodeError(jobName, `reduce returned ${typeof out} for key ${JSON.stringify(key)}`, new TypeError('reduce must return a string'))
          }
          writer.add(key, out)
        })
      }
    } finally {
      writer.close()
    }
    return { keys: writer.lines, bytes: writer.bytes, values: valuesIn }
  } finally {
    for (const r of readers) r.close()
    removeRuns(runs.temporary)
  }
}
