import '../../src/util/polyfills.js'
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { JobRecordSchema, JobSummarySchema, type JobRecord, type JobSummary } from '../../src/protocol/history-messages.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { BOOKS, REFERENCE_CWD, REPO_ROOT, runCli, startCli } from '../support/run-cli.js'

/*
 * Job history kept by the whole mesh (issue #14): every node answers `jobs` and `job` for every job it has
 * heard of, after its coordinator is SIGKILLed and after every node restarts; `cancel` ends a running job
 * everywhere and leaves no output; a node's --history-jobs bound drops the oldest records. One 3-node mesh
 * for the whole file; the cases run in order and build on each other's jobs.
 */

const TIMING = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'timing.ts')
const CHATTY = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'chatty.ts')
const ENV = { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: process.env.MRP2P_LOG_LEVEL ?? 'warn' }
/** Node 2 keeps two records only. */
const BOUNDED = 2

let cluster: Cluster
let scratch: string

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'mrp2p-history-'))
  cluster = await startCluster({ nodes: 3, env: ENV, args: (i) => ['--slots', '2', ...(i === BOUNDED ? ['--history-jobs', '2'] : [])] })
  await waitForAgreement(cluster, [0, 1, 2], 30_000)
}, 60_000)

afterAll(async () => {
  await cluster?.stop()
})

async function cli (args: string[], via: number): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await runCli([...args, '--bootstrap', cluster.nodes[via].addr], { cwd: REFERENCE_CWD, env: { MRP2P_LOG_LEVEL: 'warn' }, timeoutMs: 30_000 })
}

async function jobsOf (via: number): Promise<JobSummary[]> {
  const r = await cli(['jobs', '--json', '--limit', '100'], via)
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return JobSummarySchema.array().parse(JSON.parse(r.stdout))
}

async function jobOf (id: string, via: number): Promise<JobRecord> {
  const r = await cli(['job', id, '--json'], via)
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return JobRecordSchema.parse(JSON.parse(r.stdout))
}

function idFrom (stdout: string): string {
  const m = /^job (\S+) submitted to \S+ \(epoch \d+\)$/m.exec(stdout)
  if (m === null) throw new Error(`no "job ID submitted" line in ${JSON.stringify(stdout)}`)
  return m[1]
}

function outputLines (dir: string): number {
  return readdirSync(dir).filter((f) => f.startsWith('part-')).reduce((n, f) => n + readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l !== '').length, 0)
}

let wcId = ''
let wcRecord: JobRecord

