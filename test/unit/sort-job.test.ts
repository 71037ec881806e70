import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import sortJob from '../../examples/sort.js'
import type { Job } from '../../src/mapreduce/job-api.js'
import { runMapTask } from '../../src/mapreduce/map-task.js'
import { RunReader } from '../../src/mapreduce/run-file.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-sort-job-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })
let n = 0

/** The sort's records as documented: a line is `key payload`, the key everything before the first space; empty lines are no record. */
function byLines (text: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const space = line.indexOf(' ')
    out.push(space < 0 ? [line, ''] : [line.slice(0, space), line.slice(space + 1)])
  }
  return out
}

/** In key byte order, equal keys in input order: what one map task's one run must hold. */
const inRunOrder = (records: Array<[string, string]>): Array<[string, string]> =>
  records.map((r, i) => ({ r, i })).sort((a, b) => Buffer.compare(Buffer.from(a.r[0]), Buffer.from(b.r[0])) || a.i - b.i).map(({ r }) => r)

/** The records one map task of the sort writes for `text` (its lines read as bytes by the engine), decoded. */
async function mapped (text: string, memoryBytes?: number): Promise<{ records: Array<[string, string]>, lines: number, emitted: number }> {
  const run = join(dir, `run-${n++}`)
  const result = await runMapTask({
    job: sortJob as Job,
    jobName: 'sort',
    split: { document: 'd', index: n, offset: 0, firstLine: 1 },
    contents: Buffer.from(text),
    reduces: 1,
    params: {},
    outputPaths: [run],
    spillDir: dir,
    options: { memoryBytes, compress: false }
  })
  const reader = RunReader.open(run)
  const records: Array<[string, string]> = []
  try {
    while (reader.next()) records.push([reader.key, reader.value])
  } finally {
    reader.close()
    rmSync(run)
  }
  return { records, lines: result.lines, emitted: result.emitted }
}

describe('the sort job\'s records (examples/sort.ts: no map, keyValueSeparator \' \')', () => {
  // Pieces longer than 127 bytes make values whose length takes two bytes, where a run record is not the line's copy.
  const piece = fc.constantFrom('a', 'b', ' ', '  ', '\n', '\n\n', '\r', 'é', '𝒜', 'x'.repeat(130), 'é'.repeat(70))

  it('is one record per non-empty line, keyed by what precedes its first space, with or without spills', async () => {
    await fc.assert(fc.asyncProperty(fc.array(piece, { maxLength: 80 }), fc.constantFrom(undefined, 64, 300), async (parts, memoryBytes) => {
      const text = parts.join('')
      const got = await mapped(text, memoryBytes)
      expect(got.records).toEqual(inRunOrder(byLines(text)))
      expect(got.emitted).toBe(byLines(text).length)
      expect(got.lines).toBe(text === '' ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0))
    }), { numRuns: 1_000 })
  })

  it('reads a line without a space as a key alone, however far the next space is', async () => {
    expect((await mapped('k1\nk2 v2\n\nk3\n')).records).toEqual([['k1', ''], ['k2', 'v2'], ['k3', '']])
    expect((await mapped(`${'x'.repeat(10)}\n`.repeat(3) + 'y z')).records).toEqual([['xxxxxxxxxx', ''], ['xxxxxxxxxx', ''], ['xxxxxxxxxx', ''], ['y', 'z']])
  })

  it('keeps bytes that are not UTF-8 as they are', async () => {
    const run = join(dir, `run-${n++}`)
    await runMapTask({
      job: sortJob as Job,
      jobName: 'sort',
      split: { document: 'd', index: n, offset: 0, firstLine: 1 },
      contents: Buffer.from([0x62, 0xff, 0x20, 0xfe, 0x0a, 0x61, 0x20, 0x7a, 0x0a]),
      reduces: 1,
      params: {},
      outputPaths: [run],
      spillDir: dir
    })
    const reader = RunReader.open(run)
    const keys: string[] = []
    try {
      while (reader.nextRecord()) keys.push(`${reader.buf.toString('hex', reader.keyStart, reader.keyEnd)}=${reader.buf.toString('hex', reader.valueStart, reader.recordEnd)}`)
    } finally {
      reader.close()
    }
    expect(keys).toEqual(['61=7a', '62ff=fe'])
  })
})
