import { spawnSync } from 'node:child_process'
import { rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startCluster, type Cluster } from '../src/harness/cluster.js'
import { generateSwarmKey } from '../src/node/private-network.js'
import { waitFor } from '../src/harness/wait-for.js'
import { BENCH_DIR, corpus, REPO_ROOT } from './corpus.js'
import { median, timeCoreutils, timeEngine, timeMawk } from './engine-bench.js'

export const CLI = join(REPO_ROOT, 'bin', 'mrp2p.js')
const ROUNDS = 3
export const ELECTION_ENV = { MRP2P_LEASE_MS: '1500', MRP2P_HEARTBEAT_MS: '300', MRP2P_SUSPECT_AFTER_MS: '900', MRP2P_DEAD_AFTER_MS: '1800', MRP2P_LOG_LEVEL: 'warn' }

/** A local mesh with one coordinator, in which every node sees all the others (workers register within 0.5 s of that). */
/** `slots`: task slots per node (`join --slots`); default the node's own (the CPU count). */
/** `env`: more variables for every node (MRP2P_LOCAL_READS=0). */
export async function formedMesh (nodes: number, swarmKeyFile?: string, slots?: number, env: Record<string, string> = {}): Promise<Cluster> {
  const cluster = await startCluster({ nodes, env: { ...ELECTION_ENV, ...env }, swarmKeyFile, args: slots === undefined ? undefined : () => ['--slots', String(slots)] })
  try {
    await waitFor(async () => {
      const s = [...(await cluster.sample()).values()]
      return s.length === nodes && s.filter((i) => i.isCoordinator).length === 1 && s.every((i) => i.members.filter((m) => m.liveness === 'alive').length === nodes - 1)
    }, { timeoutMs: 60_000, intervalMs: 200, description: 'a formed mesh' })
  } catch (err) {
    await cluster.stop()
    throw err
  }
  return cluster
}

/**
 * The job's own time as the command reports it (submit to _SUCCESS, as the
 * engine's time for `run`): process start and bundling are the same for both
 * and not what is compared.
 */
export function jobSeconds (cmd: string, args: string[]): number {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  const m = / in ([\d.]+) s /.exec(r.stdout)
  if (r.status !== 0 || m === null) throw new Error(`${args.join(' ')} failed: ${r.stderr}`)
  return Number(m[1])
}

/**
 * `submit wc` over `input` through `cluster`, three jobs: the median of the job's own seconds (one job is a few
 * seconds, and one slow start of a task thread moves it by a tenth), and of the command's wall clock, exec to exit,
 * as a user waits for it (Node's start, loading, libp2p, the job, the commit). `extra`: more submit flags (`--shared`).
 */
export function medianWc (cluster: Cluster, input: string, output: string, extra: string[] = []): { jobSeconds: number, wallSeconds: number } {
  const job: number[] = []
  const wall: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    rmSync(output, { recursive: true, force: true })
    const t0 = performance.now()
    job.push(jobSeconds(process.execPath, [CLI, 'submit', 'wc', '--input', input, '--reduces', '2', '--output', output, '--bootstrap', cluster.nodes[0].addr, ...extra]))
    wall.push((performance.now() - t0) / 1000)
  }
  rmSync(output, { recursive: true, force: true })
  return { jobSeconds: median(job), wallSeconds: median(wall) }
}

/** The median job seconds of {@link medianWc}. */
export function medianWcSeconds (cluster: Cluster, input: string, output: string, extra: string[] = []): number {
  return medianWc(cluster, input, output, extra).jobSeconds
}

/** wc on ≥ 256 MiB through a local mesh of 1, 2 and 4 nodes (median of three jobs each), against `mrp2p run` and the shell pipelines, in one run. */
export async function runJobsBench (): Promise<Record<string, number>> {
  const input = await corpus(256 * 2 ** 20)
  const mb = statSync(input).size / 1e6
  const out: Record<string, number> = { corpusMB: mb }
  const runMBps = mb / timeEngine('wc', input).seconds
  out.runMBps = runMBps
  out.coreutilsMBps = mb / timeCoreutils(input)
  out.mawkMBps = mb / timeMawk(input)
  for (const nodes of [1, 2, 4]) {
    const cluster = await formedMesh(nodes)
    try {
      const output = join(BENCH_DIR, `jobs-out-${nodes}`)
      for (const shared of [false, true]) {
        const secs = medianWcSeconds(cluster, input, output, shared ? ['--shared'] : [])
        const key = `nodes${nodes}${shared ? 'Shared' : ''}`
        out[`${key}MBps`] = mb / secs
        out[`${key}VsRun`] = mb / secs / runMBps
      }
      if (nodes > 1) {
        // Reduces that pull while maps run (the default) against reduces that start after the last map, same mesh.
        const late = medianWcSeconds(cluster, input, output, ['--reduce-slow-start', '1'])
        out[`nodes${nodes}LateReducesMBps`] = mb / late
        out[`nodes${nodes}EarlyVsLateReduces`] = out[`nodes${nodes}MBps`] / (mb / late)
        // Every map output copied to a second node before its map counts as done, against one copy, same mesh.
        const copied = medianWcSeconds(cluster, input, output, ['--intermediate-replicas', '2'])
        out[`nodes${nodes}Replicas2MBps`] = mb / copied
        out[`nodes${nodes}Replicas2VsOne`] = (mb / copied) / out[`nodes${nodes}MBps`]
      }
    } finally {
      await cluster.stop()
    }
  }
  // A private mesh: every input byte, run and part crosses the swarm-key cipher (no --shared).
  const keyFile = join(BENCH_DIR, 'bench.key')
  writeFileSync(keyFile, generateSwarmKey(), { mode: 0o600 })
  const keyed = await formedMesh(2, keyFile)
  try {
    const output = join(BENCH_DIR, 'jobs-out-keyed')
    rmSync(output, { recursive: true, force: true })
    const secs = jobSeconds(process.execPath, [CLI, 'submit', 'wc', '--input', input, '--reduces', '2', '--output', output, '--bootstrap', keyed.nodes[0].addr, '--swarm-key', keyFile])
    rmSync(output, { recursive: true, force: true })
    out.nodes2KeyedMBps = mb / secs
    out.ratio2NodesKeyedVsUnkeyed = out.nodes2KeyedMBps / out.nodes2MBps
  } finally {
    await keyed.stop()
  }
  out.ratio2NodesSharedVsRun = out.nodes2SharedVsRun
  out.ratio2NodesSharedVsMawk = out.nodes2SharedMBps / out.mawkMBps
  out.ratio2NodesSharedVsCoreutils = out.nodes2SharedMBps / out.coreutilsMBps
  return out
}
