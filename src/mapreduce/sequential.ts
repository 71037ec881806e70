import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { InvalidArgumentError } from '../util/errors.js'
import { prepareCommandFolder, type CommandFile } from './command-folder.js'
import type { Job } from './job-api.js'
import { runMapTask, type MapTaskInput, type MapTaskResult } from './map-task.js'
import { OutputDir, partFileName } from './output-dir.js'
import { runReduceTask, type ReduceTaskInput, type ReduceTaskResult } from './reduce-task.js'
import { sampledParams } from './sample.js'
import { planSplits, readSplit, readSplitBytes } from './splits.js'
import type { JobOptions } from './job-options.js'
import type { StreamingJob } from './streaming-job.js'
import { runStreamingMapTask } from './streaming-map-task.js'
import { runStreamingReduceTask } from './streaming-reduce-task.js'

/** A streaming job as `run` takes it: its commands, and where each `--file` is on this machine. */
export interface StreamingRun {
  streaming: StreamingJob
  files: readonly CommandFile[]
}

export interface SequentialRunOptions {
  /** A module's job, or a streaming job's commands (docs/streaming.md). */
  job: Job | StreamingRun
  jobName: string
  /** Input paths as the user wrote them; each is the `document` name map receives. */
  inputs: readonly string[]
  output: string
  reduces: number
  params?: Readonly<Record<string, string>>
  splitSize?: number
  /** The job's options, as `submit` passes them to every task (memory budget, compression). */
  options?: JobOptions
  /** Folder the inputs are relative to (default: the process's). */
  cwd?: string
  onProgress?: (event: SequentialProgress) => void
}

export type SequentialProgress =
  | { type: 'planned', maps: number, reduces: number, inputBytes: number }
  | { type: 'map-done', index: number, emitted: number }
  | { type: 'reduce-done', partition: number, keys: number }

export interface SequentialRunResult {
  maps: number
  reduces: number
  inputBytes: number
  emitted: number
  keys: number
  outputBytes: number
  parts: string[]
}

/**
 * The reference run (the lab's RunSingle / mrsequential), built from the same
 * task functions the workers run: map every split, then reduce every
 * partition, then commit. Distributed output must equal this byte for byte.
 */
export async function runSequential (opts: SequentialRunOptions): Promise<SequentialRunResult> {
  if (!Number.isInteger(opts.reduces) || opts.reduces < 1) throw new InvalidArgumentError(`reduces must be a positive integer, got ${opts.reduces}`)
  const splits = await planSplits(opts.inputs, { cwd: opts.cwd ?? process.cwd(), splitSize: opts.splitSize })
  const code = opts.job
  const streaming = 'streaming' in code ? code : undefined
  const params = streaming === undefined ? sampledParams(code as Job, opts.jobName, splits, opts.reduces, opts.params ?? {}) : { ...opts.params }
  const inputBytes = splits.reduce((n, s) => n + s.length, 0)
  opts.onProgress?.({ type: 'planned', maps: splits.length, reduces: opts.reduces, inputBytes })

  const out = OutputDir.prepare(opts.output)
  try {
    const runsDir = join(out.temporary, 'runs')
    mkdirSync(runsDir)
    const runPath = (m: number, r: number): string => join(runsDir, `map-${m}-${r}`)
    // Each task's commands run in a folder of their own, as on a worker, holding the job's files.
    const inFolder = async <T>(name: string, task: (cwd: string) => Promise<T>): Promise<T> => {
      const cwd = join(out.temporary, name)
      prepareCommandFolder(cwd, streaming?.files ?? [])
      try {
        return await task(cwd)
      } finally {
        rmSync(cwd, { recursive: true, force: true })
      }
    }
    const runMap = async (input: Omit<MapTaskInput, 'job'>): Promise<MapTaskResult> => streaming === undefined
      ? await runMapTask({ ...input, job: code as Job })
      : await inFolder(`cwd-map-${input.split.index}`, async (cwd) => await runStreamingMapTask({ ...input, setting: { streaming: streaming.streaming, cwd } }))
    const runReduce = async (input: Omit<ReduceTaskInput, 'job'>): Promise<ReduceTaskResult> => streaming === undefined
      ? runReduceTask({ ...input, job: code as Job })
      : await inFolder(`cwd-reduce-${input.partition}`, async (cwd) => await runStreamingReduceTask({ ...input, setting: { streaming: streaming.streaming, cwd } }))
    let emitted = 0
    for (const split of splits) {
      const result = await runMap({
        jobName: opts.jobName,
        split,
        contents: streaming === undefined ? readSplitBytes(split) : readSplit(split, 'latin1'),
        reduces: opts.reduces,
        params,
        outputPaths: Array.from({ length: opts.reduces }, (_, r) => runPath(split.index, r)),
        spillDir: runsDir,
        options: opts.options
      })
      emitted += result.emitted
      opts.onProgress?.({ type: 'map-done', index: split.index, emitted: result.emitted })
    }
    let keys = 0
    let outputBytes = 0
    for (let r = 0; r < opts.reduces; r++) {
      const result = await runReduce({
        jobName: opts.jobName,
        partition: r,
        reduces: opts.reduces,
        params,
        inputs: splits.map((s) => runPath(s.index, r)),
        outputPath: out.tempPart(r)
      })
      keys += result.keys
      outputBytes += result.bytes
      opts.onProgress?.({ type: 'reduce-done', partition: r, keys: result.keys })
    }
    out.commit(opts.reduces)
    const parts = Array.from({ length: opts.reduces }, (_, r) => join(opts.output, partFileName(r)))
    return { maps: splits.length, reduces: opts.reduces, inputBytes, emitted, keys, outputBytes, parts }
  } catch (err) {
    out.abort()
    throw err
  }
}
