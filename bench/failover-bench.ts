// The price of losing the coordinator mid-job: wc on 256 MiB through 3 local
// nodes, once undisturbed and once with the coordinator SIGKILLed during the
// map phase, in the same run. Reported as a time ratio (target ≤ 1.5).
import { spawn } from 'node:child_process'
import { rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { startCluster, type Cluster } from '../src/harness/cluster.js'
import { waitFor } from '../src/harness/wait-for.js'
import { BENCH_DIR, corpus, REPO_ROOT } from './corpus.js'
import { median } from './engine-bench.js'

const CLI = join(REPO_ROOT, 'bin', 'mrp2p.js')
const NODES = 3
const ROUNDS = Number(process.env.FAILOVER_BENCH_ROUNDS ?? 3)
/** The kill lands this far into the undisturbed run's time: the map phase. */
const KILL_AT = 0.4
/** Failure detection scales with the lease as in the defaults (3000/1000/3000/6000); 1.5 s suits a small LAN cluster. */
const LEASE_MS = Number(process.env.FAILOVER_BENCH_LEASE_MS ?? 1500)
const ELECTION_ENV = {
  MRP2P_LEASE_MS: String(LEASE_MS),
  MRP2P_HEARTBEAT_MS: String(Math.round(LEASE_MS / 3)),
  MRP2P_SUSPECT_AFTER_MS: String(LEASE_MS),
  MRP2P_DEAD_AFTER_MS: String(2 * LEASE_MS),
  MRP2P_LOG_LEVEL: 'warn'
}

async function formed (c: Cluster): Promise<number> {
  return await waitFor(async () => {
    const s = [...(await c.sample()).entries()]
    if (s.length !== NODES) return undefined
    const leaders = s.filter(([, i]) => i.isCoordinator)
    if (leaders.length !== 1 || !s.every(([, i]) => i.members.filter((m) => m.liveness === 'alive').length === NODES - 1)) return undefined
    return leaders[0][0]
  }, { timeoutMs: 30_000, intervalMs: 200, description: 'a formed mesh' })
}

/** Wall time of one submit, submit to _SUCCESS; `during` runs once the submit has started. */
async function timedSubmit (c: Cluster, input: string, via: number, during?: (elapsed: () => number) => Promise<void>): Promise<number> {
  const output = join(BENCH_DIR, 'failover-out')
  rmSync(output, { recursive: true, force: true })
  const started = performance.now()
  const child = spawn(process.execPath, [CLI, 'submit', 'wc', '--input', input, '--reduces', '2', '--output', output, '--bootstrap', c.nodes[via].addr, '--shared', '-q'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  await during?.(() => performance.now() - started)
  const code = await exited
  if (code !== 0) throw new Error(`submit failed: ${stderr}`)
  rmSync(output, { recursive: true, force: true })
  return (performance.now() - started) / 1000
}

export async function runFailoverBench (): Promise<Record<string, number>> {
  const input = await corpus(256 * 2 ** 20)
  const mb = statSync(input).size / 1e6
  const calm: number[] = []
  const killed: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const c = await startCluster({ nodes: NODES, env: ELECTION_ENV })
    try {
      const coordinator = await formed(c)
      const via = (coordinator + 1) % NODES
      const base = await timedSubmit(c, input, via)
      calm.push(base)
      killed.push(await timedSubmit(c, input, via, async (elapsed) => {
        await waitFor(() => elapsed() >= KILL_AT * base * 1000, { timeoutMs: 600_000, intervalMs: 10, description: 'the kill instant' })
        await c.kill(coordinator)
      }))
    } finally {
      await c.stop()
    }
  }
  const calmS = median(calm)
  const killedS = median(killed)
  return { corpusMB: mb, nodes: NODES, leaseMs: Number(ELECTION_ENV.MRP2P_LEASE_MS), rounds: ROUNDS, undisturbedS: calmS, coordinatorKilledS: killedS, ratioKilledVsUndisturbed: killedS / calmS }
}
