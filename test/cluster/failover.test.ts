import '../../src/util/polyfills.js'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import type { z } from 'zod'
import { DoJobResponse, JOB_PROTOCOLS, type DoJobRequest } from '../../src/protocol/job-messages.js'
import { request } from '../../src/protocol/reqresp.js'
import { TEST_ELECTION_ENV, waitForAgreement, watchSafety, type Agreement } from '../support/cluster-views.js'
import { Prng } from '../support/prng.js'
import { BOOKS, REFERENCE_CWD, REPO_ROOT, runCli, startCli, type CliResult, type RunningCli } from '../support/run-cli.js'
import { UNCHECKED_SEAL } from '../support/sealed-job.js'

/*
 * The job survives its coordinator (issue #5). Every case runs the timing
 * fixture (each map and reduce call works `ms` and logs `pid start end task`)
 * on the eight books through real node processes, and compares each part file
 * byte for byte with a sequential run of the same job.
 */

const TIMING = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'timing.ts')
const REDUCES = 3
const JOB_ARGS = ['--input', ...BOOKS, '--reduces', String(REDUCES), '--split-size', '150000', '--param', 'ms=500']
/** One slot per node: the job lasts long enough for several failovers, and the CPU stays free for the nodes. */
const NODE_ARGS = (): string[] => ['--slots', '1']
const ENV = { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: process.env.MRP2P_LOG_LEVEL ?? 'warn' }
const SEED = Number(process.env.MRP2P_FAILOVER_SEED ?? 20261125)
/** MRP2P_KEEP_CLUSTER=1 keeps the nodes' data dirs and logs for a post-mortem. */
const KEEP = process.env.MRP2P_KEEP_CLUSTER === '1'

interface LogLine { pid: number, start: number, end: number, task: number }

function readLog (dir: string, kind: 'map' | 'reduce'): LogLine[] {
  let text: string
  try {
    text = readFileSync(join(dir, `${kind}.log`), 'utf8')
  } catch {
    return []
  }
  return text.split('\n').filter((l) => l !== '').map((l) => {
    const [pid, start, end, task] = l.split(' ').map(Number)
    return { pid, start, end, task }
  })
}

const distinctTasks = (lines: LogLine[]): number => new Set(lines.map((l) => l.task)).size

let scratch: string
let reference: string
let splits: number

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'mrp2p-failover-'))
  reference = join(scratch, 'reference')
  const seqLog = join(scratch, 'seq-log')
  mkdirSync(seqLog)
  const res = await runCli(['run', TIMING, ...JOB_ARGS, '--param', 'ms=0', '--param', `log=${seqLog}`, '--output', reference, '-q'], { cwd: REFERENCE_CWD })
  expect(res.stderr).toBe('')
  expect(res.code).toBe(0)
  splits = readLog(seqLog, 'map').length
  expect(splits).toBeGreaterThan(15)
}, 60_000)

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

let runSeq = 0
interface Submitted { cli: RunningCli, log: string, out: string }

function submit (c: Cluster, via: number, extra: string[] = []): Submitted {
  const dir = join(scratch, `job-${runSeq++}`)
  const log = join(dir, 'log')
  mkdirSync(log, { recursive: true })
  const out = join(dir, 'out')
  const cli = startCli(['submit', TIMING, ...JOB_ARGS, ...extra, '--param', `log=${log}`, '--output', out, '--bootstrap', c.nodes[via].addr, '--timeout', '90'], { cwd: REFERENCE_CWD, timeoutMs: 240_000 })
  return { cli, log, out }
}

async function mapsDone (job: Submitted, n: number, timeoutMs = 90_000): Promise<void> {
  await waitFor(() => distinctTasks(readLog(job.log, 'map')) >= n, { timeoutMs, intervalMs: 25, description: `${n} maps done` })
}

/** The job's output equals the sequential run's, part by part, byte for byte. */
function expectReferenceOutput (res: CliResult, out: string): void {
  if (res.code !== 0) throw new Error(`submit exited ${res.code}: ${res.stderr.slice(-2000)}`)
  expect(readdirSync(out).sort()).toEqual(['_SUCCESS', ...Array.from({ length: REDUCES }, (_, r) => `part-${String(r).padStart(5, '0')}`)])
  for (let r = 0; r < REDUCES; r++) {
    const name = `part-${String(r).padStart(5, '0')}`
    expect(readFileSync(join(out, name)).equals(readFileSync(join(reference, name))), name).toBe(true)
  }
}

/**
 * Map tasks that finished before `at` on a node other than `dead`, and every later run of them: an attempt that
 * started after the task's first finish on a live node ran it again. (A backup attempt launched while the first
 * was still running is speculation, not a re-run; it is listed but not counted.)
 */
