import '../../src/util/polyfills.js'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { KEY_FILE } from '../../src/node/data-dir.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { sortedOutput } from '../support/output.js'
import { BOOKS, REFERENCE_CWD, REPO_ROOT, runCli, startCli, type CliResult } from '../support/run-cli.js'

/*
 * Job code is isolated from the node (issue #6, item 3): a job that throws,
 * hangs, allocates without bound or calls process.exit fails only its own
 * attempts. Through real node processes, in thread mode and in --sandbox
 * mode: `submit` exits 1 and names the cause, every node lives on and answers,
 * no attempt is left running, and a normal wc job on the same mesh then
 * equals the lab's reference.
 */

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'jobs')
const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-isolation-'))
let n = 0
const freshDir = (name: string): string => join(scratch, `${name}-${n++}`)
/** Small enough that the job that allocates without bound meets it in a moment. */
const TASK_MEMORY_MB = 128
/** One short book: one map task, so each attempt of a failing job is one task attempt. */
const ONE_BOOK = BOOKS[0]

interface Case {
  job: string
  what: string
  extra: string[]
  /** What `submit` must print, given where tasks run: 'thread' or 'process'. */
  cause: (runner: string) => RegExp
}

const CASES: Case[] = [
  { job: 'throws', what: 'throws', extra: [], cause: () => /this map refuses \.\.\/pg-[a-z_]+\.txt/ },
  { job: 'hangs', what: 'never ends (--task-timeout 2)', extra: ['--task-timeout', '2'], cause: () => /task timed out after 2 s/ },
  { job: 'hogs', what: 'allocates without bound', extra: [], cause: () => new RegExp(`task ran out of memory \\(its heap is capped at ${TASK_MEMORY_MB} MiB per task\\)`) },
  { job: 'exits', what: 'calls process.exit', extra: [], cause: (runner) => new RegExp(`task code ended its ${runner} \\(process\\.exit\\(7\\)\\)`) }
]

const MODES = [
  { name: 'thread mode', args: [] as string[], runner: 'thread' },
  { name: 'sandbox mode (join --sandbox)', args: ['--sandbox'], runner: 'process' }
]

function submitArgs (c: Cluster, job: string, args: string[], maxAttempts = 2): string[] {
  return ['submit', job, '--bootstrap', c.nodes[0].addr, '--timeout', '30', '--max-attempts', String(maxAttempts), ...args]
}

