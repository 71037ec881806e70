import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ArraySource, forEachGroup, KWayMerge } from '../../src/mapreduce/merge.js'

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

function groups (sources: Array<Array<[string, string]>>): Array<[string, string[]]> {
  const out: Array<[string, string[]]> = []
  forEachGroup(new KWayMerge(sources.map((s) => new ArraySource(s))), (k, v) => out.push([k, v]))
  return out
}

describe('k-way merge', () => {
  it('groups every key once, in byte order, values in source order then emit order (stable)', () => {
    const key = fc.constantFrom('', 'a', 'a b', 'b', 'é', '日本', '𝐀', '\uff21', 'z z', 'ß')
    const source = fc.array(fc.tuple(key, fc.string({ maxLength: 3 })), { maxLength: 20 })
      .map((recs) => recs.map(([k], i): [string, string] => [k, `${i}`]).sort((x, y) => byBytes(x[0], y[0]) || Number(x[1]) - Number(y[1])))
    fc.assert(fc.property(fc.array(source, { maxLength: 6 }), (sources) => {
      const expected = new Map<string, string[]>()
      sources.forEach((recs, s) => { for (const [k, v] of recs) expected.set(k, [...(expected.get(k) ?? []), `${s}:${v}`]) })
      const tagged = sources.map((recs, s) => recs.map(([k, v]): [string, string] => [k, `${s}:${v}`]))
      const got = groups(tagged)
      expect(got.map(([k]) => k)).toEqual([...expected.keys()].sort(byBytes))
      for (const [k, values] of got) expect(values).toEqual(expected.get(k))
    }), { numRuns: 500 })
  })

  it('handles no sources, empty sources and a single record', () => {
    expect(groups([])).toEqual([])
    expect(groups([[], [], []])).toEqual([])
    expect(groups([[], [['only', '1']], []])).toEqual([['only', ['1']]])
  })

  it('keeps keys with spaces and non-ASCII keys apart and in byte order', () => {
    expect(groups([[['a b', '1'], ['é', '2']], [['a', '3'], ['a b', '4'], ['𝐀', '5']], [['\uff21', '6']]]))
      .toEqual([['a', ['3']], ['a b', ['1', '4']], ['é', ['2']], ['\uff21', ['6']], ['𝐀', ['5']]])
  })
})