describe('job history', () => {
  it('lists a succeeded job on every node, with its tasks, attempts and counters', async () => {
    const out = join(scratch, 'wc')
    const r = await runCli(['submit', 'wc', '--input', BOOKS[0], BOOKS[1], '--reduces', '3', '--split-size', '200000', '--output', out, '--bootstrap', cluster.nodes[0].addr, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    // The id is the first thing said.
    expect(r.stdout.split('\n')[0]).toMatch(/^job wc-[0-9a-f]{12} submitted to /)
    wcId = idFrom(r.stdout)
    // Every member has the ended record (pushed at the end), each from its own history.
    for (const via of [0, 1, 2]) {
      const listed = await waitFor(async () => (await jobsOf(via)).find((j) => j.jobId === wcId && j.state === 'succeeded'), { timeoutMs: 10_000, description: `node ${via} to list ${wcId} as succeeded` })
      expect(listed.jobName).toBe('wc')
      expect(listed.progress.maps.done).toBe(listed.maps)
      expect(listed.progress.reduces).toEqual({ done: 3, total: 3 })
    }
    // A unique prefix works as the id.
    wcRecord = await jobOf(wcId.slice(0, 6), 1)
    expect(wcRecord.jobId).toBe(wcId)
    expect(wcRecord.tasks.filter((t) => t.kind === 'map').length).toBe(wcRecord.maps)
    expect(wcRecord.tasks.filter((t) => t.kind === 'reduce').map((t) => t.index)).toEqual([0, 1, 2])
    for (const t of wcRecord.tasks) {
      expect(t.attempts.filter((a) => a.outcome === 'succeeded').length, `${t.kind}-${t.index}`).toBeGreaterThanOrEqual(1)
      for (const a of t.attempts) expect(cluster.nodes.map((n) => n.peerId)).toContain(a.node)
    }
    expect(wcRecord.inputs.count).toBe(2)
    expect(wcRecord.counters.mapBytesIn).toBe(wcRecord.inputs.bytes)
    expect(wcRecord.counters.reduceRecordsOut).toBe(outputLines(out))
    expect(wcRecord.counters.mapRecordsIn).toBeGreaterThan(1000)
    expect(wcRecord.counters.reduceRecordsIn).toBeGreaterThanOrEqual(wcRecord.counters.reduceRecordsOut)
    expect(wcRecord.endedAt ?? 0).toBeGreaterThanOrEqual(wcRecord.submittedAt)
    // The text forms say the same.
    const text = await cli(['job', wcId], 2)
    expect(text.stdout).toMatch(/^state +succeeded$/m)
    expect(text.stdout).toMatch(/^map-0 +\d+\.\d+ succeeded on /m)
    const list = await cli(['jobs'], 2)
    expect(list.stdout).toMatch(new RegExp(`^${wcId} +wc +succeeded `, 'm'))
  }, 180_000)

  it('refuses an unknown id, a malformed one and a bad --state with one line each', async () => {
    const unknown = await cli(['job', 'nosuchjob'], 0)
    expect(unknown).toMatchObject({ code: 1, stderr: 'mrp2p: no job nosuchjob in this mesh\n', stdout: '' })
    const malformed = await cli(['job', '../etc'], 0)
    expect(malformed.code).toBe(1)
    expect(malformed.stderr).toMatch(/^mrp2p: no job "..\/etc" in this mesh \(a job id is [^\n]+\)\n$/)
    const state = await cli(['jobs', '--state', 'done'], 0)
    expect(state).toMatchObject({ code: 2, stderr: 'mrp2p: --state must be one of running, succeeded, failed, cancelled, got "done"\n' })
    const ended = await cli(['cancel', wcId], 0)
    expect(ended).toMatchObject({ code: 0, stdout: `job ${wcId} already succeeded; nothing changed\n` })
  }, 60_000)

  it('cancels a running job everywhere: the submitter exits non-zero, no output, no intermediate files', async () => {
    const out = join(scratch, 'cancelled')
    const log = mkdtempSync(join(scratch, 'timing-log-'))
    const submit = startCli(['submit', TIMING, '--input', ...BOOKS, '--reduces', '2', '--split-size', '150000', '--param', 'ms=1500', '--param', `log=${log}`, '--output', out, '--bootstrap', cluster.nodes[1].addr, '-q'], { cwd: REFERENCE_CWD, env: { MRP2P_LOG_LEVEL: 'warn' }, timeoutMs: 240_000 })
    const running = await waitFor(async () => (await jobsOf(2)).find((j) => j.jobName === 'timing' && j.state === 'running' && j.progress.maps.done >= 1), { timeoutMs: 60_000, intervalMs: 250, description: 'the timing job to run with a map done' })
    const cancel = await cli(['cancel', running.jobId.slice(0, 10)], 2)
    expect(cancel).toMatchObject({ code: 0, stdout: `job ${running.jobId} cancelled\n`, stderr: '' })
    const res = await submit.result
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(new RegExp(`^mrp2p: job ${running.jobId} cancelled \\(cancelled by \\S+\\); nothing was written to the output\\n$`))
    expect(existsSync(out)).toBe(false)
    const record = await waitFor(async () => { const r = await jobOf(running.jobId, 0); return r.state === 'cancelled' ? r : undefined }, { timeoutMs: 10_000, description: 'node 0 to hold the cancelled record' })
    expect(record.failure?.message).toMatch(/^cancelled by /)
    expect(record.tasks.flatMap((t) => t.attempts).some((a) => a.outcome === 'running')).toBe(false)
    expect(record.progress.reduces.done).toBeLessThan(record.reduces)
    // Every node drops the job's intermediate files and runs none of its tasks.
    await waitFor(async () => {
      const samples = await cluster.sample()
      return samples.size === 3 && [...samples.values()].every((i) => !(i.tasks?.jobs ?? []).includes(running.jobId) && (i.tasks?.running ?? 0) === 0)
    }, { timeoutMs: 15_000, intervalMs: 250, description: 'no node to hold anything of the cancelled job' })
    // Cancelling it again changes nothing.
    const again = await cli(['cancel', running.jobId], 0)
    expect(again.stdout).toBe(`job ${running.jobId} already cancelled; nothing changed\n`)
  }, 240_000)

  it('shows what the job\'s code printed, per attempt and node; --task filters, --follow streams until the end', async () => {
    const early = await cli(['logs', 'chatty', '--follow'], 0)
    expect(early).toMatchObject({ code: 1, stderr: 'mrp2p: no job chatty in this mesh\n' })
    const submit = startCli(['submit', CHATTY, '--input', BOOKS[0], BOOKS[1], '--split-size', '300000', '--reduces', '2', '--param', 'ms=1500', '--output', join(scratch, 'chatty'), '--bootstrap', cluster.nodes[0].addr, '-q'], { cwd: REFERENCE_CWD, env: { MRP2P_LOG_LEVEL: 'warn' }, timeoutMs: 120_000 })
    const running = await waitFor(async () => (await jobsOf(1)).find((j) => j.jobName === 'chatty' && j.state === 'running'), { timeoutMs: 30_000, intervalMs: 200, description: 'the chatty job to run' })
    // Started while the job runs; ends by itself when the job does.
    const followed = await runCli(['logs', running.jobId, '--follow', '--bootstrap', cluster.nodes[1].addr], { cwd: REFERENCE_CWD, env: { MRP2P_LOG_LEVEL: 'warn' }, timeoutMs: 120_000 })
    const done = await submit.result
    expect(done.code).toBe(0)
    expect(followed.stderr).toBe('')
    expect(followed.code).toBe(0)
    const record = await jobOf(running.jobId, 2)
    expect(record.state).toBe('succeeded')
    const peerOf = (kind: string, index: number): string => record.tasks.find((t) => t.kind === kind && t.index === index)?.attempts.find((a) => a.outcome === 'succeeded')?.node ?? '?'
    for (let i = 0; i < record.maps; i++) {
      const task = JSON.stringify(record.tasks.find((t) => t.kind === 'map' && t.index === i))
      expect(followed.stdout, `map-${i}: ${task}`).toMatch(new RegExp(`^\\[map-${i} \\d+\\.\\d+ …${peerOf('map', i).slice(-6)}\\] marker map ${i} of \\.\\./pg-`, 'm'))
      expect(followed.stdout).toMatch(new RegExp(`^\\[map-${i} \\d+\\.\\d+ …\\w{6}\\] to stderr from map ${i}$`, 'm'))
    }
    // The sample hook ran on the submitter: its line comes first, from the submitter.
    expect(followed.stdout.split('\n')[0]).toMatch(new RegExp(`^\\[sample submitter …${record.submitter.slice(-6)}\\] marker sample of \\d+ lines$`))
    // The one key (lines) goes to one partition: only that reduce calls the job's reduce, and prints.
    const reduceLine = /^\[reduce-(\d) \d+\.\d+ …(\w{6})\] marker reduce (\d) key lines$/m.exec(followed.stdout)
    expect(reduceLine?.[1]).toBe(reduceLine?.[3])
    expect(reduceLine?.[2]).toBe(peerOf('reduce', Number(reduceLine?.[1])).slice(-6))
    // After the end, from another node, and for one task only.
    const one = await cli(['logs', running.jobId, '--task', 'map-1'], 2)
    expect(one.code).toBe(0)
    expect(one.stdout.trim().split('\n').every((l) => l.startsWith('[map-1 '))).toBe(true)
    expect(one.stdout).toMatch(/\] marker map 1 of /)
    // A failed job: submit points at `job`, and `job` shows the failing attempt's last lines.
    const failing = await runCli(['submit', CHATTY, '--input', BOOKS[0], '--param', 'fail=1', '--max-attempts', '2', '--output', join(scratch, 'chatty-fails'), '--bootstrap', cluster.nodes[0].addr, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
    expect(failing.code).toBe(1)
    const failedId = idFrom(failing.stdout)
    expect(failing.stderr).toContain(`(mrp2p job ${failedId} shows its tasks)`)
    const shown = await waitFor(async () => { const r = await cli(['job', failedId], 1); return /^state +failed$/m.test(r.stdout) ? r.stdout : undefined }, { timeoutMs: 10_000, description: 'the failed record' })
    const failed = /^failure +map (\d+): .*chatty map (\d+) fails as asked/m.exec(shown)
    expect(failed?.[1]).toBe(failed?.[2])
    const m = failed?.[1] ?? '?'
    expect(shown).toMatch(new RegExp(`^log of map-${m} attempt \\d+\\.2 on …\\w{6} \\(last 3 lines\\):\\n {2}marker map ${m} of \\.\\./pg-\\S+\\n {2}to stderr from map ${m}\\n {2}about to fail on map ${m}\\n`, 'm'))
    const bad = await cli(['logs', running.jobId, '--task', 'map1'], 2)
    expect(bad).toMatchObject({ code: 2, stderr: 'mrp2p: --task must name one task as map-N or reduce-N, got "map1"\n' })
  }, 180_000)

  it('drops the oldest records past a node\'s --history-jobs', async () => {
    const r = await runCli(['submit', 'wc', '--input', BOOKS[2], '--output', join(scratch, 'wc-2'), '--bootstrap', cluster.nodes[0].addr, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
    expect(r.code).toBe(0)
    const newest = idFrom(r.stdout)
    await waitFor(async () => (await jobsOf(0)).some((j) => j.jobId === newest && j.state === 'succeeded'), { timeoutMs: 10_000, description: 'the third job to be recorded' })
    const all = await jobsOf(0)
    expect(all.map((j) => j.jobName)).toEqual(['wc', 'chatty', 'chatty', 'timing', 'wc'])
    // Node 2 keeps the two newest; the first job is gone from it, and it says so as for any unknown job.
    const bounded = await waitFor(async () => { const j = await jobsOf(BOUNDED); return j.some((x) => x.jobId === newest) ? j : undefined }, { timeoutMs: 10_000, description: `node ${BOUNDED} to hold the newest job` })
    expect(bounded.map((j) => j.jobId)).toEqual(all.slice(0, 2).map((j) => j.jobId))
    const gone = await cli(['job', wcId], BOUNDED)
    expect(gone).toMatchObject({ code: 1, stderr: `mrp2p: no job ${wcId} in this mesh\n` })
  }, 180_000)

  it('a node that was down while a job ran fetches its record from the others when it comes back', async () => {
    const { coordinator } = await waitForAgreement(cluster, [0, 1, 2], 20_000)
    const away = [0, 1].find((i) => i !== coordinator) ?? 0
    const via = [0, 1, 2].find((i) => i !== away && i !== BOUNDED) ?? coordinator
    await cluster.kill(away)
    const r = await runCli(['submit', 'wc', '--input', BOOKS[3], '--output', join(scratch, 'wc-away'), '--bootstrap', cluster.nodes[via].addr, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
    expect(r.code).toBe(0)
    const missed = idFrom(r.stdout)
    await cluster.restart(away)
    const caught = await waitFor(async () => (await jobsOf(away)).find((j) => j.jobId === missed), { timeoutMs: 20_000, intervalMs: 250, description: `node ${away} to fetch the record of ${missed}` })
    expect(caught.state).toBe('succeeded')
    expect(await jobOf(missed, away)).toEqual(await jobOf(missed, via))
  }, 180_000)

  it('ends as lost a job whose submitter died with its coordinator, instead of showing it running for ever', async () => {
    const { coordinator } = await waitForAgreement(cluster, [0, 1, 2], 20_000)
    const via = [0, 1].find((i) => i !== coordinator) ?? 0
    const log = mkdtempSync(join(scratch, 'orphan-log-'))
    const submit = startCli(['submit', TIMING, '--input', ...BOOKS, '--reduces', '2', '--split-size', '150000', '--param', 'ms=2000', '--param', `log=${log}`, '--output', join(scratch, 'orphan'), '--bootstrap', cluster.nodes[via].addr, '-q'], { cwd: REFERENCE_CWD, env: { MRP2P_LOG_LEVEL: 'warn' }, timeoutMs: 240_000 })
    const running = await waitFor(async () => (await jobsOf(via)).find((j) => j.jobName === 'timing' && j.state === 'running' && j.progress.running > 0), { timeoutMs: 60_000, intervalMs: 250, description: 'the job to run' })
    submit.kill('SIGKILL')
    await cluster.kill(coordinator)
    await submit.result
    const ended = await waitFor(async () => (await jobsOf(via)).find((j) => j.jobId === running.jobId && j.state !== 'running'), { timeoutMs: 90_000, intervalMs: 500, description: 'the orphaned job to be ended' })
    expect(ended.state).toBe('failed')
    const record = await jobOf(running.jobId, via)
    expect(record.failure?.message).toMatch(/^the job was lost/)
    expect(record.tasks.flatMap((t) => t.attempts).some((a) => a.outcome === 'running')).toBe(false)
    await cluster.restart(coordinator)
    await waitForAgreement(cluster, [0, 1, 2], 30_000)
  }, 240_000)

  it('still answers for every job after the coordinator is SIGKILLed, and after every node restarts', async () => {
    const before = await jobsOf(0)
    const { coordinator: leader } = await waitForAgreement(cluster, [0, 1, 2], 20_000)
    await cluster.kill(leader)
    const others = [0, 1, 2].filter((i) => i !== leader && i !== BOUNDED)
    for (const via of others) {
      expect((await jobsOf(via)).map((j) => j.jobId)).toEqual(before.map((j) => j.jobId))
      expect(await jobOf(wcId, via)).toEqual(wcRecord)
    }
    // Every node down at once, then up again: each answers from its own disk, and catches up from the others.
    for (const i of cluster.running()) await cluster.kill(i)
    for (const i of [0, 1, 2]) await cluster.restart(i)
    await waitForAgreement(cluster, [0, 1, 2], 30_000)
    for (const via of [0, 1]) {
      expect((await jobsOf(via)).map((j) => j.jobId)).toEqual(before.map((j) => j.jobId))
      expect(await jobOf(wcId, via)).toEqual(wcRecord)
    }
    expect((await jobsOf(BOUNDED)).map((j) => j.jobId)).toEqual(before.slice(0, 2).map((j) => j.jobId))
  }, 180_000)
})
