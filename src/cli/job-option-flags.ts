import type { Command } from 'commander'
import { DEFAULT_MEMORY_BYTES, DEFAULT_TASK_TIMEOUT_MS, MAX_TASK_TIMEOUT_MS, MIN_MEMORY_BYTES, type JobOptions } from '../mapreduce/job-options.js'
import { InvalidArgumentError } from '../util/errors.js'
import { byteSize, fraction, positiveInt } from './arg-parsers.js'

/** The flags of a job's options (mapreduce/job-options.ts), as commander parses them. */
export interface JobOptionFlags {
  /** Seconds (`submit` only). */
  taskTimeout?: number
  memory?: number
  /** `--no-compress`: false when given. */
  compress?: boolean
  /** `submit` only. */
  reduceSlowStart?: number
  /** `submit` only. */
  intermediateReplicas?: number
}

/** Where the job runs: `run` in this process, `submit` on the mesh (the help says what each does there). */
export type JobRunner = 'run' | 'submit'

/** Adds the flags of the job's options to `run` or `submit`: the one place each option becomes a flag. */
export function addJobOptionFlags (command: Command, runner: JobRunner): Command {
  if (runner === 'submit') {
    command.option('--task-timeout <seconds>', 'an attempt of a map or reduce running longer is ended and counts as a failed attempt', positiveInt('--task-timeout'), DEFAULT_TASK_TIMEOUT_MS / 1000)
    command.option('--intermediate-replicas <n>', 'copies of each finished map output, on distinct nodes, before the map counts as done: it then survives its node (1 or 2; default 1, or 2 while the mesh churns: 2 workers died within a minute)', positiveInt('--intermediate-replicas'))
    command.option('--reduce-slow-start <fraction>', 'share of maps done before reduces start pulling map outputs (default 0.05; 1: only after every map)', fraction('--reduce-slow-start'))
  }
  const memory = `default ${DEFAULT_MEMORY_BYTES / 2 ** 20}MiB${runner === 'submit' ? `, at least ${MIN_MEMORY_BYTES / 2 ** 20}MiB` : ''}`
  return command
    .option('--memory <bytes>', `map output held in memory per task before it spills sorted runs to disk (${memory})`, byteSize('--memory'))
    .option('--no-compress', runner === 'submit'
      ? 'send and store map output uncompressed (default: compressed where that saves an eighth)'
      : 'store intermediate runs uncompressed (default: compressed where that saves an eighth)')
}

/**
 * The job's options the flags ask for. A job for the mesh is held to the wire's bounds, refused here in one line
 * naming the flag; `run` takes any budget, as the engine does.
 */
export function jobOptionsFromFlags (flags: JobOptionFlags, runner: JobRunner): JobOptions {
  if (runner === 'submit') {
    if (flags.taskTimeout !== undefined && flags.taskTimeout * 1000 > MAX_TASK_TIMEOUT_MS) {
      throw new InvalidArgumentError(`--task-timeout must be at most ${MAX_TASK_TIMEOUT_MS / 1000} seconds (a week), got ${flags.taskTimeout}`)
    }
    if (flags.intermediateReplicas !== undefined && flags.intermediateReplicas > 2) throw new InvalidArgumentError(`--intermediate-replicas must be 1 or 2, got ${flags.intermediateReplicas}`)
    if (flags.memory !== undefined && flags.memory < MIN_MEMORY_BYTES) throw new InvalidArgumentError(`--memory must be at least ${MIN_MEMORY_BYTES / 2 ** 20}MiB, got ${flags.memory} bytes`)
  }
  return {
    taskTimeoutMs: flags.taskTimeout === undefined ? undefined : flags.taskTimeout * 1000,
    memoryBytes: flags.memory,
    compress: flags.compress,
    reduceSlowStart: flags.reduceSlowStart,
    intermediateReplicas: flags.intermediateReplicas
  }
}
