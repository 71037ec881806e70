import '../../src/util/polyfills.js'
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { JobRecordSchema, type JobRecord } from '../../src/protocol/history-messages.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { sortedOutput } from '../support/output.js'
import { BOOKS, REFERENCE_CWD, runCli, type CliOptions } from '../support/run-cli.js'

/*
 * Short-circuit reads and writes (issue #18): a submitter on the nodes' host, as their user, has its inputs read in
 * place and its parts taken in place, and no byte of either crosses a stream; nor does a map output between the
 * two nodes, which share the host. One that cannot read the workers'
 * probe, and whose own probe they cannot read (here: bubblewrap gives it its own empty temp folder where the nodes
 * keep theirs, as another host would have), sends every input byte and receives every part's, though the files
 * are the very same. A file changed after submit is the integration test's (job-protocol.test.ts). One 3-node mesh.
 */

let cluster: Cluster
let scratch: string
/** The nodes' temp folder, where their probes live. */
let nodeTmp: string

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'mrp2p-local-reads-'))
  nodeTmp = join(scratch, 'node-tmp')
  mkdirSync(nodeTmp)
  // Three nodes: the coordinator runs no task while two workers can, and map outputs cross between the two.
  cluster = await startCluster({ nodes: 3, env: { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn', TMPDIR: nodeTmp } })
  await waitForAgreement(cluster, [0, 1, 2], 30_000)
}, 60_000)

afterAll(async () => {
  await cluster?.stop()
})

async function wc (out: string, opts: CliOptions = {}): Promise<string> {
  const r = await runCli(['submit', 'wc', '--input', ...BOOKS, '--reduces', '2', '--split-size', '300000', '--output', out, '--bootstrap', cluster.nodes[0].addr, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000, env: { MRP2P_LOG_LEVEL: 'warn' }, ...opts })
  if (r.code !== 0) throw new Error(`submit failed (${String(r.code)}): ${r.stderr}`)
  expect(sortedOutput(out).equals(readFileSync(join(REFERENCE_CWD, 'wc.txt')))).toBe(true)
  const m = /^job (\S+) submitted to /m.exec(r.stdout)
  if (m === null) throw new Error(`no job id in ${JSON.stringify(r.stdout)}`)
  return m[1]
}

/** Map outputs linked in place so far, over every node. */
async function linkedRuns (): Promise<number> {
  let n = 0
  for (const info of (await cluster.sample()).values()) n += info.tasks?.shuffle?.inPlaceRuns ?? 0
  return n
}

async function record (id: string): Promise<{ json: JobRecord, text: string }> {
  const json = await waitFor(async () => {
    const r = await runCli(['job', id, '--json', '--bootstrap', cluster.nodes[1].addr], { timeoutMs: 30_000 })
    if (r.code !== 0) return undefined
    const rec = JobRecordSchema.parse(JSON.parse(r.stdout))
    return rec.state === 'succeeded' ? rec : undefined
  }, { timeoutMs: 15_000, intervalMs: 200, description: `job ${id} recorded as succeeded` })
  const text = await runCli(['job', id, '--bootstrap', cluster.nodes[1].addr], { timeoutMs: 30_000 })
  return { json, text: text.stdout }
}

describe('inputs read and parts committed in place on the submitter\'s host', () => {
  it('a submitter on this host sends no input byte and receives no part byte: splits are read, parts taken, where they lie', async () => {
    const linkedBefore = await linkedRuns()
    const { json, text } = await record(await wc(join(scratch, 'here')))
    // Both nodes on one host: every map output a reduce needed from the other node was linked in place, none sent,
    // and the maps, told so, stored their runs uncompressed (the records plus a 9-byte header per block).
    expect(json.counters.shuffleBytes).toBe(0)
    expect(json.counters.shuffleLinkedBytes).toBeGreaterThan(0)
    expect(text).toMatch(/^shuffle +0 B raw, 0 B sent; [\d.]+ (KiB|MiB) linked in place on its host$/m)
    const maps = json.tasks.filter((t) => t.kind === 'map').map((t) => t.attempts.find((a) => a.outcome === 'succeeded'))
    const stored = maps.reduce((n, a) => n + (a?.bytes ?? 0), 0)
    expect(stored).toBeGreaterThanOrEqual(json.counters.mapBytesOut)
    const reducers = new Set(json.tasks.filter((t) => t.kind === 'reduce').flatMap((t) => t.attempts.filter((a) => a.outcome === 'succeeded').map((a) => a.node)))
    expect([...reducers].some((r) => maps.some((a) => a !== undefined && a.node !== r))).toBe(true)
    expect(await linkedRuns()).toBeGreaterThan(linkedBefore)
    expect(json.counters.mapBytesIn).toBe(json.inputs.bytes)
    expect(json.counters.inputFetchedBytes).toBe(0)
    expect(text).toMatch(/^input +[\d.]+ (KiB|MiB|GiB) read in place, 0 B sent by the submitter$/m)
    expect(json.counters.reduceBytesOut).toBeGreaterThan(0)
    expect(json.counters.outputSentBytes).toBe(0)
    expect(text).toMatch(/^reduce .* out, 0 B of it sent to the submitter$/m)
  })

  it('a submitter that cannot read the workers\' probe, nor they its, sends every input byte and receives every part, though the files are the same', async () => {
    const wrapper = ['bwrap', '--dev-bind', '/', '/', '--tmpfs', nodeTmp, '--']
    const { json, text } = await record(await wc(join(scratch, 'elsewhere'), { wrapper, env: { MRP2P_LOG_LEVEL: 'warn', TMPDIR: nodeTmp } }))
    expect(json.counters.inputFetchedBytes).toBe(json.inputs.bytes)
    expect(text).toMatch(/^input +0 B read in place, [\d.]+ (KiB|MiB|GiB) sent by the submitter$/m)
    expect(json.counters.outputSentBytes).toBe(json.counters.reduceBytesOut)
    expect(text).toMatch(/^reduce .* out, [\d.]+ (KiB|MiB|GiB) of it sent to the submitter$/m)
  })
})
