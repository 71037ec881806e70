import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Emit, Job, MapContext, SplitInfo } from './job-api.js'
import { DEFAULT_MEMORY_BYTES } from './job-option-defaults.js'
import type { JobOptions } from './job-options.js'
import { MapOutputBuffer } from './map-output-buffer.js'
import { MapOutputBytes } from './map-output-bytes.js'
import { mergeRecords } from './merge-passes.js'
import { addKeyValueLines, separatorByte } from './key-value-lines.js'
import { bytesPartitioner, partitioner } from './partitioner.js'
import { forEachGroup, KWayMerge } from './merge.js'
import { RunReader, RunWriter, type RunStats } from './run-file.js'
import { userCodeError } from './user-code.js'

export interface MapTaskInput {
  job: Job
  jobName: string
  split: SplitInfo
  /**
   * The split: its text, or its bytes (decoded here for a map function, kept as they are for a job that reads
   * key-value lines). A task with a map function lets go of it (sets it to '') once that function has returned: it
   * is the task's largest object, and the spills' merge that follows has no use for it.
   */
  contents: string | Buffer
  reduces: number
  params: Readonly<Record<string, string>>
  /** One run file per partition, created by the task. */
  outputPaths: readonly string[]
  /** Where spills go (removed before the task returns). */
  spillDir: string
  /** The job's options: its memory budget (spill past it) and whether runs are compressed. */
  options?: JobOptions
  /**
   * Called once the task has let go of `contents`. A task thread starts a collection then, so that the string is
   * freed while the spills merge, not still held when the next task reads its split (heap-collector.ts).
   */
  onContentsDone?: () => void
}

export interface MapTaskResult {
  partitions: RunStats[]
  /** The split's lines (its records, as Hadoop's text input counts them). */
  lines: number
  emitted: number
  spills: number
}

/**
 * One map task: map (+ combine) → partition → sort → R run files. Output that
 * outgrows the memory budget is spilled as sorted runs and merged at the end,
 * so memory stays bounded whatever the job emits.
 */
export async function runMapTask (input: MapTaskInput): Promise<MapTaskResult> {
  const { job, jobName, split, reduces } = input
  const budget = input.options?.memoryBytes ?? DEFAULT_MEMORY_BYTES
  const ctx: MapContext = { params: input.params, reduces, split }
  const runOptions = { compress: input.options?.compress }
  const separator = separatorByte(job.keyValueSeparator)
  const source = separator === undefined ? undefined : typeof input.contents === 'string' ? Buffer.from(input.contents) : input.contents
  // Values grouped by key are what a combiner needs; without one, records are kept as the bytes the runs hold, and
  // lines read as key-value records stay where they are in the split.
  const buffer = job.combine !== undefined
    ? new MapOutputBuffer(job, jobName, ctx, runOptions)
    : new MapOutputBytes(partitioner(job, jobName, ctx), runOptions, budget, source)
  const spills: string[][] = []
  let emitted = 0

  const spill = (): void => {
    const paths = input.outputPaths.map((_, p) => join(input.spillDir, `spill-${split.index}-${spills.length}-${p}`))
    // Read once, by this task, from this disk: compressing them only cost the time to compress and to inflate.
    buffer.writeRuns(paths, { compress: false })
    spills.push(paths)
  }

  const emit: Emit = (key, value) => {
    if (typeof key !== 'string' || typeof value !== 'string') {
      throw new TypeError(`emit(key, value) takes two strings, got ${typeof key} and ${typeof value}`)
    }
    emitted++
    buffer.add(key, value)
    if (buffer.bytes > budget) spill()
  }

  let lines: number
  if (source !== undefined && separator !== undefined) {
    // A combiner works on strings: its buffer is given each record decoded, and partitions it itself.
    const read = buffer instanceof MapOutputBytes
      ? addKeyValueLines(source, separator, bytesPartitioner(job, jobName, ctx), buffer, () => { if (buffer.bytes > budget) spill() })
      : addKeyValueLines(source, separator, () => 0, {
        addRange: (keyStart, keyEnd, valueStart, valueEnd) => { buffer.add(source.toString('utf8', keyStart, keyEnd), source.toString('utf8', valueStart, valueEnd)) }
      }, () => { if (buffer.bytes > budget) spill() })
    lines = read.lines
    emitted = read.records
  } else {
    const map = job.map
    if (map === undefined) throw new TypeError(`job ${jobName} has neither a map function nor a keyValueSeparator`)
    let text = typeof input.contents === 'string' ? input.contents : input.contents.toString('utf8')
    input.contents = ''
    try {
      const ret = map.call(job, split.document, text, emit, ctx)
      if (ret instanceof Promise) await ret
    } catch (err) {
      throw userCodeError(jobName, `map failed on document ${split.document}`, err)
    }
    lines = countLines(text)
    // A local of an async function lives as long as the call does: dropped here, the string can go.
    text = ''
    input.onContentsDone?.()
  }

  try {
    if (spills.length === 0) {
      return { partitions: buffer.writeRuns(input.outputPaths), lines, emitted, spills: 0 }
    }
    if (buffer.size > 0) spill()
    const partitions = input.outputPaths.map((path, p) => {
      const runs = spills.map((s) => s[p])
      return buffer instanceof MapOutputBuffer ? combineSpills(runs, path, buffer) : mergeRecords(runs, path, runOptions)
    })
    return { partitions, lines, emitted, spills: spills.length }
  } finally {
    for (const paths of spills) for (const path of paths) rmSync(path, { force: true })
  }
}

function countLines (text: string): number {
  let n = 0
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++
  return text.length > 0 && !text.endsWith('\n') ? n + 1 : n
}

/** The spills merged into one run, and each key's values combined again. */
function combineSpills (paths: string[], out: string, buffer: MapOutputBuffer): RunStats {
  const readers = paths.map((path) => RunReader.open(path))
  const writer = RunWriter.create(out, buffer.runOptions)
  let stats: RunStats | undefined
  try {
    forEachGroup(new KWayMerge(readers), (key, values) => {
      if (values.length > 1) values = [buffer.combineValues(key, values)]
      for (const v of values) writer.add(key, v)
    })
  } finally {
    for (const r of readers) r.close()
    stats = writer.close()
  }
  return stats
}
