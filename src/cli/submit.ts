import { multiaddr } from '@multiformats/multiaddr'
import type { Command } from 'commander'
import { bundleJob, importJob } from '../mapreduce/job-loader.js'
import { OutputDir } from '../mapreduce/output-dir.js'
import { sampledParams } from '../mapreduce/sample.js'
import { DEFAULT_SUBMIT_SPLIT_SIZE, planSplits } from '../mapreduce/splits.js'
import { createClientLibp2p } from '../node/libp2p.js'
import { MRP2P_VERSION } from '../node/version.js'
import { DEFAULT_TASK_TIMEOUT_MS, MAX_TASK_TIMEOUT_MS } from '../protocol/job-messages.js'
import { PartCollector } from '../submitter/part-collector.js'
import { newJobId, Submission } from '../submitter/submission.js'
import { InvalidArgumentError } from '../util/errors.js'
import { createLogger } from '../util/logger.js'
import { quietUnlessLogLevelSet } from './log-level.js'
import { DEFAULT_LISTEN, resolveBootstrap, resolveListen, resolveSwarmKey } from './network-options.js'
import { byteSize, collectParam, positiveInt } from './options.js'
import { ProgressView } from './progress-view.js'

/** What commander parses: the job options, with --bootstrap and --listen still raw and optional. */
type SubmitFlags = Omit<SubmitJobOptions, 'job' | 'bootstrap' | 'listen' | 'cwd' | 'swarmKey'> & { bootstrap?: string[], listen?: string, swarmKey?: string }

export function registerSubmitCommand (program: Command): void {
  program
    .command('submit')
    .description('run a job on the mesh: any node may be named, the job goes to the current coordinator')
    .argument('<job>', 'built-in job (wc, indexer, grep) or path to a .ts/.js module')
    .requiredOption('-i, --input <paths...>', 'input files; map receives each path exactly as given')
    .option('-b, --bootstrap <multiaddr...>', 'a node of the mesh, ending in /p2p/<PeerId> (env MRP2P_BOOTSTRAP)')
    .option('-r, --reduces <R>', 'number of reduce partitions', positiveInt('--reduces'), 1)
    .option('-o, --output <dir>', 'output folder (must be empty or absent)', 'mr-out')
    .option('--split-size <bytes>', 'cut larger files at line ends into splits of about this size', byteSize('--split-size'), DEFAULT_SUBMIT_SPLIT_SIZE)
    .option('-p, --param <key=value>', 'job parameter (repeatable)', collectParam, {})
    .option('--timeout <seconds>', 'give up when no coordinator is found for this long', positiveInt('--timeout'), 30)
    .option('--max-attempts <n>', 'attempts per task that fail in the job\'s own code before the job fails', positiveInt('--max-attempts'), 4)
    .option('--task-timeout <seconds>', 'an attempt of a map or reduce running longer is ended and counts as a failed attempt', positiveInt('--task-timeout'), DEFAULT_TASK_TIMEOUT_MS / 1000)
    .option('--memory <bytes>', 'map output held in memory per task before it spills sorted runs to disk (default 16MiB, at least 1MiB)', byteSize('--memory'))
    .option('--no-compress', 'send and store map output uncompressed (default: compressed where that saves an eighth)')
    .option('--shared', 'the inputs are readable at the same path on every node (a shared or copied folder): workers read them in place instead of fetching them from this submitter')
    .option('--listen <multiaddr>', `where workers reach this submitter (env MRP2P_LISTEN; default ${DEFAULT_LISTEN})`)
    .option('-q, --quiet', 'no progress, only errors')
    .option('--swarm-key <file>', 'the key of a private mesh (env MRP2P_SWARM_KEY)')
    .action(async (jobSpec: string, flags: SubmitFlags) => {
      quietUnlessLogLevelSet()
      const bootstrap = resolveBootstrap(flags.bootstrap).map((a) => a.toString())
      if (bootstrap.length === 0) throw new InvalidArgumentError('submit needs --bootstrap <multiaddr> (or MRP2P_BOOTSTRAP) naming a node of the mesh')
      const listen = resolveListen(flags.listen === undefined ? undefined : [flags.listen])
      const swarmKey = resolveSwarmKey(flags.swarmKey)
      const result = await submitJob({ ...flags, job: jobSpec, bootstrap, listen, swarmKey })
      if (flags.quiet !== true) {
        console.log(`${result.jobName}: ${result.maps} maps, ${result.reduces} reduces, ${(result.inputBytes / 1e6).toFixed(1)} MB in ${result.seconds.toFixed(2)} s → ${flags.output}/`)
      }
    })
}

