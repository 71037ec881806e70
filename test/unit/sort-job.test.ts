import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import sortJob from '../../examples/sort.js'
import type { Job, MapContext } from '../../src/mapreduce/job-api.js'

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

function emits (text: string): Array<[string, string]> {
  const out: Array<[string, string]> = []
  const ctx = { params: {}, reduces: 2, split: { document: 'd', index: 0, offset: 0, firstLine: 1 } } satisfies MapContext
  void (sortJob as Job).map('d', text, (k, v) => { out.push([k, v]) }, ctx)
  return out
}

describe('the sort job\'s map (examples/sort.ts)', () => {
  it('emits one record per non-empty line, keyed by what precedes its first space', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom('a', 'b', ' ', '  ', '\n', '\n\n', '\r', 'é', '𝒜'), { maxLength: 80 }), (parts) => {
      const text = parts.join('')
      expect(emits(text)).toEqual(byLines(text))
    }), { numRuns: 3_000 })
  })

  it('reads a line without a space as a key alone, however far the next space is', () => {
    expect(emits('k1\nk2 v2\n\nk3\n')).toEqual([['k1', ''], ['k2', 'v2'], ['k3', '']])
    expect(emits(`${'x'.repeat(10)}\n`.repeat(3) + 'y z')).toEqual([['xxxxxxxxxx', ''], ['xxxxxxxxxx', ''], ['xxxxxxxxxx', ''], ['y', 'z']])
  })
})
