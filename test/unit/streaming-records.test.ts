import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { defaultPartition } from '../../src/mapreduce/fnv1a.js'
import { compareKeys } from '../../src/mapreduce/key-order.js'
import { bytePartition, RecordLineReader, RecordLineWriter } from '../../src/mapreduce/streaming-records.js'

const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1')

/** Feeds `bytes` to a reader in the given cut points and returns its records, as bytes. */
function read (bytes: Buffer, cuts: number[]): Array<[string, string]> {
  const out: Array<[string, string]> = []
  const reader = new RecordLineReader((k, v) => { out.push([k, v]) })
  let at = 0
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    reader.push(bytes.subarray(at, cut))
    at = cut
  }
  reader.push(bytes.subarray(at))
  reader.end()
  return out
}

describe('streaming records: a command\'s lines as byte-string keys and values', () => {
  it('cuts at the first tab; no tab makes the line the key; a last line without newline counts', () => {
    expect(read(Buffer.from('a\t1\nb\tx\ty\nno tab\n\t\nlast\t9'), [])).toEqual([
      ['a', '1'], ['b', 'x\ty'], ['no tab', ''], ['', ''], ['last', '9']
    ])
    expect(read(Buffer.from(''), [])).toEqual([])
    expect(read(Buffer.from('\n\n'), [])).toEqual([['', ''], ['', '']])
  })

  it('gives the same records wherever the chunks are cut, and any bytes come back unchanged', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 8 }), (raw, cuts) => {
      const bytes = Buffer.from(raw)
      const whole = read(bytes, [])
      expect(read(bytes, cuts.map((c) => c % (bytes.length + 1)))).toEqual(whole)
      // Writing the records back gives the input, but for the tab a tab-less line gains and a newline at the end.
      const back = Buffer.concat(whole.map(([k, v]) => Buffer.from(`${k}\t${v}\n`, 'latin1')))
      const lines = bytes.length === 0 ? [] : bytes.toString('latin1').replace(/\n$/, '').split('\n')
      expect(back.toString('latin1')).toBe(lines.map((l) => (l.includes('\t') ? l : `${l}\t`) + '\n').join(''))
    }), { numRuns: 2000 })
  })

  it('partitions a byte string as the default partitioner does the same UTF-8 key', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), fc.integer({ min: 1, max: 97 }), (key, reduces) =>
      bytePartition(latin1(Buffer.from(key)), reduces) === defaultPartition(key, reduces)), { numRuns: 5000 })
  })

  it('orders byte strings as their bytes, the engine\'s key order', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ maxLength: 20 }), (a, b) =>
      Math.sign(compareKeys(latin1(a), latin1(b))) === Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)))), { numRuns: 5000 })
  })

  it('writes key<TAB>value lines in large chunks, and a record larger than a chunk whole', async () => {
    const chunks: Buffer[] = []
    const writer = new RecordLineWriter(async (chunk) => { chunks.push(Buffer.from(chunk)); return true }, 16)
    expect(await writer.add('k\u00ff', 'v')).toBe(true)
    expect(await writer.add('long', 'x'.repeat(40))).toBe(true)
    expect(await writer.add('z', '')).toBe(true)
    await writer.flush()
    expect(Buffer.concat(chunks)).toEqual(Buffer.concat([Buffer.from([0x6b, 0xff, 0x09, 0x76, 0x0a]), Buffer.from(`long\t${'x'.repeat(40)}\nz\t\n`)]))
    expect(chunks.length).toBe(3)
  })

  it('stops once the command stops reading', async () => {
    let open = true
    const writer = new RecordLineWriter(async () => open, 8)
    expect(await writer.add('a', 'b')).toBe(true)
    open = false
    expect(await writer.add('c', 'dddddd')).toBe(false)
  })
})
