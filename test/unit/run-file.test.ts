import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BLOCK_HEADER, BlockWriter } from '../../src/mapreduce/run-blocks.js'
import { CorruptRunError, RunReader, RunWriter } from '../../src/mapreduce/run-file.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-run-file-'))
let n = 0

function roundTrip (records: Array<[string, string]>, blockBytes: number, compress = true): Array<[string, string]> {
  const path = join(dir, `run-${n++}`)
  const w = RunWriter.create(path, { blockBytes, compress })
  for (const [k, v] of records) w.add(k, v)
  const stats = w.close()
  expect(stats.records).toBe(records.length)
  expect(stats.bytes).toBe(readFileSync(path).length)
  expect(stats.rawBytes).toBe(records.reduce((sum, [k, v]) => sum + encodedLength(k) + encodedLength(v), 0))
  const r = RunReader.open(path)
  const out: Array<[string, string]> = []
  while (r.next()) out.push([r.key, r.value])
  r.close()
  return out
}

/** A record's bytes in a run: varint length, then UTF-8. */
function encodedLength (s: string): number {
  const n = Buffer.byteLength(s)
  let v = 1
  for (let x = n; x >= 0x80; x = Math.floor(x / 128)) v++
  return v + n
}

describe('run files', () => {
  it('read back every record, compressed or not, across block boundaries and for records larger than a block', () => {
    const rec = fc.tuple(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 300 }))
    fc.assert(fc.property(fc.array(rec, { maxLength: 60 }), fc.integer({ min: 1, max: 4096 }), fc.boolean(), (records, blockBytes, compress) => {
      expect(roundTrip(records, blockBytes, compress)).toEqual(records)
    }), { numRuns: 300 })
  })

  it('write blocks of varint lengths then UTF-8 bytes: stored as is when compression does not pay', () => {
    const path = join(dir, 'layout')
    const w = RunWriter.create(path)
    w.add('é', 'xy')
    w.close()
    // codec 0 (stored), 6 bytes stored, 6 raw, then the record
    expect([...readFileSync(path)]).toEqual([0, 6, 0, 0, 0, 6, 0, 0, 0, 2, 0xc3, 0xa9, 2, 0x78, 0x79])
  })

  it('compress blocks that are worth it, and stop trying on data that is not', () => {
    const dots = join(dir, 'compressible')
    const w = RunWriter.create(dots)
    for (let i = 0; i < 20_000; i++) w.add(`key-${String(i).padStart(8, '0')}`, '.'.repeat(80))
    const packed = w.close()
    expect(packed.bytes * 4).toBeLessThan(packed.rawBytes)
    expect(readFileSync(dots)[0]).toBe(1)

    // Random bytes: four blocks that do not shrink, then the rest is stored without trying.
    const noise = join(dir, 'incompressible')
    const b = new BlockWriter(noise, { blockBytes: 4096 })
    for (let i = 0; i < 50; i++) {
      const buf = b.reserve(4096)
      randomBytes(4096).copy(buf, b.pos)
      b.pos += 4096
    }
    expect(b.close()).toBe(50 * (4096 + BLOCK_HEADER))
    expect(b.rawBytes).toBe(50 * 4096)
    expect(b.tries).toBe(4)
  })

  it('refuse a block that does not decompress to its stated length', () => {
    const path = join(dir, 'bad-brotli')
    writeFileSync(path, Buffer.from([1, 4, 0, 0, 0, 100, 0, 0, 0, 1, 2, 3, 4]))
    const r = RunReader.open(path)
    expect(() => r.next()).toThrow(CorruptRunError)
    r.close()
  })

  it('refuse a truncated file instead of yielding a short record', () => {
    const path = join(dir, 'truncated')
    const w = RunWriter.create(path)
    w.add('key', 'a value long enough to cut')
    w.close()
    truncateSync(path, 10)
    const r = RunReader.open(path)
    expect(() => r.next()).toThrow(CorruptRunError)
    r.close()
  })

  it('refuse an impossible length', () => {
    const path = join(dir, 'garbage')
    writeFileSync(path, Buffer.alloc(16, 0xff))
    const r = RunReader.open(path)
    expect(() => r.next()).toThrow(CorruptRunError)
    r.close()
  })

  it('will not overwrite an existing run', () => {
    const path = join(dir, 'exists')
    writeFileSync(path, 'x')
    expect(() => RunWriter.create(path)).toThrow(/EEXIST/)
  })
})
