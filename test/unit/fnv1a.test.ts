import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { defaultPartition, fnv1a32 } from '../../src/mapreduce/fnv1a.js'

/** The textbook definition over bytes, to check the allocation-free version against. */
function fnvOverBytes (s: string): number {
  let h = 0x811c9dc5
  for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0
  return h >>> 0
}

describe('fnv1a32', () => {
  it('matches the published FNV-1a 32-bit test vectors', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5)
    expect(fnv1a32('a')).toBe(0xe40c292c)
    expect(fnv1a32('b')).toBe(0xe70c2de5)
    expect(fnv1a32('c')).toBe(0xe60c2c52)
    expect(fnv1a32('foobar')).toBe(0xbf9cf968)
  })

  it('hashes the UTF-8 bytes of any string, lone surrogates included', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => fnv1a32(s) === fnvOverBytes(s)), { numRuns: 2000 })
    expect(fnv1a32('日本𝐀é\ud800x')).toBe(fnvOverBytes('日本𝐀é\ud800x'))
  })

  it('partitions as (hash & 0x7fffffff) % R, always in range', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), fc.integer({ min: 1, max: 1000 }), (s, r) => {
      const p = defaultPartition(s, r)
      return p === (fnvOverBytes(s) & 0x7fffffff) % r && p >= 0 && p < r
    }))
  })
})
