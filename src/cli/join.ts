import { Command, Option } from 'commander'
import { createLogger } from '../util/logger.js'
import type { MeshNode, NodeConfig } from '../node/node.js'
import { MRP2P_VERSION } from '../node/version.js'
import { resolveElectionOptions, ELECTION_FLAGS, type ElectionFlags } from './election-options.js'
import { resolveSubmitters } from './identity-options.js'
import { envValue } from '../util/env.js'
import { LIMIT_FLAG_HELP, resolveLimitOptions, type LimitFlags, type LimitOptions } from './limit-options.js'
import { loopbackWarning, resolveNetworkOptions, type JoinFlags, DEFAULT_LISTEN } from './node-options.js'
import { resolveTaskOptions, TASK_FLAG_HELP, type TaskFlags, type TaskOptions } from './task-options.js'
import { stopOnSignal } from './stop-on-signal.js'
import type { DashboardServer } from '../dashboard/dashboard-server.js'
import { HTTP_FLAG_HELP, resolveHttpOptions, type HttpFlags, type HttpOptions } from './http-options.js'

/**
 * `mrp2p join`: run a node until told to stop. stdout carries exactly what a
 * script needs (the PeerId, its dialable addresses, then `ready`); the same is
 * written to DATA_DIR/node.json. Logs go to stderr.
 */
export function registerJoinCommand (program: Command): void {
  const cmd = program
    .command('join')
    .description('run a node and join the mesh (stays in the foreground until Ctrl-C)')
    .option('--bootstrap <multiaddr...>', 'address of a node already in the mesh, ending in /p2p/<PeerId> (env MRP2P_BOOTSTRAP, comma separated)')
    .option('--listen <multiaddr...>', `address to listen on (env MRP2P_LISTEN; default ${DEFAULT_LISTEN})`)
    .option('--announce <multiaddr...>', 'address other nodes dial instead of the listen address, e.g. the router\'s with port forwarding (env MRP2P_ANNOUNCE, comma separated)')
    .option('--mdns', 'find the mesh\'s other nodes on the LAN by multicast DNS (env MRP2P_MDNS=1; default: on when there is no --bootstrap and --listen is not loopback)')
    .option('--no-mdns', 'no multicast DNS (env MRP2P_MDNS=0)')
    .option('--relay', 'serve as a circuit relay for nodes behind NAT (env MRP2P_RELAY=1; default: on when this node has a public address)')
    .option('--no-relay', 'serve as no relay (env MRP2P_RELAY=0)')
    .option('--data-dir <dir>', 'where the identity key and election state live (env MRP2P_DATA_DIR; default ~/.mrp2p)')
    .option('--slots <n>', 'tasks this node runs at once (env MRP2P_SLOTS; default: CPU count)')
    .option('--no-worker', 'take part in the mesh and election but never run tasks')
    .option('--sandbox', TASK_FLAG_HELP.sandbox)
    .option('--no-exec', TASK_FLAG_HELP.exec)
    .option('--no-local-reads', TASK_FLAG_HELP.localReads)
    .option('--no-local-shuffle', TASK_FLAG_HELP.localShuffle)
    .option('--task-memory <MiB>', TASK_FLAG_HELP.taskMemory)
    .option('--min-free-disk <MiB>', LIMIT_FLAG_HELP.minFreeDisk)
    .option('--max-jobs <n>', LIMIT_FLAG_HELP.maxJobs)
    .option('--history-jobs <n>', LIMIT_FLAG_HELP.historyJobs)
    .option('--history-days <days>', LIMIT_FLAG_HELP.historyDays)
    .option('--store-max <size>', LIMIT_FLAG_HELP.storeMax)
    .option('--repair-after <seconds>', LIMIT_FLAG_HELP.repairAfter)
    .option('--http <host:port>', HTTP_FLAG_HELP.http)
    .option('--http-token <file>', HTTP_FLAG_HELP.httpToken)
    .option('--swarm-key <file>', 'the private mesh\'s key (made by `mrp2p keygen`); without the same key no peer can connect (env MRP2P_SWARM_KEY)')
    .option('--submitters <file>', 'only the submitter identities listed here (one PeerId a line, # comments) may submit and cancel jobs, and only their jobs run here (env MRP2P_SUBMITTERS; default: any member)')
  for (const f of ELECTION_FLAGS) cmd.addOption(new Option(`--${f.flag} <${f.kind === 'ms' ? 'ms' : 'x'}>`, `${f.description} (env ${f.env}; default ${f.defaultValue})`))
  cmd.action(async (flags: JoinFlags & ElectionFlags & TaskFlags & LimitFlags & HttpFlags & { submitters?: string }) => {
    const network = resolveNetworkOptions(flags)
    const warning = loopbackWarning(network.listen, network.bootstrap, network.announce)
    if (warning !== undefined) process.stderr.write(`${warning}\n`)
    const election = resolveElectionOptions(flags)
    const submitters = resolveSubmitters(flags.submitters)
    await runJoin({ ...network, election, submitters }, resolveTaskOptions(flags), resolveLimitOptions(flags), resolveHttpOptions(flags))
  })
}

