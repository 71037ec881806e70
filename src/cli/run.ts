import type { Command } from 'commander'
import { DEFAULT_SPLIT_SIZE } from '../mapreduce/splits.js'
import { addJobOptionFlags, jobOptionsFromFlags, type JobOptionFlags } from './job-option-flags.js'
import { byteSize, collectParam, positiveInt } from './arg-parsers.js'
import { addStreamingFlags, resolveStreaming, STREAMING_JOB_NAME, type StreamingFlags } from './streaming-flags.js'

interface RunFlags extends JobOptionFlags, StreamingFlags {
  input: string[]
  reduces: number
  output: string
  splitSize: number
  param: Record<string, string>
  quiet?: boolean
}

export function registerRunCommand (program: Command): void {
  const command = program
    .command('run')
    .description('run a job sequentially in this process (the reference that distributed runs must match byte for byte)')
    .argument('[job]', 'built-in job (wc, indexer, grep, sort) or path to a .ts/.js module; or a streaming job: --mapper and --reducer')
    .requiredOption('-i, --input <paths...>', 'input files; map receives each path exactly as given')
    .option('-r, --reduces <R>', 'number of reduce partitions', positiveInt('--reduces'), 1)
    .option('-o, --output <dir>', 'output folder (must be empty or absent)', 'mr-out')
    .option('--split-size <bytes>', 'cut larger files at line ends into splits of about this size', byteSize('--split-size'), DEFAULT_SPLIT_SIZE)
  addStreamingFlags(addJobOptionFlags(command, 'run'))
    .option('-p, --param <key=value>', 'job parameter (repeatable)', collectParam, {})
    .option('-q, --quiet', 'print nothing on success')
    .action(async (jobSpec: string | undefined, flags: RunFlags) => {
      const started = performance.now()
      const streaming = await resolveStreaming(jobSpec, flags)
      const [{ loadJob }, { runSequential }] = await Promise.all([import('../mapreduce/job-loader.js'), import('../mapreduce/sequential.js')])
      const loaded = streaming === undefined ? await loadJob(jobSpec as string) : { job: streaming, name: STREAMING_JOB_NAME }
      const result = await runSequential({
        job: loaded.job,
        jobName: loaded.name,
        inputs: flags.input,
        output: flags.output,
        reduces: flags.reduces,
        params: flags.param,
        splitSize: flags.splitSize,
        options: jobOptionsFromFlags(flags, 'run')
      })
      if (flags.quiet !== true) {
        const secs = (performance.now() - started) / 1000
        const mb = result.inputBytes / 1e6
        console.log(`${loaded.name}: ${result.maps} maps, ${result.reduces} reduces, ${result.keys} keys, ${mb.toFixed(1)} MB in ${secs.toFixed(2)} s (${(mb / secs).toFixed(1)} MB/s) → ${flags.output}/`)
      }
    })
}
