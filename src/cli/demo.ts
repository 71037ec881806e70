import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import type { Command } from 'commander'
import { partFileName } from '../mapreduce/output-dir.js'
import { createLogger } from '../util/logger.js'
import { quietUnlessLogLevelSet } from './log-level.js'
import { DEFAULT_LISTEN } from './node-options.js'
import { withTerminal } from './submit-terminal.js'

const BUNDLED_TEXT = fileURLToPath(new URL('../../../examples/data/metamorphosis.txt', import.meta.url))
const NODES = 3
const REDUCES = 3

/** Snappier than the defaults, for a mesh that lives a few seconds on one machine. */
const DEMO_ELECTION_ENV = { MRP2P_LEASE_MS: '1500', MRP2P_HEARTBEAT_MS: '300', MRP2P_SUSPECT_AFTER_MS: '900', MRP2P_DEAD_AFTER_MS: '1800', MRP2P_LOG_LEVEL: 'warn' }

export function registerDemoCommand (program: Command): void {
  program
    .command('demo')
    .description(`start a local mesh of ${NODES} nodes, run word count on a bundled book across it, print the top words, stop the mesh`)
    .action(async () => {
      quietUnlessLogLevelSet()
      const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-demo-'))
      console.log(`starting a local mesh of ${NODES} nodes…`)
      const [{ startCluster }, { submitJob }] = await Promise.all([import('../harness/cluster.js'), import('../submitter/submit-job.js')])
      const cluster = await startCluster({ nodes: NODES, env: DEMO_ELECTION_ENV })
      try {
        for (const n of cluster.nodes) console.log(`  node ${n.index}  ${n.addr}  dashboard ${n.dashboard ?? '(off)'}`)
        const output = join(scratch, 'out')
        // Small splits, so that the one book becomes several map tasks spread over the nodes.
        const result = await withTerminal(false, async (hooks) => await submitJob({
          ...hooks,
          job: 'wc', input: [BUNDLED_TEXT], bootstrap: [multiaddr(cluster.nodes[0].addr)], listen: [DEFAULT_LISTEN],
          reduces: REDUCES, output, splitSize: 24 * 1024, params: {}, coordinatorTimeoutMs: 30_000, maxAttempts: 4, log: createLogger('submit')
        }))
        const counts: Array<[string, number]> = []
        for (let r = 0; r < REDUCES; r++) {
          for (const line of readFileSync(join(output, partFileName(r)), 'utf8').split('\n')) {
            const sp = line.lastIndexOf(' ')
            if (sp > 0) counts.push([line.slice(0, sp), Number(line.slice(sp + 1))])
          }
        }
        counts.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        console.log(`word count of ${BUNDLED_TEXT.split('/').pop() ?? ''} on ${NODES} nodes: ${counts.length} distinct words, ${result.maps} map tasks, ${REDUCES} reduce tasks, ${result.seconds.toFixed(2)} s`)
        for (const [word, n] of counts.slice(0, 10)) console.log(`${String(n).padStart(7)}  ${word}`)
      } finally {
        await cluster.stop()
        rmSync(scratch, { recursive: true, force: true })
        console.log('mesh stopped')
      }
    })
}
