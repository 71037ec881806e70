import { closeSync, openSync } from 'node:fs'
import { writeAll } from './chunked-file-writer.js'
import type { ReduceTaskInput, ReduceTaskResult } from './reduce-task.js'
import { runStreamingCommand } from './streaming-command.js'
import type { StreamingTaskSetting } from './streaming-map-task.js'
import { writeMergedRuns } from './streaming-records.js'
import { mergeDown, removeRuns } from './merge-passes.js'

export type StreamingReduceTaskInput = Omit<ReduceTaskInput, 'job'> & { setting: StreamingTaskSetting }

const NEWLINE = 0x0a

/**
 * One reduce task of a streaming job: its partition of every map output, merged in key order (values of a key in
 * map task order, then emit order), goes to the reducer as `key<TAB>value` lines; the reducer's stdout is the part
 * file, byte for byte and in the order written (a last line without its newline gets one). `keys` counts the part's
 * lines: a reducer decides what its output lines are.
 */
export async function runStreamingReduceTask (input: StreamingReduceTaskInput): Promise<ReduceTaskResult> {
  const { setting } = input
  const env = {
    ...setting.streaming.env,
    mapreduce_task_partition: String(input.partition),
    mapreduce_job_reduces: String(input.reduces),
    MRP2P_TASK: `reduce-${input.partition}`
  }
  const runs = mergeDown(input.inputs, (i) => `${input.outputPath}.merge-${i}`, input.mergeFanIn)
  let fd: number
  try {
    fd = openSync(input.outputPath, 'wx')
  } catch (err) {
    removeRuns(runs.temporary)
    throw err
  }
  let bytes = 0
  let lines = 0
  let last = NEWLINE
  let values = 0
  try {
    await runStreamingCommand(
      { task: `reduce ${input.partition}`, role: 'reducer', command: setting.streaming.reducer, cwd: setting.cwd, env, launcher: setting.launcher, where: setting.where, onStderr: setting.onStderr },
      async (stdin) => { values = await writeMergedRuns(runs.paths, stdin.write) },
      (chunk) => {
        writeAll(fd, chunk)
        bytes += chunk.length
        for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) lines++
        last = chunk[chunk.length - 1]
      }
    )
    if (last !== NEWLINE) {
      writeAll(fd, Buffer.from([NEWLINE]))
      bytes++
      lines++
    }
  } finally {
    closeSync(fd)
    removeRuns(runs.temporary)
  }
  return { keys: lines, bytes, values }
}
