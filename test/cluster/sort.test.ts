import '../../src/util/polyfills.js'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { Prng } from '../support/prng.js'
import { runCli } from '../support/run-cli.js'

/**
 * The `sort` example (issue #7): a sampled range partitioner makes the part
 * files, concatenated in order, one file sorted by key bytes — the same as a
 * stable `LC_ALL=C sort -s -k1,1` of the input — sequentially and on a mesh.
 */
const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-sort-'))
const input = join(scratch, 'records.txt')
const R = 4
let records: string[]

const parts = (dir: string): string[] => readdirSync(dir).filter((f) => f.startsWith('part-')).sort()
const concatenated = (dir: string): Buffer => Buffer.concat(parts(dir).map((f) => readFileSync(join(dir, f))))

/** What `LC_ALL=C sort -s -t' ' -k1,1` prints: records by key bytes, equal keys in input order. */
function expectedSort (lines: string[]): Buffer {
  const key = (l: string): Buffer => Buffer.from(l.slice(0, l.indexOf(' ')))
  const sorted = lines.map((l, i) => ({ l, i, k: key(l) })).sort((a, b) => Buffer.compare(a.k, b.k) || a.i - b.i)
  return Buffer.from(sorted.map((x) => `${x.l}\n`).join(''))
}

let cluster: Cluster | undefined
beforeAll(() => {
  const prng = new Prng(20261125)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
  // 100-byte records like TeraSort's; a few repeated keys so that ties are exercised.
  records = Array.from({ length: 30_000 }, (_, i) => {
    const key = i % 1000 === 7 ? 'DUPLICATE0' : Array.from({ length: 10 }, () => alphabet[prng.int(0, alphabet.length - 1)]).join('')
    return `${key} ${String(i).padStart(8, '0')}${'x'.repeat(80)}`
  })
  writeFileSync(input, records.map((r) => `${r}\n`).join(''))
})
afterAll(async () => { await cluster?.stop() })

describe('sort example', () => {
  it('run: the parts, concatenated, are the input sorted by key bytes, and each part holds about 1/R', async () => {
    const out = join(scratch, 'seq')
    const res = await runCli(['run', 'sort', '--input', input, '--reduces', String(R), '--split-size', '500000', '--output', out, '-q'])
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    expect(concatenated(out).equals(expectedSort(records))).toBe(true)
    const sizes = parts(out).map((f) => readFileSync(join(out, f)).length)
    expect(sizes).toHaveLength(R)
    const total = sizes.reduce((a, b) => a + b, 0)
    for (const s of sizes) expect(Math.abs(s - total / R)).toBeLessThan(total / R / 4)
  })

  it('run --no-compress: the same parts', async () => {
    const out = join(scratch, 'seq-plain')
    const res = await runCli(['run', 'sort', '--input', input, '--reduces', String(R), '--split-size', '500000', '--no-compress', '--output', out, '-q'])
    expect(res.code).toBe(0)
    for (const f of parts(join(scratch, 'seq'))) expect(readFileSync(join(out, f)).equals(readFileSync(join(scratch, 'seq', f))), f).toBe(true)
  })

  it('submit on a 3-node mesh whose map outputs cross over streams, compressed (the default) and not: part files equal the sequential run byte for byte; the shuffle carries compressed bytes only when asked to', async () => {
    // The coordinator runs no task while two workers can: map output crosses between the two. Over streams, as
    // between hosts: on one host they would be linked in place (local-reads.test.ts).
    cluster = await startCluster({ nodes: 3, env: { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn', MRP2P_LOCAL_SHUFFLE: '0' } })
    await waitForAgreement(cluster, [0, 1, 2], 30_000)
    const c = cluster
    const shuffled = async (): Promise<{ bytes: number, rawBytes: number }> => {
      const total = { bytes: 0, rawBytes: 0 }
      for (const info of (await c.sample()).values()) {
        total.bytes += info.tasks?.shuffle?.bytes ?? 0
        total.rawBytes += info.tasks?.shuffle?.rawBytes ?? 0
      }
      return total
    }
    const submitSort = async (name: string, extra: string[]): Promise<{ bytes: number, rawBytes: number }> => {
      const before = await shuffled()
      const out = join(scratch, name)
      const res = await runCli(['submit', 'sort', '--input', input, '--reduces', String(R), '--split-size', '500000', ...extra, '--output', out, '--bootstrap', c.nodes[0].addr, '-q'], { timeoutMs: 120_000 })
      if (res.code !== 0) throw new Error(`submit failed: ${res.stderr}`)
      for (const f of parts(join(scratch, 'seq'))) expect(readFileSync(join(out, f)).equals(readFileSync(join(scratch, 'seq', f))), `${name} ${f}`).toBe(true)
      const after = await shuffled()
      return { bytes: after.bytes - before.bytes, rawBytes: after.rawBytes - before.rawBytes }
    }
    const packed = await submitSort('mesh', [])
    const plain = await submitSort('mesh-plain', ['--no-compress'])
    console.info(`shuffle: compressed ${packed.bytes} bytes for ${packed.rawBytes} of records; --no-compress ${plain.bytes} for ${plain.rawBytes}`)
    // Records of 80 'x's and a counter: brotli makes them several times smaller.
    expect(packed.rawBytes).toBeGreaterThan(3 * packed.bytes)
    expect(plain.rawBytes).toBeGreaterThan(0)
    // Stored blocks: the records plus a 9-byte header per block.
    expect(plain.bytes).toBeGreaterThanOrEqual(plain.rawBytes)
    expect(plain.bytes).toBeLessThan(plain.rawBytes * 1.01)
  }, 180_000)
})
