import '../../src/util/polyfills.js'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { JobRecordSchema, type JobRecord } from '../../src/protocol/history-messages.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { restartTheDead } from '../support/restart-the-dead.js'
import { BOOKS, REFERENCE_CWD, REPO_ROOT, runCli, type CliResult } from '../support/run-cli.js'

/**
 * Streaming jobs on meshes of real `mrp2p join` processes: the Python word count across nodes equals `run` byte for
 * byte, failures say why and keep every attempt's stderr, a command not found fails once per node, `--no-exec` nodes
 * get no streaming task, `--sandbox` nodes confine commands with bubblewrap (or refuse them without it), and the
 * crash test of the module jobs passes with a streaming job.
 */
const EXAMPLES = join(REPO_ROOT, 'examples', 'streaming')
const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'streaming')
const ENV = { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn' }
const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-streaming-mesh-'))
let n = 0
const fresh = (name: string): string => join(scratch, `${name}-${n++}`)
const files = (dir: string, ...names: string[]): string[] => names.flatMap((f) => ['--file', join(dir, f)])
const PY_WC = ['--mapper', 'python3 mapper.py', '--reducer', 'python3 reducer.py', ...files(EXAMPLES, 'mapper.py', 'reducer.py')]

async function submit (c: Cluster, via: number, args: string[]): Promise<CliResult> {
  return await runCli(['submit', ...args, '--bootstrap', c.nodes[via].addr, '--timeout', '30'], { cwd: REFERENCE_CWD, timeoutMs: 180_000 })
}

async function cli (c: Cluster, via: number, args: string[]): Promise<CliResult> {
  return await runCli([...args, '--bootstrap', c.nodes[via].addr], { cwd: REFERENCE_CWD, env: { MRP2P_LOG_LEVEL: 'warn' }, timeoutMs: 30_000 })
}

async function record (c: Cluster, id: string): Promise<JobRecord> {
  const r = await cli(c, 0, ['job', id, '--json'])
  expect(r.code).toBe(0)
  return JobRecordSchema.parse(JSON.parse(r.stdout))
}

function idFrom (stdout: string): string {
  const m = /^job (\S+) submitted to/m.exec(stdout)
  if (m === null) throw new Error(`no "job ID submitted" line in ${JSON.stringify(stdout)}`)
  return m[1]
}

function expectOk (res: CliResult): void {
  if (res.code !== 0) throw new Error(`submit failed (${String(res.code)}): ${res.stderr}`)
}

function partsOf (dir: string): Buffer[] {
  return readdirSync(dir).filter((f) => f.startsWith('part-')).sort().map((f) => readFileSync(join(dir, f)))
}

function attemptNodes (rec: JobRecord): string[] {
  return rec.tasks.flatMap((t) => t.attempts.map((a) => a.node))
}

describe('streaming jobs on a mesh (nodes 2 and 3 run --no-exec)', () => {
  let c: Cluster
  beforeAll(async () => {
    c = await startCluster({ nodes: 4, env: ENV, args: (i) => ['--slots', '2', ...(i >= 2 ? ['--no-exec'] : [])] })
    await waitForAgreement(c, [0, 1, 2, 3], 30_000)
  }, 90_000)
  afterAll(async () => { await c?.stop() })

  it('Python word count equals `mrp2p run` part for part; no command ran on a --no-exec node', async () => {
    const reference = fresh('run')
    expectOk(await runCli(['run', ...PY_WC, '--input', ...BOOKS, '--reduces', '3', '--split-size', '300000', '--output', reference, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 }))
    const out = fresh('mesh')
    const res = await submit(c, 2, [...PY_WC, '--combiner', 'python3 reducer.py', '--input', ...BOOKS, '--reduces', '3', '--split-size', '300000', '--output', out])
    expectOk(res)
    expect(partsOf(out)).toEqual(partsOf(reference))
    const id = idFrom(res.stdout)
    const rec = await record(c, id)
    expect(rec.jobName).toBe('streaming')
    expect(rec.streaming?.mapper).toBe('python3 mapper.py')
    const shown = await cli(c, 3, ['job', id])
    expect(shown.stdout).toMatch(/^mapper {6}python3 mapper\.py\ncombiner {4}python3 reducer\.py\nreducer {5}python3 reducer\.py\nfiles {7}mapper\.py reducer\.py$/m)
    const nodes = attemptNodes(rec)
    expect(nodes.length).toBeGreaterThanOrEqual(rec.tasks.length)
    const allowed = [c.nodes[0].peerId, c.nodes[1].peerId]
    expect(nodes.filter((p) => !allowed.includes(p))).toEqual([])
    // The record's counters are the job's: records out of the reduces are the part files' lines.
    const lines = partsOf(out).reduce((k, p) => k + p.toString().split('\n').filter((l) => l !== '').length, 0)
    expect(rec.counters.reduceRecordsOut).toBe(lines)
  })

  it('a mapper that fails says why; `mrp2p logs` has the whole stderr of every attempt', async () => {
    const out = fresh('fails')
    const script = 'i=0; while [ $i -lt 300 ]; do echo "complaint $i" >&2; i=$((i+1)); done; exit 7'
    const res = await submit(c, 0, ['--mapper', script, '--reducer', 'cat', '--input', BOOKS[0], '--max-attempts', '2', '--output', out])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/map 0: mapper ".*" exited with code 7 on node \S+; the last lines of its stderr:\n {2}complaint 290\n[^]*complaint 299/)
    const id = idFrom(res.stdout)
    const logs = await cli(c, 1, ['logs', id])
    expect(logs.code).toBe(0)
    for (const attempt of ['1.1', '1.2']) {
      const lines = logs.stdout.split('\n').filter((l) => l.startsWith(`[map-0 ${attempt} `))
      expect(lines.map((l) => l.replace(/^\[[^\]]*\] /, ''))).toEqual(Array.from({ length: 300 }, (_, i) => `complaint ${i}`))
    }
  })

  it('a command not found fails the job after one attempt per node that may run it, not --max-attempts on each', async () => {
    const res = await submit(c, 1, ['--mapper', 'no-such-command-here', '--reducer', 'cat', '--input', ...BOOKS, '--split-size', '300000', '--output', fresh('missing')])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/mapper command not found on node \S+: .*no-such-command-here: not found/)
    const rec = await record(c, idFrom(res.stdout))
    expect(rec.state).toBe('failed')
    // Nodes 0 and 1 run commands; 2 and 3 do not: at most one failed start on each of the two.
    const failed = rec.tasks.flatMap((t) => t.attempts).filter((a) => a.outcome === 'failed')
    expect(new Set(failed.map((a) => a.node))).toEqual(new Set([c.nodes[0].peerId, c.nodes[1].peerId]))
    expect(failed.length).toBeLessThanOrEqual(2 * 2)
  })
})

