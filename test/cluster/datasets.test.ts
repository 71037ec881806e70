import '../../src/util/polyfills.js'
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blockCid } from '../../src/dataset/block-cid.js'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { JobRecordSchema, type JobRecord } from '../../src/protocol/history-messages.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { REPO_ROOT, runCli, SHARED_DATA, startCli, type CliResult } from '../support/run-cli.js'

/*
 * Datasets in the mesh (issue #15), with real node processes on one 4-node mesh: every case uses datasets of its
 * own names, and a case that kills nodes brings them back before it ends. Each node keeps at most 16 MiB of
 * blocks, so that a put too large for the mesh can be shown to fail.
 */

const NODES = 4
const BLOCK = '200k'
const TIMING = join(REPO_ROOT, 'test/fixtures/jobs/timing.ts')
const R = 3

let cluster: Cluster
let scratch: string
/** The eight books, a file of invalid UTF-8 and an empty file: what every case puts. */
let books: string
let files: string[]
/** The sequential run's parts: wc, and the timing job (each document's number of blocks). */
let wcReference: string
let timingReference: string

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'mrp2p-datasets-'))
  books = join(scratch, 'books')
  mkdirSync(books)
  for (const f of readdirSync(SHARED_DATA).filter((f) => /^pg-.*\.txt$/.test(f))) copyFileSync(join(SHARED_DATA, f), join(books, f))
  writeFileSync(join(books, 'bad-utf8.txt'), Buffer.from([0x61, 0xff, 0xfe, 0x62, 0x0a, 0xc3, 0x28, 0x0a]))
  writeFileSync(join(books, 'empty.txt'), '')
  files = readdirSync(books).sort()
  wcReference = join(scratch, 'wc-reference')
  timingReference = join(scratch, 'timing-reference')
  const seq = async (args: string[]): Promise<void> => {
    const r = await runCli(['run', ...args, '--input', ...files, '--split-size', '204800', '--reduces', String(R), '-q'], { cwd: books, timeoutMs: 60_000 })
    if (r.code !== 0) throw new Error(`sequential run failed: ${r.stderr}`)
  }
  await seq(['wc', '--output', wcReference])
  await seq([TIMING, '--param', 'ms=0', '--param', `log=${scratch}`, '--output', timingReference])
  cluster = await startCluster({ nodes: NODES, env: { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn' }, args: () => ['--store-max', '16MiB', '--repair-after', '1'] })
  await waitForAgreement(cluster, cluster.nodes.map((n) => n.index), 30_000)
}, 120_000)

afterAll(async () => {
  await cluster?.stop()
})

async function cli (args: string[], opts: { via?: number, cwd?: string } = {}): Promise<CliResult> {
  return await runCli([...args, '--bootstrap', cluster.nodes[opts.via ?? 0].addr], { cwd: opts.cwd ?? scratch, timeoutMs: 120_000, env: { MRP2P_LOG_LEVEL: 'warn' } })
}

async function ok (args: string[], opts: { via?: number, cwd?: string } = {}): Promise<string> {
  const r = await cli(args, opts)
  if (r.code !== 0) throw new Error(`mrp2p ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}`)
  return r.stdout
}

async function put (name: string, replicas = 2): Promise<void> {
  await ok(['put', books, '--name', name, '--block-size', BLOCK, '--replicas', String(replicas)])
}

interface Health { name: string, blocks: number, underReplicated: number, missing: number, corrupt: number }

async function fsck (name: string, via = 0): Promise<Health> {
  const r = await cli(['fsck', name, '--json'], { via })
  return (JSON.parse(r.stdout) as Health[])[0]
}

/** Until fsck finds every block of `name` at its count again (the repair loop's work), on the nodes up now. */
async function healed (name: string, via = 0): Promise<Health> {
  return await waitFor(async () => {
    const h = await fsck(name, via)
    return h.underReplicated === 0 && h.missing === 0 && h.corrupt === 0 ? h : undefined
  }, { timeoutMs: 60_000, intervalMs: 500, description: `${name} healthy again` })
}

/** Per block CID, the nodes whose store holds a file of it (read from their disks). */
function blocksOnDisk (): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const n of cluster.nodes) {
    const dir = join(n.dataDir, 'blocks')
    if (!existsSync(dir)) continue
    for (const shard of readdirSync(dir)) {
      if (shard === 'tmp') continue
      for (const cid of readdirSync(join(dir, shard))) out.set(cid, [...(out.get(cid) ?? []), n.index])
    }
  }
  return out
}

