import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Cluster } from '../src/harness/cluster.js'
import { waitFor } from '../src/harness/wait-for.js'
import { DEFAULT_REPAIR_AFTER_MS } from '../src/dataset/departure-grace.js'
import { JobRecordSchema } from '../src/protocol/history-messages.js'
import { bareStreamMBps } from './bare-stream.js'
import { BENCH_DIR, corpus } from './corpus.js'
import { median, timeMawk } from './engine-bench.js'
import { CLI, ELECTION_ENV, formedMesh, medianWc } from './jobs-bench.js'

/** `mrp2p …` through the compiled CLI, to its end; its stdout. */
function mrp2p (cluster: Cluster, args: string[], via = 0): string {
  const r = spawnSync(process.execPath, [CLI, ...args, '--bootstrap', cluster.nodes[via].addr], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 })
  if (r.status !== 0) throw new Error(`mrp2p ${args.join(' ')} failed: ${r.stderr}`)
  return r.stdout
}

/** Block files in a node's store. */
function blockFiles (dataDir: string): number {
  const dir = join(dataDir, 'blocks')
  if (!existsSync(dir)) return 0
  return readdirSync(dir).filter((d) => d !== 'tmp').reduce((n, d) => n + readdirSync(join(dir, d)).length, 0)
}

interface Listed { name: string, underReplicated: number, missing: number }

async function coordinatorOf (cluster: Cluster): Promise<number> {
  return await waitFor(async () => {
    for (const [i, info] of await cluster.sample()) if (info.isCoordinator) return i
    return undefined
  }, { timeoutMs: 30_000, intervalMs: 100, description: 'a coordinator' })
}

/**
 * Datasets in the mesh (issue #15), each figure against its baseline in the same run, on the 1 GiB corpus:
 * - `put` with 2 replicas into 3 local nodes, per replica written (the median of three puts), against one bare
 *   libp2p stream (the median of three);
 * - how long the mesh takes to copy again what a dead holder held (from its SIGKILL: detection and the default
 *   `--repair-after` grace included, and each reported apart);
 * - wc over the dataset through 2 nodes against `tr | mawk` on the same bytes (the job's time, and `submit`'s wall clock);
 * - wc over the dataset through 3 nodes with a holder SIGKILLed a third of the way in, against the same job undisturbed.
 */
