import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { startCluster, type Cluster } from '../src/harness/cluster.js'
import { waitFor } from '../src/harness/wait-for.js'
import { BENCH_DIR, corpus } from './corpus.js'
import { median } from './engine-bench.js'
import { CLI, ELECTION_ENV, jobSeconds } from './jobs-bench.js'

const NODES = 2
/** Rounds per mesh; MRP2P_BENCH_ROUNDS for a finer figure. */
const ROUNDS = Number(process.env.MRP2P_BENCH_ROUNDS ?? 7)

async function mesh (http: boolean): Promise<Cluster> {
  const cluster = await startCluster({ nodes: NODES, env: ELECTION_ENV, args: () => (http ? [] : ['--http', 'off']) })
  await waitFor(async () => {
    const s = [...(await cluster.sample()).values()]
    return s.length === NODES && s.filter((i) => i.isCoordinator).length === 1 && s.every((i) => i.members.filter((m) => m.liveness === 'alive').length === NODES - 1)
  }, { timeoutMs: 60_000, intervalMs: 200, description: 'a formed mesh' })
  return cluster
}

/** What a watched node serves meanwhile: a Prometheus scrape every second and one open dashboard (its event stream). */
function watch (cluster: Cluster): () => void {
  const stop = new AbortController()
  for (const n of cluster.nodes) {
    if (n.dashboard === undefined) continue
    const url = n.dashboard
    void (async () => {
      while (!stop.signal.aborted) {
        await fetch(`${url}metrics`, { signal: stop.signal }).then(async (r) => await r.text()).catch(() => {})
        await new Promise((resolve) => setTimeout(resolve, 1_000))
      }
    })()
    void fetch(`${url}api/events`, { signal: stop.signal }).then(async (r) => { for await (const _ of r.body ?? []) { /* read and drop */ } }).catch(() => {})
  }
  return () => { stop.abort() }
}

/** The mean RSS of the mesh's node processes, from /proc. */
function rssMiB (cluster: Cluster): number {
  const each = cluster.nodes.map((n) => {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${n.process.pid ?? 0}/status`, 'utf8'))
    return Number(m?.[1] ?? 0) / 1024
  })
  return each.reduce((a, b) => a + b, 0) / each.length
}

/**
 * What the dashboard, its metrics and the job history cost a node: wc on 128 MiB through a 2-node mesh with
 * the dashboard on (scraped every second, one page open) and with `--http off` (history still kept: it is not
 * optional), rounds alternating between the two meshes so that drift of the machine hits both alike.
 */
export async function runDashboardBench (): Promise<Record<string, number>> {
  const input = await corpus(128 * 2 ** 20)
  const [on, off] = [await mesh(true), await mesh(false)]
  const unwatch = watch(on)
  const times = { on: [] as number[], off: [] as number[] }
  // Sampled after every job: one sample moves by tens of MiB with where V8's collector happens to be.
  const rss = { on: [] as number[], off: [] as number[] }
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, c] of [['on', on], ['off', off]] as const) {
        const output = join(BENCH_DIR, `dashboard-${name}-out`)
        times[name].push(jobSeconds(process.execPath, [CLI, 'submit', 'wc', '--input', input, '--reduces', '2', '--output', output, '--bootstrap', c.nodes[0].addr]))
        rmSync(output, { recursive: true, force: true })
        rss[name].push(rssMiB(c))
      }
    }
    const rssOn = median(rss.on)
    const rssOff = median(rss.off)
    return {
      secondsOn: median(times.on),
      secondsOff: median(times.off),
      throughputOnOverOff: median(times.off) / median(times.on),
      rssOnMiB: rssOn,
      rssOffMiB: rssOff,
      rssCostMiB: rssOn - rssOff
    }
  } finally {
    unwatch()
    await Promise.all([on.stop(), off.stop()])
  }
}
