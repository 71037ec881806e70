// Mesh benchmark: failover time, gossip traffic and idle memory of real
// `mrp2p join` processes on this machine. `node dist/bench/mesh-bench.js`.
import '../src/util/polyfills.js'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { startCluster, type Cluster } from '../src/harness/cluster.js'
import { waitFor } from '../src/harness/wait-for.js'
import type { InfoResponse } from '../src/protocol/info.js'
import { median } from './engine-bench.js'

const FAILOVER_ROUNDS = 10
const FAILOVER_NODES = 5
/** Two lease settings: a fast one for small clusters and the default. */
const LEASES_MS = (process.env.MESH_BENCH_LEASES ?? '1000,3000').split(',').filter(s => s !== '').map(Number)
const TRAFFIC_SIZES = (process.env.MESH_BENCH_SIZES ?? '5,10,20').split(',').filter(s => s !== '').map(Number)
const SETTLE_MS = 15_000
const WINDOW_MS = 10_000
/** Answers can be slow while 20 processes share 2 cores; a silent node is retried, not counted. */
const PROBE = { dialMs: 10_000, firstByteMs: 5_000, responseMs: 5_000 }

function electionEnv (leaseMs: number): Record<string, string> {
  // Heartbeats and failure detection scale with the lease, as in the defaults (3000/1000/3000/6000).
  return {
    MRP2P_LEASE_MS: String(leaseMs),
    MRP2P_HEARTBEAT_MS: String(Math.round(leaseMs / 3)),
    MRP2P_SUSPECT_AFTER_MS: String(leaseMs),
    MRP2P_DEAD_AFTER_MS: String(leaseMs * 2),
    MRP2P_LOG_LEVEL: 'warn'
  }
}

async function agreed (c: Cluster, indices: number[]): Promise<{ index: number, epoch: number }> {
  return await waitFor(async () => {
    const s = await c.sample(indices)
    if (s.size !== indices.length) return undefined
    const acting = [...s].filter(([, i]) => i.isCoordinator)
    if (acting.length !== 1) return undefined
    const [index, info] = acting[0]
    return [...s.values()].every(i => i.coordinator === info.peerId) ? { index, epoch: info.epoch } : undefined
  }, { timeoutMs: 60_000, intervalMs: 50, description: 'one agreed coordinator' })
}

/** Milliseconds from SIGKILL of the coordinator until a survivor acts as coordinator, `rounds` times. */
async function failover (leaseMs: number, rounds: number): Promise<number[]> {
  const c = await startCluster({ nodes: FAILOVER_NODES, env: electionEnv(leaseMs) })
  const all = c.nodes.map(n => n.index)
  const times: number[] = []
  try {
    await c.waitForMesh({ timeoutMs: 30_000 })
    for (let r = 0; r < rounds; r++) {
      const before = await agreed(c, all)
      const survivors = all.filter(i => i !== before.index)
      const killedAt = performance.now()
      await c.kill(before.index)
      const at = await waitFor(async () => {
        const s = await c.sample(survivors)
        return [...s.values()].some(i => i.isCoordinator && i.epoch > before.epoch) ? performance.now() : undefined
      }, { timeoutMs: 20 * leaseMs, intervalMs: 10, description: 'a new coordinator' })
      times.push(at - killedAt)
      await c.restart(before.index)
      await c.waitForMesh({ timeoutMs: 30_000 })
      // Measure from a settled mesh: a node that has just restarted neither
      // claims nor grants for about max(lease, dead-after) (the election's
      // join quiet time), which would turn the next round into a different
      // experiment (measured separately: up to ~3 × lease).
      await agreed(c, all)
      await new Promise(resolve => setTimeout(resolve, 2 * leaseMs))
    }
  } finally {
    await c.stop()
  }
  return times
}

/** TCP payload bytes each node sent, by process, from the kernel's per-socket counters (`ss -ti`). */
function bytesSentByPid (): Map<number, number> {
  const out = execFileSync('ss', ['-tinpH', 'state', 'established'], { encoding: 'utf8' })
  const sent = new Map<number, number>()
  let pid: number | undefined
  for (const line of out.split('\n')) {
    const p = /pid=(\d+)/.exec(line)
    if (p !== null) pid = Number(p[1])
    const b = /bytes_sent:(\d+)/.exec(line)
    if (b !== null && pid !== undefined) {
      sent.set(pid, (sent.get(pid) ?? 0) + Number(b[1]))
      pid = undefined
    }
  }
  return sent
}