export async function runDatasetsBench (): Promise<Record<string, number>> {
  const input = await corpus(2 ** 30)
  const mb = statSync(input).size / 1e6
  const out: Record<string, number> = { corpusMB: mb }
  // This machine's speed drifts between minutes: the baseline is the median of three, as the puts are.
  out.bareStreamMBps = median([await bareStreamMBps(2 ** 30), await bareStreamMBps(2 ** 30), await bareStreamMBps(2 ** 30)])

  const three = await formedMesh(3)
  try {
    // Three puts of the same bytes into one mesh, each once the last is removed from every disk. The first into a
    // fresh mesh is reported apart too: it costs its nodes several CPU-seconds more than the next ones (docs/datasets.md).
    const puts: number[] = []
    for (let i = 0; i < 3; i++) {
      if (i > 0) {
        mrp2p(three, ['rm', 'bench'])
        await waitFor(() => three.nodes.every((n) => blockFiles(n.dataDir) === 0) ? true : undefined, { timeoutMs: 60_000, intervalMs: 100, description: 'the removed blocks deleted' })
      }
      const t0 = performance.now()
      const put = JSON.parse(mrp2p(three, ['put', input, '--name', 'bench', '--replicas', '2', '--json'])) as { sentBytes: number }
      puts.push((performance.now() - t0) / 1000)
      if (put.sentBytes !== 2 * statSync(input).size) throw new Error(`put ${i + 1} sent ${put.sentBytes} bytes, not two copies of the input`)
    }
    out.putFirstSeconds = puts[0]
    out.putFirstPerReplicaVsBareStream = 2 * mb / puts[0] / out.bareStreamMBps
    out.putSeconds = median(puts)
    out.putPerReplicaMBps = 2 * mb / out.putSeconds
    out.putPerReplicaVsBareStream = out.putPerReplicaMBps / out.bareStreamMBps

    // Undisturbed, then the same job with a holder killed a third of the way in.
    const outDir = join(BENCH_DIR, 'datasets-out')
    const steady = medianWc(three, 'mesh:bench', outDir).jobSeconds
    out.wc3NodesSeconds = steady
    const reference = join(BENCH_DIR, 'datasets-reference')
    rmSync(reference, { recursive: true, force: true })
    mrp2p(three, ['submit', 'wc', '--input', 'mesh:bench', '--reduces', '2', '--output', reference, '-q'])
    const coordinator = await coordinatorOf(three)
    const victim = [0, 1, 2].find((i) => i !== coordinator) as number
    rmSync(outDir, { recursive: true, force: true })
    const t0 = performance.now()
    // Not spawnSync: the timer that kills the holder must fire while the job runs.
    const child = spawn(process.execPath, [CLI, 'submit', 'wc', '--input', 'mesh:bench', '--reduces', '2', '--output', outDir, '--bootstrap', three.nodes[coordinator].addr], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    let killedAt = 0
    const killer = setTimeout(() => { killedAt = (performance.now() - t0) / 1000; three.nodes[victim].process.signal('SIGKILL') }, steady * 1000 / 3)
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    clearTimeout(killer)
    if (code !== 0) throw new Error(`wc with a holder killed failed: ${stderr}`)
    if (killedAt === 0) throw new Error('the job ended before the holder was killed')
    // The job's own seconds, as `steady` is (submit's line: `… MB in S s → …`).
    out.wc3NodesHolderKilledSeconds = Number(/ in ([\d.]+) s /.exec(stdout)?.[1] ?? NaN)
    out.holderKilledAtSeconds = killedAt
    out.holderKilledVsUndisturbed = out.wc3NodesHolderKilledSeconds / steady
    const id = /^job (\S+) submitted/m.exec(stdout)?.[1] ?? ''
    const record = JobRecordSchema.parse(JSON.parse(mrp2p(three, ['job', id, '--json'], coordinator)))
    out.holderKilledSubmitterBytes = record.counters.inputFetchedBytes
    const parts = (dir: string): Buffer[] => readdirSync(dir).filter((f) => f.startsWith('part-')).sort().map((f) => readFileSync(join(dir, f)))
    const got = parts(outDir)
    const want = parts(reference)
    out.holderKilledOutputExact = Number(got.length === want.length && got.every((b, i) => b.equals(want[i])))

    // The dead holder's blocks are copied again by the survivors: time from its death to every block at 2 copies.
    await three.restart(victim)
    const healthy = (): boolean => (JSON.parse(mrp2p(three, ['ls', '--json'], coordinator)) as Listed[]).every((d) => d.underReplicated === 0 && d.missing === 0)
    await waitFor(healthy, { timeoutMs: 120_000, intervalMs: 500, description: 'bench healthy after the restart' })
    const other = [0, 1, 2].find((i) => i !== coordinator && i !== victim) as number
    const d0 = performance.now()
    three.nodes[other].process.signal('SIGKILL')
    await three.nodes[other].process.waitExit()
    await waitFor(() => (JSON.parse(mrp2p(three, ['ls', '--json'], coordinator)) as Listed[]).every((d) => d.underReplicated === 0 && d.missing === 0) ? true : undefined, { timeoutMs: 300_000, intervalMs: 200, description: 'every block at 2 copies again' })
    out.reReplicateSeconds = (performance.now() - d0) / 1000
    // Of which the failure detector's share (a member is declared dead this long after its last heartbeat), then
    // the grace the survivors give it to come back (`join --repair-after`, default), then the copying itself.
    out.reReplicateDeadAfterSeconds = Number(ELECTION_ENV.MRP2P_DEAD_AFTER_MS) / 1000
    out.reReplicateGraceSeconds = DEFAULT_REPAIR_AFTER_MS / 1000
    out.reReplicateCopySeconds = out.reReplicateSeconds - out.reReplicateDeadAfterSeconds - out.reReplicateGraceSeconds
  } finally {
    await three.stop()
  }

  const two = await formedMesh(2)
  try {
    mrp2p(two, ['put', input, '--name', 'bench', '--replicas', '2'])
    const { jobSeconds, wallSeconds } = medianWc(two, 'mesh:bench', join(BENCH_DIR, 'datasets-out'))
    // This machine's speed drifts by a fifth between minutes: the baseline is three runs, right after the jobs'.
    out.mawkMBps = mb / median([timeMawk(input), timeMawk(input), timeMawk(input)])
    out.wc2NodesMBps = mb / jobSeconds
    out.wc2NodesVsMawk = out.wc2NodesMBps / out.mawkMBps
    out.wc2NodesWallMBps = mb / wallSeconds
    out.wc2NodesWallVsMawk = out.wc2NodesWallMBps / out.mawkMBps
  } finally {
    await two.stop()
  }
  return out
}