async function submit (c: Cluster, job: string, args: string[]): Promise<CliResult> {
  return await runCli(submitArgs(c, job, args), { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
}

/** The PIDs of a process's children (Linux /proc): a sandboxed attempt that was ended leaves none. */
function childPids (pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((s) => s !== '').map(Number)
}

/** Every node still runs, answers, has no attempt running and no task process left. */
async function expectAllAliveAndIdle (c: Cluster): Promise<void> {
  for (const node of c.nodes) expect(node.process.running).toBe(true)
  await waitFor(async () => {
    const infos = await Promise.all(c.nodes.map(async (_, i) => await c.info(i)))
    return infos.every((info) => info !== undefined && info.tasks !== undefined && info.tasks.running === 0) &&
      c.nodes.every((node) => node.process.pid !== undefined && childPids(node.process.pid).length === 0)
  }, { timeoutMs: 15_000, intervalMs: 200, description: 'every node answering, with no attempt or task process left' })
}

async function failedAttempts (c: Cluster): Promise<number> {
  const infos = await Promise.all(c.nodes.map(async (_, i) => await c.info(i)))
  return infos.reduce((sum, info) => sum + (info?.tasks?.failed ?? 0), 0)
}

async function expectWcStillWorks (c: Cluster): Promise<void> {
  const out = freshDir('wc')
  const res = await submit(c, 'wc', ['--input', ...BOOKS, '--reduces', '2', '--output', out])
  if (res.code !== 0) throw new Error(`wc failed after the failing job (${String(res.code)}): ${res.stderr}`)
  expect(sortedOutput(out).equals(readFileSync(join(REFERENCE_CWD, 'wc.txt')))).toBe(true)
}

for (const mode of MODES) {
  describe(`isolation, ${mode.name}: a failing job fails only its own attempts`, () => {
    let cluster: Cluster

    beforeAll(async () => {
      cluster = await startCluster({
        nodes: 3,
        env: { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn' },
        args: () => [...mode.args, '--task-memory', String(TASK_MEMORY_MB)]
      })
      await waitForAgreement(cluster, cluster.running(), 30_000)
    })
    afterAll(async () => { await cluster?.stop() })

    for (const { job, what, extra, cause } of CASES) {
      it(`a job that ${what}: submit exits 1 naming the cause, after --max-attempts attempts; every node lives on`, async () => {
        const failedBefore = await failedAttempts(cluster)
        const res = await submit(cluster, join(FIXTURES, `${job}.ts`), ['--input', ONE_BOOK, '--output', freshDir(job), ...extra])
        expect(res.code).toBe(1)
        expect(res.stderr).toMatch(new RegExp(`^mrp2p: job ${job} failed: `, 'm'))
        expect(res.stderr).toMatch(cause(mode.runner))
        if (job === 'throws') expect(res.stderr).toMatch(/throws\.ts:7:/)
        await expectAllAliveAndIdle(cluster)
        // The retry policy applied: the task failed once per allowed attempt before the job gave up.
        expect(await failedAttempts(cluster) - failedBefore).toBeGreaterThanOrEqual(2)
        await expectWcStillWorks(cluster)
      }, 180_000)
    }

    it('while a task spins, its node keeps answering `mrp2p status` and heartbeating', async () => {
      // One attempt of 10 s: the node is asked while the attempt certainly still runs.
      const running = startCli(submitArgs(cluster, join(FIXTURES, 'hangs.ts'), ['--input', ONE_BOOK, '--output', freshDir('spin'), '--task-timeout', '10'], 1), { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
      try {
        const busy = await waitFor(async () => {
          for (let i = 0; i < cluster.nodes.length; i++) {
            if ((await cluster.info(i))?.tasks?.running === 1) return i
          }
          return undefined
        }, { timeoutMs: 20_000, intervalMs: 100, description: 'a node running the spinning task' })
        const status = await runCli(['status', '--bootstrap', cluster.nodes[busy].addr, '--timeout-ms', '3000'])
        expect(status.code).toBe(0)
        expect(status.stdout).toContain(`asked       ${cluster.nodes[busy].peerId}`)
        expect(status.stdout).toMatch(/3 alive of 3 known/)
        // Its heartbeats go on too: the other nodes still hold it for alive.
        const other = (await cluster.info((busy + 1) % 3))?.members.find((m) => m.peerId === cluster.nodes[busy].peerId)
        expect(other?.liveness).toBe('alive')
        expect((await cluster.info(busy))?.tasks?.running).toBe(1)
      } catch (err) {
        // The job would spin on for its 10 s: the submitter goes now, and the mesh cancels it.
        running.kill('SIGKILL')
        throw err
      }
      const res = await running.result
      expect(res.code).toBe(1)
      expect(res.stderr).toMatch(/task timed out after 10 s/)
      await expectAllAliveAndIdle(cluster)
    }, 120_000)

    if (mode.args.includes('--sandbox')) {
      it.each([
        ['/etc/passwd', ['--param', 'try=read', '--param', 'path=/etc/passwd'], /permission FileSystemRead denied for \/etc\/passwd/],
        // The work folder is DATA/intermediate/<job>/work-…/: three levels up is the data dir of whichever node runs it.
        ['the node\'s own identity key', ['--param', 'try=read', '--param', `path=../../../${KEY_FILE}`], new RegExp(`permission FileSystemRead denied for /.*/data/${KEY_FILE}\\b`)],
        ['a child process', ['--param', 'try=spawn'], /permission ChildProcess denied/]
      ])('a job that reaches for %s fails, and submit names the permission', async (_what, params, cause) => {
        const res = await submit(cluster, join(FIXTURES, 'escape.ts'), ['--input', ONE_BOOK, '--output', freshDir('escape'), ...params])
        expect(res.code).toBe(1)
        expect(res.stderr).toMatch(/^mrp2p: job escape failed: job escape: map failed on document .*: Access to this API has been restricted \(sandbox: /m)
        expect(res.stderr).toMatch(cause)
        await expectAllAliveAndIdle(cluster)
      }, 120_000)
    }
  })
}