function rerunsOfFinishedMaps (log: string, at: number, dead: Set<number>): { finished: number, reruns: number, detail: string[] } {
  const lines = readLog(log, 'map')
  const firstFinish = new Map<number, LogLine>()
  for (const l of lines) {
    if (l.end >= at || dead.has(l.pid)) continue
    const seen = firstFinish.get(l.task)
    if (seen === undefined || l.end < seen.end) firstFinish.set(l.task, l)
  }
  let reruns = 0
  const detail: string[] = []
  for (const [task, first] of firstFinish) {
    for (const l of lines) {
      if (l === first || l.task !== task) continue
      const rerun = l.start >= first.end
      if (rerun) reruns++
      detail.push(`map ${task}: finished on pid ${first.pid} ${at - first.end} ms before the kill; ${rerun ? 'ran again' : 'a concurrent attempt'} on pid ${l.pid}, started ${l.start - at} ms after the kill`)
    }
  }
  return { finished: firstFinish.size, reruns, detail }
}

async function newCoordinator (c: Cluster, indices: number[], after: Agreement): Promise<Agreement> {
  return await waitFor(async () => {
    const a = await waitForAgreement(c, indices, 30_000)
    return a.epoch > after.epoch ? a : undefined
  }, { timeoutMs: 40_000, intervalMs: 100, description: 'a new coordinator with a higher epoch' })
}

function pidOf (c: Cluster, i: number): number {
  const pid = c.nodes[i].process.pid
  if (pid === undefined) throw new Error(`node ${i} has no process`)
  return pid
}

