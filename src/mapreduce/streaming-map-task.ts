import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Job } from './job-api.js'
import { runMapTask, type MapTaskInput, type MapTaskResult } from './map-task.js'
import { runStreamingCommand, type CommandLauncher } from './streaming-command.js'
import type { StreamingJob } from './streaming-job.js'
import { bytePartition, RecordLineReader, writeMergedRuns } from './streaming-records.js'

/** Where and how a streaming task's commands run; the same for its map and reduce. */
export interface StreamingTaskSetting {
  streaming: StreamingJob
  /** The commands' working folder, holding the job's `--file`s. */
  cwd: string
  launcher?: CommandLauncher
  /** ` on node 12D3…` in errors; empty for `run`. */
  where?: string
  /** The commands' stderr, as it comes (the attempt's log); default this process's stderr. */
  onStderr?: (chunk: Buffer) => void
}

/** A map task of a streaming job: the split's bytes as a byte string (latin1) rather than decoded text. */
export type StreamingMapTaskInput = Omit<MapTaskInput, 'job'> & { setting: StreamingTaskSetting }

/** Writes a byte string to a command's stdin in slices, so that a large split is not copied whole at once. */
const FEED_SLICE = 1 << 20

/** The variables every command of a task gets: Hadoop Streaming's names (dots as underscores), mrp2p's, `--cmdenv`. */
export function mapTaskEnv (input: Pick<MapTaskInput, 'split' | 'reduces' | 'contents'>, streaming: StreamingJob): Record<string, string> {
  const { split } = input
  return {
    ...streaming.env,
    mapreduce_map_input_file: split.document,
    map_input_file: split.document,
    mapreduce_map_input_start: String(split.offset),
    mapreduce_map_input_length: String(input.contents.length),
    mapreduce_task_partition: String(split.index),
    mapreduce_job_reduces: String(input.reduces),
    MRP2P_INPUT_FILE: split.document,
    MRP2P_TASK: `map-${split.index}`
  }
}

function commandJob (run: Job['map'], reduces: number): Job {
  return {
    map: run,
    reduce: () => { throw new Error('a streaming job reduces through its reducer command') },
    partition: (key) => bytePartition(key, reduces)
  }
}

/**
 * One map task of a streaming job. The mapper's output lines are the map's emits, partitioned and sorted (and
 * spilled past the memory budget) by the engine's own map task. With a combiner, that output is merged into one
 * sorted stream of `key<TAB>value` lines for the combiner, whose output lines are partitioned and sorted again
 * into the task's run files.
 */
export async function runStreamingMapTask (input: StreamingMapTaskInput): Promise<MapTaskResult> {
  const { setting, split, reduces } = input
  const { streaming } = setting
  const env = mapTaskEnv(input, streaming)
  const command = { task: `map ${split.index}`, cwd: setting.cwd, env, launcher: setting.launcher, where: setting.where, onStderr: setting.onStderr }

  const mapper = commandJob(async (_document, contents, emit) => {
    const lines = new RecordLineReader(emit)
    await runStreamingCommand({ ...command, role: 'mapper', command: streaming.mapper }, async (stdin) => {
      for (let i = 0; i < contents.length; i += FEED_SLICE) {
        if (!await stdin.write(Buffer.from(contents.slice(i, i + FEED_SLICE), 'latin1'))) return
      }
    }, (chunk) => { lines.push(chunk) })
    lines.end()
  }, reduces)

  const combiner = streaming.combiner
  if (combiner === undefined) return await runMapTask({ ...input, job: mapper })

  const mapped = input.outputPaths.map((_, p) => join(input.spillDir, `uncombined-${split.index}-${p}`))
  try {
    const first = await runMapTask({ ...input, job: mapper, outputPaths: mapped })
    const combined = commandJob(async (_document, _contents, emit) => {
      const lines = new RecordLineReader(emit)
      await runStreamingCommand({ ...command, role: 'combiner', command: combiner }, async (stdin) => {
        await writeMergedRuns(mapped, stdin.write)
      }, (chunk) => { lines.push(chunk) })
      lines.end()
    }, reduces)
    const second = await runMapTask({ ...input, job: combined, contents: '' })
    // The task's records in and out are the mapper's; its partitions are what the combiner left.
    return { partitions: second.partitions, lines: first.lines, emitted: first.emitted, spills: first.spills + second.spills }
  } finally {
    for (const path of mapped) rmSync(path, { force: true })
  }
}
