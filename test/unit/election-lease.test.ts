import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FailureDetector } from '../../src/election/failure-detector.js'
import { HolderLease } from '../../src/election/lease.js'
import { Voter } from '../../src/election/vote.js'
import { DEFAULT_ELECTION_CONFIG } from '../../src/election/types.js'

const L = DEFAULT_ELECTION_CONFIG.leaseMs
const D = DEFAULT_ELECTION_CONFIG.driftBound

describe('HolderLease', () => {
  it('is valid only once a majority of the current voters acked, from that send on', () => {
    const lease = new HolderLease(1, L, D)
    const voters = ['h', 'a', 'b', 'c', 'd']
    const s0 = lease.send(1000)
    expect(lease.recount('h', voters)).toBe(Number.NEGATIVE_INFINITY)
    lease.ack('a', s0)
    expect(lease.isValid(1000)).toBe(false)
    lease.ack('b', s0)
    lease.recount('h', voters)
    expect(lease.validUntil).toBeCloseTo(1000 + L * (1 - D))
    expect(lease.newestCovered).toBe(true)
    const s1 = lease.send(2000)
    expect(lease.newestCovered).toBe(false)
    // Cumulative: a later ack covers the earlier send too.
    lease.ack('c', s1)
    lease.ack('a', s1)
    lease.recount('h', voters)
    expect(lease.validUntil).toBeCloseTo(2000 + L * (1 - D))
  })

  it('never moves its end back when the view grows, and ignores acks of sends it never made', () => {
    const lease = new HolderLease(1, L, D)
    const s0 = lease.send(0)
    lease.ack('a', s0)
    lease.ack('z', 17)
    expect(lease.recount('h', ['h', 'a', 'b'])).toBeCloseTo(L * (1 - D))
    lease.send(1000)
    expect(lease.recount('h', ['h', 'a', 'b', 'c', 'd', 'e'])).toBeCloseTo(L * (1 - D))
  })
})

describe('Voter', () => {
  it('grants one claimant per epoch, defers while promised elsewhere, refuses the past', () => {
    const v = new Voter(0, 0)
    expect(v.canGrant('c1', 1, 0, 10)).toBe('grant')
    v.grant('c1', 1, 10, L)
    expect(v.canGrant('c1', 1, 1, 20)).toBe('grant')
    expect(v.canGrant('c2', 1, 1, 20)).toBe('defer')
    expect(v.canGrant('c2', 2, 1, 20)).toBe('defer')
    expect(v.canGrant('c2', 2, 1, 10 + L)).toBe('grant')
    expect(v.canGrant('c2', 0, 1, 10 + L)).toBe('refuse')
    // c1 gave up epoch 1: it is free again.
    v.released('c1', 1)
    expect(v.canGrant('c2', 1, 1, 20)).toBe('grant')
  })

  it('after a restart votes only above the persisted epoch and grants nothing for one lease', () => {
    const v = new Voter(7, 5000)
    expect(v.canGrant('c', 7, 7, 6000)).toBe('refuse')
    expect(v.canGrant('c', 8, 7, 4000)).toBe('defer')
    expect(v.canGrant('c', 8, 7, 5000)).toBe('grant')
  })

  it('acks a higher-epoch lease over a promise, but not another holder in the promised epoch', () => {
    const v = new Voter(0, 0)
    v.ack('h1', 3, 0, L)
    expect(v.canAck('h2', 3, 3, 10)).toBe(false)
    expect(v.canAck('h2', 4, 3, 10)).toBe(true)
    expect(v.canAck('h1', 2, 3, 10)).toBe(false)
  })
})