describe('the job survives its coordinator', () => {
  it('coordinator SIGKILL at 10 random instants over the map and reduce phases: 10/10 correct, finished maps on live nodes never run again', async () => {
    const prng = new Prng(SEED)
    const c = cluster = await startCluster({ nodes: 4, env: ENV, args: NODE_ARGS, keep: KEEP })
    const rounds: string[] = []
    let totalFinished = 0
    let totalReruns = 0
    for (let round = 0; round < 10; round++) {
      const before = await waitForAgreement(c, [0, 1, 2, 3], 30_000)
      const job = submit(c, (before.coordinator + 1) % 4)
      // Seven instants spread over the map phase (by maps done), three over the reduce phase (a random delay after the last map).
      let instant: string
      if (round < 7) {
        const k = 1 + Math.floor(((round + prng.next()) / 7) * (splits - 2))
        await mapsDone(job, k)
        instant = `after ${k}/${splits} maps`
      } else {
        await mapsDone(job, splits)
        const delay = prng.int(0, 700)
        await new Promise((resolve) => setTimeout(resolve, delay))
        instant = `${delay} ms into the reduce phase`
      }
      const dead = new Set([pidOf(c, before.coordinator)])
      const killedAt = Date.now()
      await c.kill(before.coordinator)
      const res = await job.cli.result
      expectReferenceOutput(res, job.out)
      // Killed during the reduce phase, the job may end before `submit` notices: the running reduces commit to it directly.
      if (round < 7) expect(res.stderr).toMatch(/coordinator changed/)
      const { finished, reruns, detail } = rerunsOfFinishedMaps(job.log, killedAt, dead)
      rounds.push(`round ${round}: kill ${instant}; ${finished} maps finished before, ${reruns} ran again`, ...detail.map((d) => `  ${d}`))
      totalFinished += finished
      totalReruns += reruns
      await c.restart(before.coordinator)
    }
    console.info(rounds.join('\n'))
    expect(totalFinished).toBeGreaterThan(50)
    expect(totalReruns, rounds.join('\n')).toBe(0)
  }, 600_000)

  it('coordinator SIGSTOP past its lease, then SIGCONT, mid-job: correct output, never two acting, and its epoch is refused by every worker', async () => {
    const c = cluster = await startCluster({ nodes: 4, env: ENV, args: NODE_ARGS, keep: KEEP })
    const before = await waitForAgreement(c, [0, 1, 2, 3], 30_000)
    const others = [0, 1, 2, 3].filter((i) => i !== before.coordinator)
    const watch = watchSafety(c)
    const job = submit(c, others[0])
    await mapsDone(job, 4)
    c.freeze(before.coordinator)
    const after = await newCoordinator(c, others, before)
    const progressed = distinctTasks(readLog(job.log, 'map'))
    await mapsDone(job, Math.min(splits, progressed + 2))
    c.thaw(before.coordinator)
    // The woken node sees by its own clock that its lease is over.
    await waitFor(async () => {
      const info = await c.info(before.coordinator)
      return info !== undefined && !info.isCoordinator
    }, { timeoutMs: 20_000, description: 'the thawed coordinator to step down' })

    // Whatever it still had in flight is refused; so is any order of its epoch sent now, to every worker.
    const refusalsBefore = await totalRefusals(c, others)
    for (const i of others) {
      const answer = await staleOrder(c, i, before.epoch)
      expect(answer.accepted, `node ${i}`).toBe(false)
      expect(answer.reason).toMatch(/stale epoch/)
    }
    expect(await totalRefusals(c, others)).toBe(refusalsBefore + others.length)

    expectReferenceOutput(await job.cli.result, job.out)
    // And, once gossip reaches it again, follows the new epoch.
    await waitFor(async () => ((await c.info(before.coordinator))?.highestEpoch ?? 0) >= after.epoch, { timeoutMs: 60_000, description: 'the thawed node to learn the new epoch' })
    const report = await watch.stop()
    expect(report.violations).toEqual([])
    expect(report.samples).toBeGreaterThan(10)
  }, 180_000)

  it('coordinator killed three times in one job: correct output', async () => {
    const c = cluster = await startCluster({ nodes: 5, env: ENV, args: NODE_ARGS, keep: KEEP })
    let lead = await waitForAgreement(c, [0, 1, 2, 3, 4], 30_000)
    const via = (lead.coordinator + 1) % 5
    // Maps of 1.5 s: reduces that pull while maps run end a job soon after its last map, and a third kill
    // near that end would come after the submitter is done; this keeps all three inside the map phase.
    const job = submit(c, via, ['--param', 'ms=1500'])
    let done = 2
    for (let kill = 0; kill < 3; kill++) {
      await mapsDone(job, done)
      const victim = lead.coordinator
      await c.kill(victim)
      lead = await newCoordinator(c, [0, 1, 2, 3, 4].filter((i) => i !== victim), lead)
      await c.restart(victim)
      done = Math.min(splits - 1, distinctTasks(readLog(job.log, 'map')) + 3)
    }
    const res = await job.cli.result
    expectReferenceOutput(res, job.out)
    expect(res.stderr.match(/coordinator changed/g)?.length, res.stderr).toBeGreaterThanOrEqual(3)
  }, 240_000)

  it('coordinator and a worker killed together: correct output', async () => {
    const c = cluster = await startCluster({ nodes: 5, env: ENV, args: NODE_ARGS, keep: KEEP })
    const before = await waitForAgreement(c, [0, 1, 2, 3, 4], 30_000)
    const via = (before.coordinator + 1) % 5
    const worker = (before.coordinator + 2) % 5
    const job = submit(c, via)
    await mapsDone(job, 5)
    await Promise.all([c.kill(before.coordinator), c.kill(worker)])
    const res = await job.cli.result
    expectReferenceOutput(res, job.out)
    expect(res.stderr).toMatch(/coordinator changed/)
  }, 180_000)

  it('partition mid-job with the submitter on the minority side, then heal: correct output, and the majority side drops the job', async () => {
    const c = cluster = await startCluster({ nodes: 5, env: ENV, args: NODE_ARGS, keep: KEEP })
    const before = await waitForAgreement(c, [0, 1, 2, 3, 4], 30_000)
    const rest = [0, 1, 2, 3, 4].filter((i) => i !== before.coordinator)
    const minority = rest.slice(0, 2)
    const majority = [before.coordinator, ...rest.slice(2)]
    const job = submit(c, minority[0])
    await mapsDone(job, 3)
    const submitter = await submitterPeer(c, job)
    await c.partition(minority, majority, { outsiders: { a: [submitter] }, timeoutMs: 30_000 })
    // The majority keeps its coordinator, which hears nothing more from the submitter and gives the job up; the
    // minority side, once it counts the others dead, elects its own coordinator (one per connected component,
    // docs/election.md) and the submitter carries on there.
    await waitFor(() => /submitter gone; aborting its job/.test(c.nodes[before.coordinator].process.stderr), { timeoutMs: 30_000, description: 'the majority coordinator to give the job up' })
    await c.heal({ timeoutMs: 30_000 })
    const res = await job.cli.result
    expectReferenceOutput(res, job.out)
    expect(res.stderr).toMatch(/coordinator changed/)
  }, 180_000)

  it('submitter cut off from every node past the submitter timeout, then back: the job given up is taken up again, correct output', async () => {
    const c = cluster = await startCluster({ nodes: 4, env: ENV, args: NODE_ARGS, keep: KEEP })
    const before = await waitForAgreement(c, [0, 1, 2, 3], 30_000)
    const job = submit(c, (before.coordinator + 1) % 4)
    await mapsDone(job, 3)
    const submitter = await submitterPeer(c, job)
    await c.partition([], [0, 1, 2, 3], { outsiders: { a: [submitter] }, timeoutMs: 30_000 })
    await waitFor(() => /submitter gone; aborting its job/.test(c.nodes[before.coordinator].process.stderr), { timeoutMs: 30_000, description: 'the coordinator to give the job up' })
    await c.heal({ timeoutMs: 30_000 })
    const res = await job.cli.result
    expectReferenceOutput(res, job.out)
    expect(c.nodes[before.coordinator].process.stderr).toMatch(/submitter back; restarting its job/)
  }, 180_000)

  it('partition mid-job with the submitter on the majority side and the coordinator cut off, then heal: correct output', async () => {
    const c = cluster = await startCluster({ nodes: 5, env: ENV, args: NODE_ARGS, keep: KEEP })
    const before = await waitForAgreement(c, [0, 1, 2, 3, 4], 30_000)
    const rest = [0, 1, 2, 3, 4].filter((i) => i !== before.coordinator)
    const minority = [before.coordinator, rest[0]]
    const majority = rest.slice(1)
    const job = submit(c, majority[0])
    await mapsDone(job, 3)
    const submitter = await submitterPeer(c, job)
    await c.partition(minority, majority, { outsiders: { b: [submitter] }, timeoutMs: 30_000 })
    await newCoordinator(c, majority, before)
    const progressed = distinctTasks(readLog(job.log, 'map'))
    await mapsDone(job, Math.min(splits, progressed + 2))
    await c.heal({ timeoutMs: 30_000 })
    const res = await job.cli.result
    expectReferenceOutput(res, job.out)
    expect(res.stderr).toMatch(/coordinator changed/)
  }, 180_000)

  it('submitter SIGKILL mid-job: within the detection bound no node keeps a file, task or stream of the job', async () => {
    const c = cluster = await startCluster({ nodes: 4, env: ENV, args: NODE_ARGS, keep: KEEP })
    const before = await waitForAgreement(c, [0, 1, 2, 3], 30_000)
    const job = submit(c, (before.coordinator + 1) % 4)
    await mapsDone(job, 3)
    const held = await waitFor(async () => {
      const infos = await c.sample()
      const jobs = [...infos.values()].flatMap((i) => i.tasks?.jobs ?? [])
      return jobs.length > 0 ? jobs[0] : undefined
    }, { timeoutMs: 20_000, description: 'a node to hold files of the job' })
    job.cli.kill('SIGKILL')
    await job.cli.result
    const killedAt = performance.now()
    // The bound: the coordinator's submitter timeout (6 s) plus a tick and the end order's delivery.
    await waitFor(async () => {
      const infos = await c.sample()
      if (infos.size !== 4) return false
      for (const [i, info] of infos) {
        if (info.tasks === undefined || info.tasks.running > 0 || info.tasks.jobs.length > 0) return false
        if (Object.keys(info.streams ?? {}).some((p) => p.startsWith('/mrp2p/job/'))) return false
        if (readdirSync(join(c.nodes[i].dataDir, 'intermediate')).length > 0) return false
      }
      return true
    }, { timeoutMs: 12_000, intervalMs: 100, description: `every node to drop job ${held}` })
    console.info(`submitter SIGKILL: job ${held} gone from every node ${Math.round(performance.now() - killedAt)} ms later`)
    expect(c.nodes[before.coordinator].process.stderr).toMatch(/submitter gone; aborting its job/)
  }, 120_000)
})