async function runJoin (config: Omit<NodeConfig, 'version'>, tasks: TaskOptions, limits: LimitOptions, http: HttpOptions): Promise<void> {
  const log = createLogger('join')
  let fatal: Error | undefined
  const exit = (): never => {
    if (fatal === undefined) process.exit(0)
    process.stderr.write(`mrp2p: cannot join: ${fatal.message}\n`)
    process.exit(1)
  }
  let stopFor: ((why: string) => void) | undefined
  // Kept only with the dashboard on: `--http off` is the node with no metrics cost at all.
  // Loaded here, not at the top: every other command (and --help) starts without the node's code.
  const [{ startNode }, { startRoles }, { DashboardServer }, { NodeMetrics }] = await Promise.all([
    import('../node/node.js'), import('../node/roles.js'), import('../dashboard/dashboard-server.js'), import('../dashboard/node-metrics.js')
  ])
  const metrics = http === undefined ? undefined : new NodeMetrics()
  const node: MeshNode = await startNode({
    ...config,
    version: MRP2P_VERSION,
    metrics: metrics?.registry,
    onFatal: (err) => {
      fatal ??= err
      stopFor?.(err.message)
    }
  })
  const roles = await startRoles(node, { worker: config.worker, slots: config.slots, version: MRP2P_VERSION, ...tasks, ...limits, onAttempt: metrics?.observeAttempt, onSealRefusal: metrics?.observeSealRefusal })
  let dashboard: DashboardServer | undefined
  if (http !== undefined && metrics !== undefined) {
    metrics.watch(node, roles)
    dashboard = new DashboardServer({ ...http, node, roles, metrics, log: node.logger.forComponent('dashboard') })
    try {
      await dashboard.start()
    } catch (err) {
      await roles.stop()
      await node.stop()
      throw err
    }
  }
  const out = process.stdout
  out.write(`peer-id ${node.peerId}\n`)
  for (const addr of node.addrs()) out.write(`addr ${addr}\n`)
  if (dashboard !== undefined) out.write(`dashboard ${dashboard.url}\n`)
  out.write('ready\n')
  log.info({ peerId: node.peerId, addrs: node.addrs(), dataDir: node.dataDir.path }, 'node ready')

  const { stop, stopped } = stopOnSignal(async () => {
    // The stop is promised within 2 s; this timer is the guarantee.
    setTimeout(() => {
      log.warn('clean stop took too long, exiting')
      exit()
    }, 1_800).unref()
    await dashboard?.stop()
    await roles.stop()
    await node.stop()
  }, log)
  stopFor = stop
  if (fatal !== undefined) stop(fatal.message)
  watchParent(() => { stop('parent process gone') })
  await stopped
  // Sockets and libp2p timers can keep the loop alive for another second; we are done.
  exit()
}

/**
 * The test harness and `mrp2p cluster` set MRP2P_PARENT_PID: if that process
 * disappears (even by SIGKILL, which gives it no chance to clean up), the node
 * stops rather than live on as an orphan.
 */
function watchParent (onGone: () => void): void {
  const raw = envValue(process.env, 'MRP2P_PARENT_PID')
  const pid = raw === undefined ? NaN : Number.parseInt(raw, 10)
  if (!Number.isInteger(pid) || pid <= 1) return
  const timer = setInterval(() => {
    try {
      process.kill(pid, 0)
    } catch {
      clearInterval(timer)
      onGone()
    }
  }, 1_000)
  timer.unref()
}