function jobId (stdout: string): string {
  const m = /^job (\S+) submitted to /m.exec(stdout)
  if (m === null) throw new Error(`no job id in ${JSON.stringify(stdout)}`)
  return m[1]
}

async function record (id: string, via = 1): Promise<JobRecord> {
  return await waitFor(async () => {
    const r = await cli(['job', id, '--json'], { via })
    if (r.code !== 0) return undefined
    const rec = JobRecordSchema.parse(JSON.parse(r.stdout))
    return rec.state === 'succeeded' ? rec : undefined
  }, { timeoutMs: 20_000, intervalMs: 200, description: `job ${id} recorded as succeeded` })
}

function expectParts (dir: string, reference: string): void {
  const parts = readdirSync(reference).filter((f) => f.startsWith('part-')).sort()
  expect(readdirSync(dir).filter((f) => f.startsWith('part-')).sort()).toEqual(parts)
  for (const p of parts) expect(readFileSync(join(dir, p)).equals(readFileSync(join(reference, p))), p).toBe(true)
}

/** The coordinator's index, as the nodes agree now. */
async function coordinatorIndex (): Promise<number> {
  return (await waitForAgreement(cluster, cluster.running(), 30_000)).coordinator
}

async function restartDead (): Promise<void> {
  for (const n of cluster.nodes) if (!n.process.running) await cluster.restart(n.index)
  await waitForAgreement(cluster, cluster.nodes.map((n) => n.index), 30_000)
}

/** Whatever a case did, the next starts on the whole mesh with none of its datasets. */
async function cleanUp (...names: string[]): Promise<void> {
  await restartDead()
  for (const name of names) await cli(['rm', name])
}

function mapsLogged (log: string): number {
  const file = join(log, 'map.log')
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').length : 0
}

