import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { defaultPartition } from '../../src/mapreduce/fnv1a.js'
import type { Job } from '../../src/mapreduce/job-api.js'
import { MapOutputBuffer } from '../../src/mapreduce/map-output-buffer.js'
import { MapOutputBytes } from '../../src/mapreduce/map-output-bytes.js'
import { partitioner } from '../../src/mapreduce/partitioner.js'
import { RunReader } from '../../src/mapreduce/run-file.js'

let dir: string
let n = 0
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'mrp2p-map-output-')) })

const noCombiner: Job = { map: () => {}, reduce: (_k, values) => values.join(',') }
const ctx = (reduces: number): { params: Record<string, string>, reduces: number } => ({ params: {}, reduces })

/** Each run as the bytes of its records, and as the records decoded. */
function readRuns (paths: readonly string[]): Array<{ raw: string, records: Array<[string, string]> }> {
  return paths.map((path) => {
    const reader = RunReader.open(path)
    const raw: string[] = []
    const records: Array<[string, string]> = []
    try {
      while (reader.nextRecord()) {
        raw.push(reader.buf.toString('hex', reader.recordStart, reader.recordEnd))
        records.push([reader.buf.toString('utf8', reader.keyStart, reader.keyEnd), reader.buf.toString('utf8', reader.valueStart, reader.recordEnd)])
      }
    } finally {
      reader.close()
    }
    return { raw: raw.join(''), records }
  })
}

const paths = (reduces: number): string[] => {
  n++
  return Array.from({ length: reduces }, (_, p) => join(dir, `run-${n}-${p}`))
}

// Short and long strings around the lengths where the length varint changes (42 and 5461 UTF-16 units, 127 bytes),
// in 1- to 4-byte characters: the surrogate pair is one character of 4 bytes.
const unit = fc.constantFrom('a', 'b', 'z', ' ', 'é', '日', '😀', '\uff21', '\u0000')
const text = fc.oneof(
  fc.array(unit, { maxLength: 6 }).map((cs) => cs.join('')),
  fc.array(unit, { minLength: 30, maxLength: 140 }).map((cs) => cs.join('')),
  fc.tuple(unit, fc.integer({ min: 5400, max: 5600 })).map(([c, k]) => c.repeat(k))
)
const records = fc.array(fc.tuple(text, text), { maxLength: 120 })

describe('map output held as bytes (a job with no combiner)', () => {
  it('writes the same runs, byte for byte, as the buffer that groups by key: keys in byte order, equal keys in emit order', () => {
    fc.assert(fc.property(records, fc.integer({ min: 1, max: 4 }), (recs, reduces) => {
      const grouped = new MapOutputBuffer(noCombiner, 'test', ctx(reduces), { compress: false })
      const bytes = new MapOutputBytes(partitioner(noCombiner, 'test', ctx(reduces)), { compress: false })
      for (const [k, v] of recs) {
        grouped.add(k, v)
        bytes.add(k, v)
      }
      expect(bytes.size).toBe(recs.length)
      const want = paths(reduces)
      const got = paths(reduces)
      const wantStats = grouped.writeRuns(want)
      const gotStats = bytes.writeRuns(got)
      expect(gotStats.map((s) => s.records)).toEqual(wantStats.map((s) => s.records))
      const wantRuns = readRuns(want)
      expect(readRuns(got)).toEqual(wantRuns)
      // …and those are what the records say: each in its partition, sorted, equal keys in emit order.
      wantRuns.forEach((run, p) => {
        const expected = recs.map(([k, v], i) => ({ k, v, i }))
          .filter(({ k }) => defaultPartition(k, reduces) === p)
          .sort((a, b) => Buffer.compare(Buffer.from(a.k), Buffer.from(b.k)) || a.i - b.i)
          .map(({ k, v }) => [k, v])
        expect(run.records).toEqual(expected)
      })
    }), { numRuns: 150 })
  })

  it('starts empty again after a spill, and grows past its first sizes', () => {
    const bytes = new MapOutputBytes(() => 0, { compress: false })
    const big = 'x'.repeat(300_000)
    for (let i = 0; i < 5000; i++) bytes.add(`k${i % 7}`, String(i))
    bytes.add('big', big)
    expect(bytes.bytes).toBeGreaterThan(300_000)
    const first = paths(1)
    expect(bytes.writeRuns(first)[0].records).toBe(5001)
    expect(bytes.size).toBe(0)
    expect(bytes.bytes).toBe(0)
    bytes.add('b', '2')
    bytes.add('a', '1')
    const second = paths(1)
    bytes.writeRuns(second)
    expect(readRuns(second)[0].records).toEqual([['a', '1'], ['b', '2']])
    const firstRecords = readRuns(first)[0].records
    expect(firstRecords.find(([k]) => k === 'big')?.[1]).toBe(big)
    expect(firstRecords.filter(([k]) => k === 'k3').map(([, v]) => Number(v))).toEqual(Array.from({ length: 5000 }, (_, i) => i).filter((i) => i % 7 === 3))
  })

  it('names the job and the key when the partition function returns no reduce', () => {
    const job: Job = { ...noCombiner, partition: (key) => (key === 'bad' ? 7 : 0) }
    const bytes = new MapOutputBytes(partitioner(job, 'myjob', ctx(2)))
    bytes.add('good', '1')
    expect(() => { bytes.add('bad', '1') }).toThrow(/myjob.*partition returned 7 for key "bad"/)
    expect(bytes.size).toBe(1)
  })
})