describe('the holder lets go first', () => {
  /**
   * The lemma the whole election rests on: when the holder stops counting
   * itself as holder (its clock), a majority of the voters (itself included)
   * is still bound by a promise (their clocks), whatever the clock rates within
   * the drift bound, the message delays and the losses.
   */
  it('whatever the clock rates within the bound, delays and losses', () => {
    const rate = fc.double({ min: 1 - D / 2, max: 1 + D / 2, noNaN: true })
    const scenario = fc.record({
      holderRate: rate,
      voters: fc.array(fc.record({
        rate,
        offset: fc.double({ min: 0, max: 1e6, noNaN: true }),
        // Per renewal: undefined = lost, else the delay in true ms.
        delays: fc.array(fc.option(fc.double({ min: 0, max: 300, noNaN: true }), { nil: undefined }), { minLength: 6, maxLength: 6 })
      }), { minLength: 2, maxLength: 8 }),
      gaps: fc.array(fc.double({ min: 0, max: 1500, noNaN: true }), { minLength: 6, maxLength: 6 })
    })
    fc.assert(fc.property(scenario, s => {
      const holderLocal = (t: number): number => 5000 + t * s.holderRate
      const lease = new HolderLease(1, L, D)
      const voters = s.voters.map((v, i) => ({ id: `v${i}`, ...v, voter: new Voter(0, 0) }))
      let t = 0
      for (let k = 0; k < 6; k++) {
        t += s.gaps[k]
        const seq = lease.send(holderLocal(t))
        for (const v of voters) {
          const d = v.delays[k]
          if (d === undefined) continue
          v.voter.ack('h', 1, v.offset + (t + d) * v.rate, L)
          lease.ack(v.id, seq)
        }
      }
      const end = lease.recount('h', ['h', ...voters.map(v => v.id)])
      if (end === Number.NEGATIVE_INFINITY) return
      const endTrue = (end - 5000) / s.holderRate
      const boundVoters = voters.filter(v => {
        const p = v.voter.promise
        return p !== undefined && (p.until - v.offset) / v.rate >= endTrue
      }).length
      expect(boundVoters + 1).toBeGreaterThanOrEqual(Math.floor((voters.length + 1) / 2) + 1)
    }), { numRuns: 3000 })
  })

  it('at the extreme rates with zero delay, with no margin to spare', () => {
    // Holder clock slow, voter clock fast: the worst case the bound allows.
    const lease = new HolderLease(1, L, D)
    const voter = new Voter(0, 0)
    const hr = 1 - D / 2
    const vr = 1 + D / 2
    lease.ack('v', lease.send(0))
    voter.ack('h', 1, 0, L)
    const holderEndTrue = lease.recount('h', ['h', 'v']) / hr
    const voterEndTrue = (voter.promise?.until ?? 0) / vr
    expect(holderEndTrue).toBeLessThan(voterEndTrue)
  })
})

describe('FailureDetector', () => {
  it('moves alive → suspect → dead on silence, back to alive on any message, and forgets', () => {
    const fd = new FailureDetector({ suspectAfterMs: 3000, deadAfterMs: 6000, forgetAfterMs: 20_000 })
    expect(fd.heard('p', 0)).toEqual({ peer: 'p', liveness: 'alive' })
    expect(fd.heard('p', 500)).toBeUndefined()
    expect(fd.refresh(3499).changes).toEqual([])
    expect(fd.refresh(3500).changes).toEqual([{ peer: 'p', liveness: 'suspect' }])
    expect(fd.refresh(6500).changes).toEqual([{ peer: 'p', liveness: 'dead' }])
    expect(fd.heard('p', 7000)).toEqual({ peer: 'p', liveness: 'alive' })
    expect(fd.left('p')).toEqual({ peer: 'p', liveness: 'dead' })
    expect(fd.liveness('p', 7001)).toBe('dead')
    expect(fd.refresh(27_000).forgotten).toEqual(['p'])
    expect(fd.has('p')).toBe(false)
  })

  it('does not count time it was not running against its peers', () => {
    const fd = new FailureDetector({ suspectAfterMs: 3000, deadAfterMs: 6000, forgetAfterMs: 20_000 })
    fd.heard('p', 0)
    fd.credit(10_000)
    expect(fd.liveness('p', 10_500)).toBe('alive')
  })
})
