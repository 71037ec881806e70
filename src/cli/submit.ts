import type { Command } from 'commander'
import { DEFAULT_SUBMIT_SPLIT_SIZE } from '../mapreduce/splits.js'
import { createLogger } from '../util/logger.js'
import { addJobOptionFlags, jobOptionsFromFlags, type JobOptionFlags } from './job-option-flags.js'
import { resolveIdentity } from './identity-options.js'
import { quietUnlessLogLevelSet } from './log-level.js'
import { DEFAULT_CLIENT_TIMEOUT_MS, MDNS_CLIENT_HELP, resolveMeshTargets } from './mesh-client.js'
import { DEFAULT_LISTEN, resolveListen, resolveSwarmKey } from './node-options.js'
import { byteSize, collectParam, positiveInt } from './arg-parsers.js'
import { addStreamingFlags, resolveStreaming, STREAMING_JOB_NAME, type StreamingFlags } from './streaming-flags.js'
import { withTerminal } from './submit-terminal.js'

/** What commander parses. */
interface SubmitFlags extends JobOptionFlags, StreamingFlags {
  input: string[]
  bootstrap?: string[]
  mdns?: boolean
  reduces: number
  output: string
  splitSize: number
  param: Record<string, string>
  /** Seconds to look for a coordinator. */
  timeout: number
  maxAttempts: number
  shared?: boolean
  detach?: boolean
  listen?: string
  quiet?: boolean
  swarmKey?: string
  identity?: string
}

/** `mrp2p submit`: parses and checks the flags, runs the job (src/submitter/submit-job.ts), prints one line. */
export function registerSubmitCommand (program: Command): void {
  const command = program
    .command('submit')
    .description('run a job on the mesh: any node may be named, the job goes to the current coordinator')
    .argument('[job]', 'built-in job (wc, indexer, grep, sort) or path to a .ts/.js module; or a streaming job: --mapper and --reducer')
    .requiredOption('-i, --input <paths...>', 'input files (map receives each path exactly as given), or mesh:NAME[/FILE] for a dataset in the mesh (mrp2p put)')
    .option('-b, --bootstrap <multiaddr...>', 'a node of the mesh, ending in /p2p/<PeerId> (env MRP2P_BOOTSTRAP)')
    .option('--mdns', MDNS_CLIENT_HELP)
    .option('-r, --reduces <R>', 'number of reduce partitions', positiveInt('--reduces'), 1)
    .option('-o, --output <dir>', 'output folder (must be empty or absent), or mesh:NAME to store the output as a new dataset in the mesh', 'mr-out')
    .option('--split-size <bytes>', 'cut larger files at line ends into splits of about this size', byteSize('--split-size'), DEFAULT_SUBMIT_SPLIT_SIZE)
    .option('-p, --param <key=value>', 'job parameter (repeatable)', collectParam, {})
    .option('--timeout <seconds>', 'give up when no coordinator is found for this long', positiveInt('--timeout'), 30)
    .option('--max-attempts <n>', 'attempts per task that fail in the job\'s own code before the job fails', positiveInt('--max-attempts'), 4)
  addStreamingFlags(addJobOptionFlags(command, 'submit'))
    .option('--shared', 'the inputs are readable at the same path on every node (a shared or copied folder): workers read them in place instead of fetching them from this submitter')
    .option('--listen <multiaddr>', `where workers reach this submitter (env MRP2P_LISTEN; default ${DEFAULT_LISTEN})`)
    .option('--detach', 'return once the coordinator has the job (every input and the output must be mesh:NAME); mrp2p wait ID waits for it')
    .option('-q, --quiet', 'no progress, only the job id and errors')
    .option('--swarm-key <file>', 'the key of a private mesh (env MRP2P_SWARM_KEY)')
    .option('--identity <file>', 'the submitter identity that signs the job (mrp2p keygen --identity; env MRP2P_IDENTITY); default: a fresh one, which a node with --submitters refuses')
    .action(async (jobSpec: string | undefined, flags: SubmitFlags) => {
      quietUnlessLogLevelSet()
      const streaming = await resolveStreaming(jobSpec, flags)
      const listen = resolveListen(flags.listen === undefined ? undefined : [flags.listen])
      const swarmKey = resolveSwarmKey(flags.swarmKey)
      const bootstrap = await resolveMeshTargets('submit', flags, swarmKey, DEFAULT_CLIENT_TIMEOUT_MS)
      const identity = resolveIdentity(flags.identity)
      const jobOptions = jobOptionsFromFlags(flags, 'submit')
      let jobId = ''
      const { submitJob } = await import('../submitter/submit-job.js')
      const result = await withTerminal(flags.quiet === true, async (hooks) => await submitJob({
        ...hooks,
        // The id comes first, on stdout: what `jobs`, `job`, `logs` and `cancel` take.
        onEvent: (e) => {
          if (e.type === 'planned') jobId = e.jobId
          if (e.type === 'coordinator' && e.previous === undefined) process.stdout.write(`job ${jobId} submitted to ${e.peer} (epoch ${e.epoch})\n`)
          hooks.onEvent(e)
        },
        job: jobSpec ?? STREAMING_JOB_NAME,
        streaming,
        input: flags.input,
        bootstrap,
        listen,
        swarmKey,
        identity,
        reduces: flags.reduces,
        output: flags.output,
        splitSize: flags.splitSize,
        params: flags.param,
        coordinatorTimeoutMs: flags.timeout * 1000,
        maxAttempts: flags.maxAttempts,
        ...jobOptions,
        shared: flags.shared,
        detach: flags.detach,
        log: createLogger('submit')
      }))
      if (flags.detach === true) {
        if (flags.quiet !== true) console.log(`${result.jobName}: ${result.maps} maps, ${result.reduces} reduces, detached: mrp2p wait ${jobId} waits for it, mrp2p job ${jobId} shows it`)
      } else if (flags.quiet !== true) {
        console.log(`${result.jobName}: ${result.maps} maps, ${result.reduces} reduces, ${(result.inputBytes / 1e6).toFixed(1)} MB in ${result.seconds.toFixed(2)} s → ${flags.output.startsWith('mesh:') ? `dataset ${flags.output.slice(5)}` : `${flags.output}/`}`)
      }
    })
}
