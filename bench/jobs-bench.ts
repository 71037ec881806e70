import { spawnSync } from 'node:child_process'
import { rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startCluster } from '../src/harness/cluster.js'
import { waitFor } from '../src/harness/wait-for.js'
import { BENCH_DIR, corpus, REPO_ROOT } from './corpus.js'

const CLI = join(REPO_ROOT, 'bin', 'mrp2p.js')
const CHILD = fileURLToPath(new URL('./engine-child.js', import.meta.url))
const ELECTION_ENV = { MRP2P_LEASE_MS: '1500', MRP2P_HEARTBEAT_MS: '300', MRP2P_SUSPECT_AFTER_MS: '900', MRP2P_DEAD_AFTER_MS: '1800', MRP2P_LOG_LEVEL: 'warn' }

function secondsOf (cmd: string, args: string[]): number {
  const t0 = performance.now()
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`)
  return (performance.now() - t0) / 1000
}

/** wc on ≥ 256 MiB through a local mesh of 1, 2 and 4 nodes, against `mrp2p run` and the shell pipelines, in one run. */
export async function runJobsBench (): Promise<Record<string, number>> {
  const input = await corpus(256 * 2 ** 20)
  const mb = statSync(input).size / 1e6
  const out: Record<string, number> = { corpusMB: mb }
  const seq = spawnSync(process.execPath, [CHILD, 'wc', input, join(BENCH_DIR, 'jobs-seq-out')], { encoding: 'utf8' })
  if (seq.status !== 0) throw new Error(seq.stderr)
  const runMBps = mb / (JSON.parse(seq.stdout) as { seconds: number }).seconds
  out.runMBps = runMBps
  out.coreutilsMBps = mb / secondsOf('bash', ['-c', `tr -cs A-Za-z '\\n' < '${input}' | sort | uniq -c > /dev/null`])
  out.mawkMBps = mb / secondsOf('bash', ['-c', `tr -cs A-Za-z '\\n' < '${input}' | mawk '{ c[$0]++ } END { for (w in c) print w, c[w] }' > /dev/null`])
  for (const nodes of [1, 2, 4]) {
    const cluster = await startCluster({ nodes, env: ELECTION_ENV })
    try {
      await waitFor(async () => {
        const s = await cluster.sample()
        return [...s.values()].filter((i) => i.isCoordinator).length === 1
      }, { timeoutMs: 30_000, intervalMs: 200, description: 'a coordinator' })
      const output = join(BENCH_DIR, `jobs-out-${nodes}`)
      rmSync(output, { recursive: true, force: true })
      const secs = secondsOf(process.execPath, [CLI, 'submit', 'wc', '--input', input, '--reduces', '2', '--output', output, '--bootstrap', cluster.nodes[0].addr, '--quiet'])
      rmSync(output, { recursive: true, force: true })
      out[`nodes${nodes}MBps`] = mb / secs
      out[`nodes${nodes}VsRun`] = mb / secs / runMBps
    } finally {
      await cluster.stop()
    }
  }
  out.ratio2NodesVsRun = out.nodes2VsRun
  out.ratio2NodesVsMawk = out.nodes2MBps / out.mawkMBps
  out.ratio2NodesVsCoreutils = out.nodes2MBps / out.coreutilsMBps
  return out
}