function rssBytes (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? NaN : Number(m[1]) * 1024
}

interface Traffic { wireBytesPerNodePerSec: number, controlBytesPerNodePerSec: number, rssMiB: number }

/** Idle mesh of `n` nodes at default election settings: what it costs to just be there. */
async function traffic (n: number): Promise<Traffic> {
  const c = await startCluster({ nodes: n, env: { MRP2P_LOG_LEVEL: 'warn' }, readyTimeoutMs: 60_000, probeTimeouts: PROBE })
  try {
    await c.waitForMesh({ timeoutMs: 120_000 })
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    const pids = c.nodes.map(node => node.process.pid as number)
    const sample = async (): Promise<Map<number, InfoResponse>> => await waitFor(async () => {
      const s = await c.sample()
      return s.size === n ? s : undefined
    }, { timeoutMs: 60_000, description: 'all nodes to answer' })
    const info0 = await sample()
    const wire0 = bytesSentByPid()
    const t0 = performance.now()
    await new Promise(resolve => setTimeout(resolve, WINDOW_MS))
    const wire1 = bytesSentByPid()
    const t1 = performance.now()
    const info1 = await sample()
    const secs = (t1 - t0) / 1000
    const wire = pids.map(p => ((wire1.get(p) ?? 0) - (wire0.get(p) ?? 0)) / secs)
    const control = [...info1].map(([i, a]) => ((a.control?.publishedBytes ?? 0) - (info0.get(i)?.control?.publishedBytes ?? 0)) / secs)
    const rss = pids.map(rssBytes)
    return {
      wireBytesPerNodePerSec: median(wire),
      controlBytesPerNodePerSec: median(control),
      rssMiB: median(rss) / 2 ** 20
    }
  } finally {
    await c.stop()
  }
}

export async function runMeshBench (): Promise<Record<string, number>> {
  const results: Record<string, number> = {}
  // Progress on stderr: a long run that fails late still shows what it measured.
  const note = (k: string): void => { process.stderr.write(`mesh-bench: ${k} = ${results[k]}\n`) }
  for (const leaseMs of LEASES_MS) {
    const times = await failover(leaseMs, FAILOVER_ROUNDS)
    results[`failover_ms_lease${leaseMs}_median`] = Math.round(median(times))
    results[`failover_ms_lease${leaseMs}_max`] = Math.round(Math.max(...times))
    results[`failover_ms_lease${leaseMs}_min`] = Math.round(Math.min(...times))
    note(`failover_ms_lease${leaseMs}_min`)
    note(`failover_ms_lease${leaseMs}_median`)
    note(`failover_ms_lease${leaseMs}_max`)
  }
  for (const n of TRAFFIC_SIZES) {
    const t = await traffic(n)
    results[`wire_bytes_per_node_s_n${n}`] = Math.round(t.wireBytesPerNodePerSec)
    results[`control_bytes_per_node_s_n${n}`] = Math.round(t.controlBytesPerNodePerSec)
    results[`idle_rss_mib_n${n}`] = Math.round(t.rssMiB * 10) / 10
    for (const k of [`wire_bytes_per_node_s_n${n}`, `control_bytes_per_node_s_n${n}`, `idle_rss_mib_n${n}`]) note(k)
  }
  return results
}

function table (r: Record<string, number>): string {
  const rows: string[][] = [['measure', 'value']]
  for (const leaseMs of LEASES_MS) {
    rows.push([`failover, lease ${leaseMs} ms (median of ${FAILOVER_ROUNDS}, ${FAILOVER_NODES} nodes)`, `${r[`failover_ms_lease${leaseMs}_median`]} ms (min ${r[`failover_ms_lease${leaseMs}_min`]}, max ${r[`failover_ms_lease${leaseMs}_max`]})`])
  }
  for (const n of TRAFFIC_SIZES) {
    rows.push([`${n} nodes idle: TCP bytes sent per node per s`, String(r[`wire_bytes_per_node_s_n${n}`])])
    rows.push([`${n} nodes idle: control payload published per node per s`, String(r[`control_bytes_per_node_s_n${n}`])])
    rows.push([`${n} nodes idle: RSS per node`, `${r[`idle_rss_mib_n${n}`]} MiB`])
  }
  const w = Math.max(...rows.map(x => x[0].length))
  return rows.map(([a, b]) => `${a.padEnd(w)}  ${b}`).join('\n') + '\n'
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await runMeshBench()
  process.stdout.write(table(r))
}