describe('streaming on --sandbox nodes', () => {
  it('commands run under bubblewrap: exact output, nothing of the node seen, no network, a read-only system', async () => {
    const c = await startCluster({ nodes: 1, env: ENV, args: () => ['--sandbox'] })
    try {
      await waitForAgreement(c, [0], 30_000)
      const out = fresh('sandboxed')
      expectOk(await submit(c, 0, [...PY_WC, '--input', ...BOOKS, '--reduces', '2', '--output', out]))
      const reference = fresh('sandbox-run')
      expectOk(await runCli(['run', ...PY_WC, '--input', ...BOOKS, '--reduces', '2', '--output', reference, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 }))
      expect(partsOf(out)).toEqual(partsOf(reference))

      const probeOut = fresh('probe')
      const nodeFile = join(c.nodes[0].dataDir, 'node.json')
      expect(readFileSync(nodeFile).length).toBeGreaterThan(0)
      expectOk(await submit(c, 0, ['--mapper', `sh probe.sh ${nodeFile} ${c.nodes[0].port}`, '--reducer', 'cat', ...files(FIXTURES, 'probe.sh'), '--input', BOOKS[0], '--output', probeOut]))
      expect(partsOf(probeOut)[0].toString()).toBe('cwd\twritable\nhome\thidden\nnetwork\tclosed\nnode-file\thidden\nsystem\tread-only\nuser\t65534\n')
    } finally {
      await c.stop()
    }
  })

  it('without bubblewrap a --sandbox node refuses streaming tasks, and a mesh of such nodes fails the job saying why', async () => {
    const c = await startCluster({ nodes: 1, env: { ...ENV, MRP2P_BWRAP: join(scratch, 'no-bwrap-here') }, args: () => ['--sandbox'] })
    try {
      await waitForAgreement(c, [0], 30_000)
      const out = fresh('no-bwrap')
      const res = await submit(c, 0, [...PY_WC, '--input', BOOKS[0], '--output', out])
      expect(res.code).toBe(1)
      expect(res.stderr).toMatch(/no node of this mesh runs streaming commands \(node \S+: this node runs --sandbox and bubblewrap is not installed/)
      // Module jobs still run there.
      const wc = fresh('module-on-sandbox')
      expectOk(await submit(c, 0, ['wc', '--input', BOOKS[0], '--output', wc]))
    } finally {
      await c.stop()
    }
  }, 120_000)
})

describe('crash test with a streaming job', () => {
  it('nodes killed by a third of mapper and reducer runs and restarted: output equals the sequential run', async () => {
    const crash = ['--mapper', 'python3 crash.py map', '--reducer', 'python3 crash.py reduce', ...files(FIXTURES, 'crash.py')]
    const reference = fresh('crash-run')
    expectOk(await runCli(['run', ...crash, '--input', ...BOOKS, '--reduces', '3', '--split-size', '300000', '--output', reference, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 }))
    const c = await startCluster({ nodes: 4, env: ENV })
    const keeper = restartTheDead(c)
    try {
      await waitForAgreement(c, [0, 1, 2, 3], 30_000)
      const out = fresh('crash')
      const chaos = fresh('chaos')
      mkdirSync(chaos)
      expectOk(await submit(c, 0, [...crash, '--cmdenv', 'CHAOS=1', '--cmdenv', `CHAOS_DIR=${chaos}`, '--input', ...BOOKS, '--reduces', '3', '--split-size', '300000', '--output', out]))
      expect(partsOf(out)).toEqual(partsOf(reference))
      const runs = readFileSync(join(chaos, 'runs'), 'utf8')
      expect(runs, `runs of the job:\n${runs}`).toMatch(/ kill node=\d+/)
      // The first run's kill happens before any output can exist, so the restarter must have seen it.
      expect(keeper.restarts, `runs of the job:\n${runs}`).toBeGreaterThan(0)
    } finally {
      keeper.stop()
      await c.stop()
    }
  }, 240_000)
})
