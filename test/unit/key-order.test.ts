import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compareKeys, needsByteOrderCompare, sortKeys } from '../../src/mapreduce/key-order.js'

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

describe('key order', () => {
  it('orders like the keys\' UTF-8 bytes', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) =>
      Math.sign(compareKeys(a, b)) === Math.sign(byBytes(a, b))), { numRuns: 5000 })
  })

  it('puts a character above U+FFFF after U+E000–FFFF, unlike JavaScript\'s <', () => {
    const astral = '𝐀' // U+1D400, UTF-16 starts with 0xD835
    const bmpHigh = '\uff21' // Ａ U+FF21
    expect(astral < bmpHigh).toBe(true)
    expect(compareKeys(astral, bmpHigh)).toBeGreaterThan(0)
    expect(needsByteOrderCompare(astral)).toBe(true)
    expect(needsByteOrderCompare('plain ascii')).toBe(false)
  })

  it('sorts with either path to the same byte order', () => {
    fc.assert(fc.property(fc.array(fc.string({ unit: 'grapheme' })), (keys) => {
      const expected = [...keys].sort(byBytes)
      const high = keys.some(needsByteOrderCompare)
      expect(sortKeys([...keys], high)).toEqual(expected)
    }))
  })
})
