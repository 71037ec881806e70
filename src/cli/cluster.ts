import type { Command } from 'commander'
import { createLogger } from '../util/logger.js'
import { resolveSwarmKey, swarmKeyPath } from './node-options.js'
import { parseIntArg } from './arg-parsers.js'
import type { Cluster } from '../harness/cluster.js'
import { stopOnSignal } from './stop-on-signal.js'

interface ClusterFlags {
  nodes: string
  keep?: boolean
  swarmKey?: string
}

/**
 * `mrp2p cluster --nodes N`: a local mesh of N real `join` processes for trying
 * things out. Prints each node's address, and on Ctrl-C (or SIGTERM) stops
 * every node and waits until all are gone. Nodes also watch this process
 * (MRP2P_PARENT_PID), so even a SIGKILL here leaves no node behind.
 * Election timings are passed on through the environment (MRP2P_LEASE_MS …).
 */
export function registerClusterCommand (program: Command): void {
  program
    .command('cluster')
    .description('run a local mesh of N nodes on 127.0.0.1 until Ctrl-C')
    .option('--nodes <n>', 'how many nodes', '3')
    .option('--keep', 'keep the nodes\' data dirs and logs after stopping')
    .option('--swarm-key <file>', 'make the mesh private with this key (env MRP2P_SWARM_KEY)')
    .action(async (flags: ClusterFlags) => {
      const count = parseIntArg(flags.nodes, '--nodes', 1, 100)
      const log = createLogger('cluster')
      // Checked here, so that a bad key is one error line rather than N nodes failing to start.
      resolveSwarmKey(flags.swarmKey)
      const swarmKeyFile = swarmKeyPath(flags.swarmKey)
      // Dashboards on 8470, 8471, …: each node takes the first free port from there.
      const [{ DEFAULT_DASHBOARD_PORT }, { startCluster }] = await Promise.all([import('../dashboard/dashboard-port.js'), import('../harness/cluster.js')])
      const cluster: Cluster = await startCluster({ nodes: count, keep: flags.keep === true, swarmKeyFile, args: () => ['--http', `127.0.0.1:${DEFAULT_DASHBOARD_PORT}`] })
      const out = process.stdout
      for (const n of cluster.nodes) out.write(`node ${n.index} ${n.addr}\n`)
      for (const n of cluster.nodes) if (n.dashboard !== undefined) out.write(`dashboard ${n.index} ${n.dashboard}\n`)
      out.write(`data ${cluster.rootDir}\n`)
      out.write('ready\n')
      await stopOnSignal(async () => { await cluster.stop() }, log, 'cluster').stopped
      out.write('stopped\n')
      process.exit(0)
    })
}
