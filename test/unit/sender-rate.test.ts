import { describe, expect, it } from 'vitest'
import { createSenderRate, DEFAULT_SENDER_RATE, honestPeakPerSecond, senderRateFor, type RateVerdict } from '../../src/election/sender-rate.js'

/** `count` messages of `author`, `everyMs` apart from `start`; the verdicts, counted. */
function send (rate: ReturnType<typeof createSenderRate>, author: string, start: number, count: number, everyMs: number): Record<RateVerdict, number> {
  const out: Record<RateVerdict, number> = { ok: 0, over: 0, flood: 0 }
  for (let i = 0; i < count; i++) out[rate.admit(author, start + i * everyMs)]++
  return out
}

describe('sender rate (the control topic flood detector)', () => {
  it('never refuses an author at the honest bound, handled on time or in late bursts', () => {
    const rate = createSenderRate()
    const perSecond = honestPeakPerSecond({ heartbeatMs: 400, leaseMs: 2_000 })
    expect(perSecond).toBeLessThan(DEFAULT_SENDER_RATE.perSecond / 2)
    // Ten minutes at the bound, handled as sent.
    expect(send(rate, 'honest', 0, Math.round(perSecond * 600), 1_000 / perSecond)).toMatchObject({ over: 0, flood: 0 })
    // The same author's messages of the next ten seconds handled all at once after this node stalled for them.
    const backlog = Math.round(perSecond * 10)
    const late: Record<RateVerdict, number> = { ok: 0, over: 0, flood: 0 }
    for (let i = 0; i < backlog; i++) late[rate.admit('honest', 610_000 + i * 0.01, 10_000)]++
    expect(late).toMatchObject({ over: 0, flood: 0 })
    // Without the stall said, that backlog overruns the burst: which is what the stall is for.
    expect(send(createSenderRate(), 'other', 0, backlog, 0).over).toBeGreaterThan(0)
  })

  it('admits a burst, then refuses the rest of a flood: a grace of "over", then "flood"', () => {
    const rate = createSenderRate()
    const r = send(rate, 'flooder', 0, 5_000, 0.2)
    const { burst, graceMessages } = DEFAULT_SENDER_RATE
    expect(r.ok).toBeGreaterThanOrEqual(burst)
    expect(r.ok).toBeLessThan(burst + 5)
    expect(r.over).toBe(graceMessages)
    expect(r.flood).toBe(5_000 - r.ok - r.over)
  })

  it('keeps refusing a flooder that overran its bucket until it has been quiet for its debt', () => {
    const rate = createSenderRate({ perSecond: 100, burst: 50, debtSeconds: 60, graceMessages: 10 })
    // Ten thousand messages in two seconds: each refused one deepens the debt, down to its floor.
    send(rate, 'flooder', 0, 10_000, 0.2)
    // A second's pause, which would have refilled 100 tokens of a plain bucket, admits nothing.
    expect(rate.admit('flooder', 3_000)).toBe('flood')
    // Nor does a long stall of this node's event loop while the flood goes on.
    expect(send(rate, 'flooder', 30_000, 10, 0.2)).toMatchObject({ ok: 0 })
    // Quiet for the debt, it is admitted again.
    expect(rate.admit('flooder', 30_000 + 61_000)).toBe('ok')
    expect(send(rate, 'flooder', 91_001, 30, 10)).toMatchObject({ over: 0, flood: 0 })
  })

  it('hears an honest author again within about a second after one backlog overran its bucket', () => {
    const rate = createSenderRate()
    // A backlog this node did not see as a stall: over the burst at once.
    expect(send(rate, 'honest', 0, DEFAULT_SENDER_RATE.burst + 10, 0).over).toBeGreaterThan(0)
    // Then its own pace, a heartbeat every 400 ms: refused for about a second, then heard for good.
    const after: RateVerdict[] = []
    for (let t = 400; t <= 20_000; t += 400) after.push(rate.admit('honest', t))
    expect(after.slice(3).every((v) => v === 'ok')).toBe(true)
  })

  it('tracks at most maxAuthors, dropping idle ones first', () => {
    const rate = createSenderRate({ maxAuthors: 100 })
    send(rate, 'flooder', 0, 1_000, 0.1)
    for (let i = 0; i < 10_000; i++) rate.admit(`author-${i}`, 1_000 + i)
    expect(rate.size()).toBeLessThanOrEqual(100)
  })

  it('sizes the bucket above twice the honest bound for short heartbeats', () => {
    expect(senderRateFor({ heartbeatMs: 1_000, leaseMs: 3_000 })).toEqual(DEFAULT_SENDER_RATE)
    const fast = senderRateFor({ heartbeatMs: 100, leaseMs: 500 })
    expect(fast.perSecond).toBeGreaterThanOrEqual(2 * honestPeakPerSecond({ heartbeatMs: 100, leaseMs: 500 }))
    expect(() => createSenderRate({ perSecond: 0 })).toThrow(RangeError)
  })
})
