import '../../src/util/polyfills.js'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { sortedOutput } from '../support/output.js'
import { BOOKS, REFERENCE_CWD, REPO_ROOT, runCli } from '../support/run-cli.js'

const TIMING = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'timing.ts')

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.stop()
  cluster = undefined
})

describe('the job survives its coordinator', () => {
  it('SIGKILL of the coordinator mid-map: the job finishes with the sequential output, and maps finished on live nodes do not run again', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-failover-'))
    const reference = join(scratch, 'reference')
    const seqLog = join(scratch, 'seq-log')
    mkdirSync(seqLog)
    const args = ['--input', ...BOOKS, '--reduces', '2', '--split-size', '150000', '--param', 'ms=600']
    expect((await runCli(['run', TIMING, ...args, '--param', `log=${seqLog}`, '--output', reference, '-q'], { cwd: REFERENCE_CWD })).code).toBe(0)

    const c = cluster = await startCluster({ nodes: 4, env: { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn' } })
    const before = await waitForAgreement(c, c.running(), 30_000)
    const via = (before.coordinator + 1) % 4
    const log = join(scratch, 'log')
    mkdirSync(log)
    const out = join(scratch, 'out')
    const submitting = runCli(['submit', TIMING, ...args, '--param', `log=${log}`, '--output', out, '--bootstrap', c.nodes[via].addr, '--timeout', '30'], { cwd: REFERENCE_CWD, timeoutMs: 180_000 })

    // Kill the coordinator once a few maps have finished, while others are still to run.
    await waitFor(() => {
      try {
        return readFileSync(join(log, 'map.log'), 'utf8').trim().split('\n').length >= 4
      } catch {
        return false
      }
    }, { timeoutMs: 60_000, intervalMs: 50, description: 'four maps done' })
    const killedAt = Date.now()
    await c.kill(before.coordinator)

    const res = await submitting
    expect(res.stderr).toMatch(/coordinator changed/)
    expect(res.code).toBe(0)
    expect(sortedOutput(out).equals(sortedOutput(reference))).toBe(true)

    // map.log lines: "pid start end split"
    const runs = readFileSync(join(log, 'map.log'), 'utf8').trim().split('\n').map((l) => l.split(' ').map(Number))
    const splits = readFileSync(join(seqLog, 'map.log'), 'utf8').trim().split('\n').length
    const finishedBefore = new Set(runs.filter(([, , end]) => end < killedAt).map(([, , , split]) => split))
    expect(finishedBefore.size).toBeGreaterThanOrEqual(4)
    const timesRun = (split: number): number => runs.filter((r) => r[3] === split).length
    // Every map ran; those finished on live nodes before the kill ran exactly once: the new coordinator reused them.
    for (let s = 0; s < splits; s++) expect(timesRun(s)).toBeGreaterThanOrEqual(1)
    for (const s of finishedBefore) expect(timesRun(s)).toBe(1)
  }, 240_000)
})
