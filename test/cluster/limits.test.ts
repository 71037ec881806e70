import '../../src/util/polyfills.js'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { BOOKS, REFERENCE_CWD, REPO_ROOT, runCli, startCli } from '../support/run-cli.js'

/**
 * Resource limits (issue #6, docs/security.md). Disk: each node's
 * intermediate store is a small tmpfs, too small for what the job writes; the
 * job must fail with a clear reason, leave no output that looks finished, and
 * leave every node running with its disk emptied (mounting needs root, as the
 * netns tests do). Jobs: a coordinator holds at most --max-jobs.
 */
const BLOAT = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'bloat.ts')
const TIMING = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'timing.ts')
const mounts: string[] = []
let cluster: Cluster | undefined

afterAll(async () => {
  // Stopped with keep: the folders cannot be removed while the small disks are mounted in them.
  await cluster?.stop()
  for (const m of mounts) execFileSync('umount', [m])
  if (cluster !== undefined) rmSync(cluster.rootDir, { recursive: true, force: true })
})

describe('limits', () => {
  it('filling a node\'s disk mid-job fails the job with the reason, writes no output, and the nodes live on with their disks emptied', async () => {
    const c = cluster = await startCluster({
      nodes: 3,
      keep: true,
      env: { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn' },
      args: () => ['--min-free-disk', '1'],
      prepareNode: ({ dataDir }) => {
        const store = join(dataDir, 'intermediate')
        mkdirSync(store, { recursive: true })
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', store])
        mounts.push(store)
      }
    })
    await waitForAgreement(c, [0, 1, 2], 30_000)
    const out = join(mkdtempSync(join(tmpdir(), 'mrp2p-diskfull-')), 'out')
    // Stored as is: compressed, bloat's padding shrinks some twentyfold and fits in the 8 MiB disks.
    const res = await runCli(['submit', BLOAT, '--input', ...BOOKS, '--split-size', '400000', '--reduces', '2', '--max-attempts', '2', '--no-compress', '--output', out, '--bootstrap', c.nodes[0].addr], { cwd: REFERENCE_CWD, timeoutMs: 180_000 })
    console.info(res.stderr.trim().split('\n').at(-1))
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/failed: .*(ENOSPC|no space left on device|not enough free disk)/)
    // Nothing that looks finished: no _SUCCESS, no part file.
    expect(existsSync(out) ? readdirSync(out).filter((f) => f === '_SUCCESS' || f.startsWith('part-')) : []).toEqual([])
    // Every node is up and has dropped the job's files.
    let seen = ''
    await waitFor(async () => {
      const infos = await c.sample()
      seen = JSON.stringify([...infos.values()].map((i) => ({ running: i.tasks?.running, jobs: i.tasks?.jobs })))
      return infos.size === 3 && [...infos.values()].every((i) => i.tasks !== undefined && i.tasks.running === 0 && i.tasks.jobs.length === 0)
    }, { timeoutMs: 20_000, description: 'every node to drop the failed job' }).catch((err: Error) => { throw new Error(`${err.message}; nodes: ${seen}`) })
    for (const m of mounts) expect(readdirSync(m)).toEqual([])
  }, 240_000)

  it('a coordinator holds at most --max-jobs: the next submit is refused with the reason, the running job finishes', async () => {
    const c = await startCluster({ nodes: 2, env: { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn' }, args: () => ['--max-jobs', '1'] })
    try {
      await waitForAgreement(c, [0, 1], 30_000)
      const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-maxjobs-'))
      const log = join(scratch, 'log')
      mkdirSync(log)
      const first = startCli(['submit', TIMING, '--input', ...BOOKS, '--param', 'ms=300', '--param', `log=${log}`, '--output', join(scratch, 'first'), '--bootstrap', c.nodes[0].addr, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
      await waitFor(() => existsSync(join(log, 'map.log')), { timeoutMs: 60_000, description: 'the first job to run' })
      const second = await runCli(['submit', 'wc', '--input', ...BOOKS, '--output', join(scratch, 'second'), '--bootstrap', c.nodes[1].addr], { cwd: REFERENCE_CWD, timeoutMs: 60_000 })
      expect(second.code).toBe(1)
      expect(second.stderr).toMatch(/^mrp2p: job wc refused: the coordinator already holds 1 of at most 1 jobs \(its --max-jobs\)/)
      expect(existsSync(join(scratch, 'second'))).toBe(false)
      const res = await first.result
      expect(res.code).toBe(0)
      expect(readdirSync(join(scratch, 'first'))).toContain('_SUCCESS')
    } finally {
      await c.stop()
    }
  }, 180_000)
})