export interface SubmitJobOptions {
  job: string
  /** The key of a private mesh. */
  swarmKey?: Uint8Array
  input: string[]
  bootstrap: string[]
  listen: string[]
  reduces: number
  output: string
  splitSize: number
  param: Record<string, string>
  /** Seconds to look for a coordinator. */
  timeout: number
  maxAttempts: number
  /** Seconds one attempt may run on a worker; default: the workers' (10 minutes). */
  taskTimeout?: number
  /** Map output held in memory per task before spilling (bytes). */
  memory?: number
  /** commander's `--no-compress`: false when given. */
  compress?: boolean
  shared?: boolean
  quiet?: boolean
  cwd?: string
}

export interface SubmitJobResult { jobName: string, maps: number, reduces: number, inputBytes: number, seconds: number }

/** Submits a job to a mesh and waits for its output: what `submit` (and `demo`) run. */
export async function submitJob (flags: SubmitJobOptions): Promise<SubmitJobResult> {
  // Everything that can be refused is refused before anything runs or is written.
  if (flags.taskTimeout !== undefined && flags.taskTimeout * 1000 > MAX_TASK_TIMEOUT_MS) {
    throw new InvalidArgumentError(`--task-timeout must be at most ${MAX_TASK_TIMEOUT_MS / 1000} seconds (a week), got ${flags.taskTimeout}`)
  }
  if (flags.memory !== undefined && flags.memory < 2 ** 20) throw new InvalidArgumentError(`--memory must be at least 1MiB, got ${flags.memory} bytes`)
  const bundle = await bundleJob(flags.job, flags.cwd)
  const loaded = await importJob(bundle)
  const splits = await planSplits(flags.input, { cwd: flags.cwd ?? process.cwd(), splitSize: flags.splitSize })
  const params = sampledParams(loaded.job, bundle.name, splits, flags.reduces, flags.param)
  const output = OutputDir.prepare(flags.output)

  const log = createLogger('submit')
  const node = await createClientLibp2p({ version: MRP2P_VERSION, listen: flags.listen, swarmKey: flags.swarmKey })
  const view = new ProgressView(bundle.name, splits.reduce((n, s) => n + s.length, 0))
  const abort = new AbortController()
  const onSignal = (): void => { abort.abort(new InvalidArgumentError('interrupted')) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const started = performance.now()
  try {
    await node.start()
    const self = node.peerId.toString()
    const addrs = node.getMultiaddrs().map((a) => a.toString())
    const parts = new PartCollector(output, flags.reduces)
    const submission = new Submission(
      { self, addrs, network: node, bootstrap: flags.bootstrap.map((b) => multiaddr(b)), log, keyed: flags.swarmKey !== undefined },
      { jobId: newJobId(bundle.name), jobName: bundle.name, code: bundle, splits, reduces: flags.reduces, params, maxAttempts: flags.maxAttempts, parts, shared: flags.shared, taskTimeoutMs: flags.taskTimeout === undefined ? undefined : flags.taskTimeout * 1000, memoryBytes: flags.memory, compress: flags.compress }
    )
    await submission.serve()
    await submission.run({ coordinatorTimeoutMs: flags.timeout * 1000, signal: abort.signal, onEvent: flags.quiet === true ? undefined : (e) => { view.onEvent(e) } })
    parts.publish()
    view.stop()
    return { jobName: bundle.name, maps: splits.length, reduces: flags.reduces, inputBytes: splits.reduce((n, s) => n + s.length, 0), seconds: (performance.now() - started) / 1000 }
  } catch (err) {
    view.stop()
    output.abort()
    throw abort.signal.aborted ? abort.signal.reason : err
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await Promise.resolve(node.stop()).catch(() => {})
  }
}