async function totalRefusals (c: Cluster, indices: number[]): Promise<number> {
  const infos = await c.sample(indices)
  expect(infos.size).toBe(indices.length)
  return [...infos.values()].reduce((sum, i) => sum + (i.tasks?.staleEpochRefusals ?? 0), 0)
}

/** A well-formed DoJob of `epoch`, sent from the test's own client straight to node i. */
async function staleOrder (c: Cluster, i: number, epoch: number): Promise<z.output<typeof DoJobResponse>> {
  const order: z.input<typeof DoJobRequest> = {
    epoch,
    job: { jobId: 'stale-order', jobName: 'wc', codeHash: '0'.repeat(64), reduces: 1, params: {}, submitter: { peer: c.probe.peerId, addrs: [] }, seal: UNCHECKED_SEAL },
    task: { kind: 'map', jobId: 'stale-order', index: 0, attempt: 1, split: { document: 'x', index: 0, offset: 0, length: 1, firstLine: 1 } }
  }
  return await request(c.probe.client, multiaddr(c.nodes[i].addr), JOB_PROTOCOLS.doJob, order, DoJobResponse)
}

/** The submitter's PeerId: the one connection of node `via` that is neither a cluster node nor the probe. */
async function submitterPeer (c: Cluster, job: Submitted): Promise<string> {
  const known = new Set([...c.nodes.map((n) => n.peerId), c.probe.peerId])
  return await waitFor(async () => {
    for (const info of (await c.sample()).values()) {
      const stranger = info.connections.find((p) => !known.has(p))
      if (stranger !== undefined) return stranger
    }
    return undefined
  }, { timeoutMs: 10_000, description: `the submitter of ${job.out} to show in a node's connections` })
}
