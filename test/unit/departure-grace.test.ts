import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DepartureGrace } from '../../src/dataset/departure-grace.js'

describe('DepartureGrace (src/dataset/departure-grace.ts)', () => {
  it('keeps a departed member ranked until its grace ends, then drops it for good', () => {
    const g = new DepartureGrace(30_000)
    expect(g.rankable(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c'])
    expect(g.rankable(['a', 'b'], 1_000)).toEqual(['a', 'b', 'c'])
    expect(g.rankable(['a', 'b'], 30_999)).toEqual(['a', 'b', 'c'])
    expect(g.rankable(['a', 'b'], 31_000)).toEqual(['a', 'b'])
    expect(g.rankable(['a', 'b'], 90_000)).toEqual(['a', 'b'])
  })

  it('a member back in time is alive again, and a later departure starts a new grace', () => {
    const g = new DepartureGrace(10_000)
    g.rankable(['a', 'b'], 0)
    expect(g.rankable(['a'], 5_000)).toEqual(['a', 'b'])
    expect(g.rankable(['a', 'b'], 9_000)).toEqual(['a', 'b'])
    expect(g.rankable(['a'], 50_000)).toEqual(['a', 'b'])
    expect(g.rankable(['a'], 59_999)).toEqual(['a', 'b'])
    expect(g.rankable(['a'], 60_000)).toEqual(['a'])
  })

  it('with no grace, ranks the alive alone', () => {
    const g = new DepartureGrace(0)
    g.rankable(['a', 'b'], 0)
    expect(g.rankable(['a'], 0)).toEqual(['a'])
  })

  it('ranks exactly the alive members and those gone for less than the grace (random histories)', () => {
    const peers = ['a', 'b', 'c', 'd']
    fc.assert(fc.property(fc.array(fc.tuple(fc.subarray(peers), fc.integer({ min: 0, max: 20_000 })), { maxLength: 30 }), (steps) => {
      const grace = 10_000
      const g = new DepartureGrace(grace)
      let previous: string[] = []
      const departedAt = new Map<string, number>()
      let now = 0
      for (const [alive, dt] of steps) {
        now += dt
        for (const p of previous) if (!alive.includes(p)) departedAt.set(p, now)
        for (const p of alive) departedAt.delete(p)
        const want = [...alive, ...[...departedAt].filter(([, at]) => now - at < grace).map(([p]) => p)].sort()
        expect([...g.rankable(alive, now)].sort()).toEqual(want)
        previous = alive
      }
    }))
  })
})