describe('datasets in the mesh', () => {
  it('put, ls, cat, get, fsck and rm round-trip every file byte for byte (invalid UTF-8 and an empty file too), each block on 2 distinct nodes', async () => {
    try {
      await put('round')
      const listed = JSON.parse(await ok(['ls', '--json'])) as Array<{ name: string, files: number, bytes: number, replicas: number, underReplicated: number, missing: number }>
      const bytes = files.reduce((n, f) => n + readFileSync(join(books, f)).byteLength, 0)
      expect(listed.find((d) => d.name === 'round')).toMatchObject({ files: files.length, bytes, replicas: 2, underReplicated: 0, missing: 0 })
      const inside = JSON.parse(await ok(['ls', 'round', '--json'])) as { files: Array<{ path: string, size: number }> }
      expect(inside.files.map((f) => f.path)).toEqual(files)

      // cat writes raw bytes: read as a buffer, not through the CLI helper's text.
      const catted = execFileSync(process.execPath, [join(REPO_ROOT, 'bin/mrp2p.js'), 'cat', 'round/bad-utf8.txt', '--bootstrap', cluster.nodes[2].addr])
      expect(catted.equals(readFileSync(join(books, 'bad-utf8.txt')))).toBe(true)
      const all = execFileSync(process.execPath, [join(REPO_ROOT, 'bin/mrp2p.js'), 'cat', 'round', '--bootstrap', cluster.nodes[3].addr], { maxBuffer: 64 * 2 ** 20 })
      expect(all.equals(Buffer.concat(files.map((f) => readFileSync(join(books, f)))))).toBe(true)

      const got = join(scratch, 'got-round')
      await ok(['get', 'round', got], { via: 1 })
      expect(readdirSync(got).sort()).toEqual(files)
      for (const f of files) expect(readFileSync(join(got, f)).equals(readFileSync(join(books, f))), f).toBe(true)

      expect(await fsck('round')).toMatchObject({ underReplicated: 0, missing: 0, corrupt: 0 })
      const entry = JSON.parse(await ok(['ls', 'round', '--json'])) as { manifestCid: string }
      expect(entry.manifestCid).toMatch(/^bagaaiera/)
      const onDisk = blocksOnDisk()
      expect(onDisk.size).toBe((JSON.parse(await ok(['ls', 'round', '--json'])) as { files: Array<{ blocks: number }> }).files.reduce((n, f) => n + f.blocks, 0))
      for (const [cid, holders] of onDisk) {
        expect(new Set(holders).size, cid).toBe(holders.length)
        expect(holders.length, cid).toBe(2)
      }

      const again = await cli(['put', books, '--name', 'round'])
      expect(again.code).toBe(1)
      expect(again.stderr).toBe('mrp2p: dataset round exists (put --replace to replace it)\n')

      await ok(['rm', 'round'])
      expect(JSON.parse(await ok(['ls', '--json'], { via: 2 }))).toEqual([])
      // Every node deletes the blocks no other dataset uses.
      await waitFor(() => blocksOnDisk().size === 0, { timeoutMs: 20_000, intervalMs: 200, description: 'every block of round deleted' })
      const gone = await cli(['cat', 'round'])
      expect(gone.code).toBe(1)
      expect(gone.stderr).toBe('mrp2p: no dataset round in this mesh (mrp2p ls lists them)\n')
    } finally {
      await cleanUp('round')
    }
  }, 120_000)

  it('a put that cannot place every block twice fails before anything is sent, and leaves nothing listed', async () => {
    const big = join(scratch, 'big')
    mkdirSync(big)
    // 40 MiB of lines; twice that is more than the 4 nodes' 16 MiB each.
    writeFileSync(join(big, 'numbers.txt'), Array.from({ length: 4_000_000 }, (_, i) => String(i % 1_000_000).padStart(9, '0')).join('\n') + '\n')
    const before = blocksOnDisk().size
    const r = await cli(['put', big, '--name', 'toobig', '--block-size', '4MiB'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^mrp2p: cannot put toobig: block b\w+ \(\d+ bytes\) fits on [01] nodes?, not 2: the dataset needs \d+ bytes with its replicas and the nodes have \d+ free\n$/)
    expect(JSON.parse(await ok(['ls', '--json']))).toEqual([])
    expect(blocksOnDisk().size).toBe(before)

    // 18 MiB: more than any one node has room for, so the put places every block before it sends one.
    const spread = join(scratch, 'spread.txt')
    writeFileSync(spread, Array.from({ length: 1_800_000 }, (_, i) => String(i).padStart(9, '0')).join('\n') + '\n')
    await ok(['put', spread, '--name', 'spread', '--block-size', '4MiB'])
    const health = await fsck('spread')
    expect(health).toMatchObject({ underReplicated: 0, missing: 0, corrupt: 0 })
    const got = join(scratch, 'got-spread')
    await ok(['get', 'spread', got], { via: 2 })
    expect(readdirSync(got)).toEqual(['spread.txt'])
    expect(readFileSync(join(got, 'spread.txt')).equals(readFileSync(spread))).toBe(true)
    await ok(['rm', 'spread'])
  }, 60_000)

  it('wc over a dataset reads each block where it lies (no byte from the submitter), writes a dataset, and top over that equals sort -k2 -nr | head', async () => {
    try {
      await put('chain')
      const id = jobId(await ok(['submit', 'wc', '--input', 'mesh:chain', '--output', 'mesh:counts', '--reduces', String(R), '-q']))
      const rec = await record(id)
      const blocks = (JSON.parse(await ok(['ls', 'chain', '--json'])) as { files: Array<{ blocks: number }> }).files.reduce((n, f) => n + f.blocks, 0)
      // One map per block, and one for the empty file (as a local input: map sees every document).
      expect(rec.progress.maps.total).toBe(blocks + 1)
      expect(rec.counters.inputFetchedBytes).toBe(0)
      const got = join(scratch, 'got-counts')
      await ok(['get', 'counts', got], { via: 3 })
      expectParts(got, wcReference)

      const top = join(scratch, 'top')
      await ok(['submit', 'top', '--input', 'mesh:counts', '--param', 'n=10', '--output', top, '-q'])
      const expected = execFileSync('sh', ['-c', `cat ${wcReference}/part-* | LC_ALL=C sort -k2 -nr | head -n 10`])
      expect(Buffer.concat(readdirSync(top).filter((f) => f.startsWith('part-')).sort().map((f) => readFileSync(join(top, f)))).equals(expected)).toBe(true)
      expect(expected.toString().split('\n')).toHaveLength(11)

      const taken = await cli(['submit', 'wc', '--input', 'mesh:chain', '--output', 'mesh:counts', '-q'])
      expect(taken.code).toBe(1)
      expect(taken.stderr).toBe('mrp2p: dataset counts exists: give the job\'s output a new name, or mrp2p rm counts first\n')
    } finally {
      await cleanUp('chain', 'counts')
    }
  }, 120_000)

  // With 2 replicas, the 3 nodes left hold every block twice again; with 3, the 2 left cannot, and the blocks are
  // back at 3 once the dead rejoin (counting the blocks they kept) and the repair copies what they lack.
  for (const { replicas, kill } of [{ replicas: 2, kill: 1 }, { replicas: 3, kill: 2 }]) {
    it(`${kill === 1 ? 'a holder' : 'two holders'} SIGKILLed mid-job (${replicas} replicas): the output is exact, the submitter sent no byte, and every block is back at ${replicas} copies${kill === 1 ? '' : ' once they rejoin'}`, async () => {
      const name = `held-${replicas}`
      try {
        await put(name, replicas)
        const coordinator = await coordinatorIndex()
        const log = join(scratch, `log-${name}`)
        mkdirSync(log)
        const out = join(scratch, `out-${name}`)
        const submit = startCli(['submit', TIMING, '--input', `mesh:${name}`, '--reduces', String(R), '--param', 'ms=300', '--param', `log=${log}`, '--output', out, '--bootstrap', cluster.nodes[coordinator].addr, '--timeout', '90'], { cwd: scratch, timeoutMs: 180_000, env: { MRP2P_LOG_LEVEL: 'warn' } })
        await waitFor(() => mapsLogged(log) >= 3, { timeoutMs: 60_000, intervalMs: 25, description: '3 maps done' })
        const victims = cluster.nodes.map((n) => n.index).filter((i) => i !== coordinator).slice(0, kill)
        await Promise.all(victims.map(async (i) => { await cluster.kill(i) }))
        const res = await submit.result
        if (res.code !== 0) throw new Error(`submit exited ${String(res.code)}: ${res.stderr}`)
        expectParts(out, timingReference)
        const rec = await record(jobId(res.stdout), coordinator)
        expect(rec.counters.inputFetchedBytes).toBe(0)
        if (NODES - kill >= replicas) {
          // The survivors copy what the dead held: every block at its count again on the nodes left.
          await healed(name, coordinator)
        } else {
          expect((await fsck(name, coordinator)).missing).toBe(0)
          await restartDead()
          await healed(name, coordinator)
        }
      } finally {
        await cleanUp(name)
      }
    }, 180_000)
  }

  it('a byte flipped in a block on disk is found, that copy dropped and copied again from a good one; a job reading it gets the exact output', async () => {
    try {
      await put('flip')
      const [cid, holders] = [...blocksOnDisk()].find(([, h]) => h.length === 2) as [string, number[]]
      const path = join(cluster.nodes[holders[0]].dataDir, 'blocks', cid.slice(-2), cid)
      const good = readFileSync(path)
      const bad = Buffer.from(good)
      bad[Math.floor(bad.byteLength / 2)] ^= 0x01
      writeFileSync(path, bad)
      const out = join(scratch, 'out-flip')
      await ok(['submit', 'wc', '--input', 'mesh:flip', '--reduces', String(R), '--output', out, '-q'])
      expectParts(out, wcReference)
      // Whether the job's map or fsck met the bad copy first, it ends dropped and replaced by an intact one.
      await healed('flip')
      await waitFor(() => existsSync(path) && blockCid(readFileSync(path)) === cid, { timeoutMs: 30_000, intervalMs: 200, description: 'an intact copy back on the node whose copy was corrupt' })
    } finally {
      await cleanUp('flip')
    }
  }, 120_000)

  it('--detach returns once the coordinator has the job; with the submitter gone it finishes, wait exits 0, and its output is exact; a local input or output is refused', async () => {
    try {
      await put('detach-in')
      const out = await ok(['submit', 'wc', '--input', 'mesh:detach-in', '--output', 'mesh:detach-out', '--reduces', String(R), '--detach'])
      const id = jobId(out)
      expect(out).toMatch(new RegExp(`detached: mrp2p wait ${id} waits for it`))
      // The submitting process has exited: nothing of the job depends on it now.
      const waited = await cli(['wait', id], { via: 2 })
      expect(waited.code).toBe(0)
      expect(waited.stdout).toMatch(new RegExp(`^job ${id} succeeded in [\\d.]+ s → dataset detach-out\n$`))
      expect(await ok(['job', id], { via: 2 })).toMatch(new RegExp(`^detached +output dataset detach-out; ${R} of ${R} parts stored$`, 'm'))
      const got = join(scratch, 'got-detach')
      await ok(['get', 'detach-out', got], { via: 3 })
      expectParts(got, wcReference)

      const local = await cli(['submit', 'wc', '--input', join(books, 'pg-grimm.txt'), '--output', 'mesh:never', '--detach'])
      expect(local.code).toBe(1)
      expect(local.stderr).toMatch(/^mrp2p: --detach needs every input in the mesh \(mesh:NAME\): \S+pg-grimm.txt is a local file, and a detached job has no submitter to serve or collect anything \(mrp2p put it first\)\n$/)
      const folder = await cli(['submit', 'wc', '--input', 'mesh:detach-in', '--output', join(scratch, 'never'), '--detach'])
      expect(folder.code).toBe(1)
      expect(folder.stderr).toMatch(/^mrp2p: --detach needs the output in the mesh \(--output mesh:NAME\), not the folder \S+: a detached job has no submitter to serve or collect anything\n$/)
      expect(existsSync(join(scratch, 'never'))).toBe(false)
    } finally {
      await cleanUp('detach-in', 'detach-out')
    }
  }, 120_000)

  it('a detached job whose coordinator is killed mid-job is resumed by the next one from its record and the spec it stored in the mesh; a cancelled one makes wait exit 3', async () => {
    try {
      await put('detach-fo')
      const coordinator = await coordinatorIndex()
      const via = (coordinator + 1) % NODES
      const log = join(scratch, 'log-detach-fo')
      mkdirSync(log)
      const id = jobId(await ok(['submit', TIMING, '--input', 'mesh:detach-fo', '--output', 'mesh:detach-fo-out', '--reduces', String(R), '--param', 'ms=300', '--param', `log=${log}`, '--detach'], { via }))
      await waitFor(() => mapsLogged(log) >= 3, { timeoutMs: 60_000, intervalMs: 25, description: '3 maps done' })
      await cluster.kill(coordinator)
      const waited = await cli(['wait', id], { via })
      if (waited.code !== 0) throw new Error(`wait exited ${String(waited.code)}: ${waited.stderr}`)
      const got = join(scratch, 'got-detach-fo')
      await ok(['get', 'detach-fo-out', got], { via })
      expectParts(got, timingReference)
      const rec = await record(id, via)
      expect(rec.epoch).toBeGreaterThan(0)
      expect(rec.detached?.output).toBe('detach-fo-out')

      const slow = jobId(await ok(['submit', TIMING, '--input', 'mesh:detach-fo', '--output', 'mesh:never', '--param', 'ms=2000', '--param', `log=${log}`, '--detach'], { via }))
      await ok(['cancel', slow], { via })
      const cancelled = await cli(['wait', slow], { via })
      expect(cancelled.code).toBe(3)
      expect(cancelled.stderr).toMatch(new RegExp(`^mrp2p: job ${slow} was cancelled: cancelled by \\w+\n$`))
      expect(JSON.parse(await ok(['ls', '--json'], { via })).map((d: { name: string }) => d.name)).not.toContain('never')
    } finally {
      await cleanUp('detach-fo', 'detach-fo-out')
    }
  }, 180_000)

  it('the coordinator killed mid-job: the new one finishes it, and the output dataset is bound once, exact', async () => {
    try {
      await put('failover')
      const coordinator = await coordinatorIndex()
      const via = (coordinator + 1) % NODES
      const log = join(scratch, 'log-failover')
      mkdirSync(log)
      const submit = startCli(['submit', TIMING, '--input', 'mesh:failover', '--reduces', String(R), '--param', 'ms=300', '--param', `log=${log}`, '--output', 'mesh:failover-out', '--bootstrap', cluster.nodes[via].addr, '--timeout', '90'], { cwd: scratch, timeoutMs: 180_000, env: { MRP2P_LOG_LEVEL: 'warn' } })
      await waitFor(() => mapsLogged(log) >= 3, { timeoutMs: 60_000, intervalMs: 25, description: '3 maps done' })
      await cluster.kill(coordinator)
      const res = await submit.result
      if (res.code !== 0) throw new Error(`submit exited ${String(res.code)}: ${res.stderr}`)
      const got = join(scratch, 'got-failover')
      await ok(['get', 'failover-out', got], { via })
      expectParts(got, timingReference)
    } finally {
      await cleanUp('failover', 'failover-out')
    }
  }, 180_000)
})
