import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { rangePartition } from '../../src/mapreduce/job-api.js'
import { compareKeys } from '../../src/mapreduce/key-order.js'
import { bytesPartitioner, partitioner } from '../../src/mapreduce/partitioner.js'
import { UserCodeError } from '../../src/util/errors.js'

const ctx = (reduces: number, params: Record<string, string>): { reduces: number, params: Record<string, string> } => ({ reduces, params })
const key = fc.string({ unit: fc.constantFrom('a', 'b', 'z', 'é', '日', '😀', '\uff21', '\u0000'), maxLength: 5 })

describe('rangePartition', () => {
  it('sends a key to the number of cuts at or below it, capped at R−1, on strings and on key bytes alike', () => {
    fc.assert(fc.property(fc.array(key, { maxLength: 8 }), fc.array(key, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 10 }), (rawCuts, keys, reduces) => {
      const cuts = [...rawCuts].sort(compareKeys)
      const job = { keyValueSeparator: ' ', partition: rangePartition('cuts') }
      const c = ctx(reduces, { cuts: JSON.stringify(cuts) })
      const ofString = partitioner(job, 'sort', c)
      const ofBytes = bytesPartitioner(job, 'sort', c)
      for (const k of keys) {
        const want = Math.min(cuts.filter((cut) => compareKeys(cut, k) <= 0).length, reduces - 1)
        const bytes = Buffer.from(`x${k}y`)
        expect([ofString(k), ofBytes(bytes, 1, bytes.length - 1)]).toEqual([want, want])
      }
    }), { numRuns: 500 })
  })

  it('reads its cuts from the parameter it names, and puts every key in partition 0 without one', () => {
    const job = { keyValueSeparator: ' ', partition: rangePartition('splits') }
    expect(bytesPartitioner(job, 'sort', ctx(3, { splits: '["m"]' }))(Buffer.from('z'), 0, 1)).toBe(1)
    expect(bytesPartitioner(job, 'sort', ctx(3, {}))(Buffer.from('z'), 0, 1)).toBe(0)
  })

  for (const [bad, why] of [['[1, 2]', 'must be a JSON array of strings'], ['{"a": "b"}', 'must be a JSON array of strings'], ['[m', 'is not JSON']]) {
    it(`refuses cuts ${bad} with a one-line error naming the parameter`, () => {
      const job = { keyValueSeparator: ' ', partition: rangePartition('cuts') }
      const attempt = (): unknown => bytesPartitioner(job, 'sort', ctx(3, { cuts: bad }))
      expect(attempt).toThrow(UserCodeError)
      expect(attempt).toThrow(new RegExp(`parameter cuts of a range partition ${why}`))
      expect(() => partitioner(job, 'sort', ctx(3, { cuts: bad }))('k')).toThrow(new RegExp(`parameter cuts of a range partition ${why}`))
    })
  }
})
