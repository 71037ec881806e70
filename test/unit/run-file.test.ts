import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CorruptRunError, RunReader, RunWriter } from '../../src/mapreduce/run-file.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-run-file-'))
let n = 0

function roundTrip (records: Array<[string, string]>, chunk: number): Array<[string, string]> {
  const path = join(dir, `run-${n++}`)
  const w = RunWriter.create(path)
  for (const [k, v] of records) w.add(k, v)
  const stats = w.close()
  expect(stats.records).toBe(records.length)
  expect(stats.bytes).toBe(readFileSync(path).length)
  const r = RunReader.open(path, chunk)
  const out: Array<[string, string]> = []
  while (r.next()) out.push([r.key, r.value])
  r.close()
  return out
}

describe('run files', () => {
  it('read back every record, across chunk boundaries and for records larger than a chunk', () => {
    const rec = fc.tuple(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 300 }))
    fc.assert(fc.property(fc.array(rec, { maxLength: 60 }), fc.integer({ min: 1, max: 64 }), (records, chunk) => {
      expect(roundTrip(records, chunk)).toEqual(records)
    }), { numRuns: 300 })
  })

  it('write varint lengths then UTF-8 bytes', () => {
    const path = join(dir, 'layout')
    const w = RunWriter.create(path)
    w.add('é', 'xy')
    w.close()
    expect([...readFileSync(path)]).toEqual([2, 0xc3, 0xa9, 2, 0x78, 0x79])
  })

  it('refuse a truncated file instead of yielding a short record', () => {
    const path = join(dir, 'truncated')
    const w = RunWriter.create(path)
    w.add('key', 'a value long enough to cut')
    w.close()
    truncateSync(path, 10)
    const r = RunReader.open(path, 4)
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
