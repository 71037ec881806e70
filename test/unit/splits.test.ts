import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { planSplits, readSplit } from '../../src/mapreduce/splits.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-splits-'))
let n = 0

describe('input splits', () => {
  it('cut large files only at line ends, cover every byte once, and number lines right', async () => {
    const text = fc.array(fc.constantFrom('x', 'yy', 'é', '\n', '\n\n', 'long line without end '), { maxLength: 200 }).map((a) => a.join(''))
    await fc.assert(fc.asyncProperty(text, fc.integer({ min: 1, max: 120 }), async (content, splitSize) => {
      const name = `f-${n++}.txt`
      writeFileSync(join(dir, name), content)
      const splits = await planSplits([name], { cwd: dir, splitSize })
      const bytes = Buffer.from(content)
      expect(Buffer.concat(splits.map((s) => Buffer.from(readSplit(s))))).toEqual(bytes)
      splits.forEach((s, i) => {
        expect(s.document).toBe(name)
        expect(s.index).toBe(i)
        expect(s.firstLine).toBe(bytes.subarray(0, s.offset).filter((b) => b === 0x0a).length + 1)
        if (i < splits.length - 1) {
          expect(bytes[s.offset + s.length - 1]).toBe(0x0a)
          expect(s.length).toBeGreaterThanOrEqual(splitSize)
        }
      })
    }), { numRuns: 400 })
  })

  it('keep one split per file up to the split size, in input order, names as given', async () => {
    writeFileSync(join(dir, 'a.txt'), 'one\n')
    writeFileSync(join(dir, 'b.txt'), 'two\n')
    const splits = await planSplits(['./b.txt', 'a.txt'], { cwd: dir, splitSize: 100 })
    expect(splits.map((s) => [s.document, s.index, s.length])).toEqual([['./b.txt', 0, 4], ['a.txt', 1, 4]])
    expect(readFileSync(splits[0].path, 'utf8')).toBe('two\n')
  })
})
