import fc from 'fast-check'
import { InfoMember } from '../../src/protocol/info.js'
import { describe, expect, it } from 'vitest'
import {
  MAX_CONTROL_MESSAGE_BYTES,
  decodeControlMessage,
  encodeControlMessage,
  parseControlMessage,
  type ControlMessage,
  type HeartbeatMessage
} from '../../src/election/messages.js'

const peer = fc.stringMatching(/^[1-9A-HJ-NP-Za-km-z]{8,52}$/)
const epoch = fc.nat({ max: 2 ** 40 })
const info = fc.record({
  addrs: fc.array(fc.string({ maxLength: 80 }), { maxLength: 4 }),
  slots: fc.nat({ max: 64 }),
  running: fc.nat({ max: 64 }),
  worker: fc.boolean(),
  version: fc.string({ maxLength: 20 })
})

const validMessage: fc.Arbitrary<ControlMessage> = fc.oneof(
  fc.record({
    type: fc.constant('heartbeat' as const),
    v: fc.constant(1 as const),
    from: peer,
    info,
    role: fc.constantFrom('follower' as const, 'candidate' as const, 'coordinator' as const),
    leader: fc.option(peer, { nil: undefined }),
    epoch,
    highestEpoch: epoch,
    ack: fc.option(fc.record({ to: peer, epoch, seq: fc.nat() }), { nil: undefined }),
    promise: fc.option(fc.record({ to: peer, epoch, leftMs: fc.nat({ max: 60_000 }) }), { nil: undefined })
  }).map(m => ({ ...m, highestEpoch: Math.max(m.epoch, m.highestEpoch) })),
  fc.record({ type: fc.constant('lease' as const), v: fc.constant(1 as const), from: peer, epoch, seq: fc.nat(), durationMs: fc.integer({ min: 1, max: 60_000 }) }),
  fc.record({ type: fc.constant('claim' as const), v: fc.constant(1 as const), from: peer, epoch, seq: fc.nat(), durationMs: fc.integer({ min: 1, max: 60_000 }) }),
  fc.record({ type: fc.constant('grant' as const), v: fc.constant(1 as const), from: peer, to: peer, epoch, seq: fc.nat() }),
  fc.record({ type: fc.constant('release' as const), v: fc.constant(1 as const), from: peer, epoch, leaving: fc.boolean() }),
  fc.record({ type: fc.constant('leave' as const), v: fc.constant(1 as const), from: peer })
)

/** JSON drops undefined-valued keys; compare what actually travels. */
function wire (m: ControlMessage): unknown {
  return JSON.parse(JSON.stringify(m))
}

const heartbeat = {
  type: 'heartbeat',
  v: 1,
  from: '12D3KooWAbc',
  info: { addrs: ['/ip4/10.0.0.1/tcp/4001'], slots: 2, running: 0, worker: true, version: '0.1.0' },
  role: 'follower',
  epoch: 3,
  highestEpoch: 4
}

describe('control messages', () => {
  it('round-trips every valid message through encode/decode', () => {
    fc.assert(fc.property(validMessage, m => {
      const back = decodeControlMessage(encodeControlMessage(m))
      expect(back).toEqual(wire(m))
    }), { numRuns: 500 })
  })

  it('parseControlMessage never throws and returns undefined or a message of a known type', () => {
    fc.assert(fc.property(fc.anything({ withNullPrototype: true, withBigInt: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withDate: true }), v => {
      const m = parseControlMessage(v)
      expect(m === undefined || ['heartbeat', 'lease', 'claim', 'grant', 'release', 'leave'].includes(m.type)).toBe(true)
    }), { numRuns: 2000 })
  })

  it('decodeControlMessage never throws on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), b => {
      expect(() => decodeControlMessage(b)).not.toThrow()
    }), { numRuns: 2000 })
  })

  it('rejects valid messages with one field broken', () => {
    const junk = fc.oneof(fc.constant(undefined), fc.constant(null), fc.constant(-1), fc.constant(Number.NaN), fc.constant(Infinity), fc.constant(1.5), fc.string(), fc.object(), fc.array(fc.anything(), { maxLength: 3 }))
    fc.assert(fc.property(validMessage, junk, fc.nat(), (m, j, pick) => {
      const keys = Object.keys(m).filter(k => (m as unknown as Record<string, unknown>)[k] !== undefined && !['leader', 'ack', 'promise'].includes(k))
      const key = keys[pick % keys.length]
      const broken = { ...m, [key]: j }
      // Swapping in a value of the same valid shape is not breaking it.
      fc.pre(JSON.stringify(broken) !== JSON.stringify(m))
      const parsed = parseControlMessage(broken)
      if (parsed !== undefined) {
        // Only a string standing in for another string field can still be valid.
        expect(typeof j).toBe('string')
      }
    }), { numRuns: 1000 })
  })

  it('accepts a plain heartbeat and drops unknown fields', () => {
    const m = parseControlMessage({ ...heartbeat, extra: { deep: [1, 2, 3] } })
    expect(m).toBeDefined()
    expect(m).not.toHaveProperty('extra')
  })

  it.each([
    ['wrong version', { ...heartbeat, v: 2 }],
    ['unknown type', { ...heartbeat, type: 'coup' }],
    ['negative epoch', { ...heartbeat, epoch: -1 }],
    ['negative highestEpoch', { ...heartbeat, highestEpoch: -5 }],
    ['NaN epoch', { ...heartbeat, epoch: Number.NaN }],
    ['Infinity epoch', { ...heartbeat, highestEpoch: Infinity }],
    ['fractional epoch', { ...heartbeat, epoch: 1.5 }],
    ['unsafe integer epoch', { ...heartbeat, epoch: 2 ** 60, highestEpoch: 2 ** 60 }],
    ['epoch as string', { ...heartbeat, epoch: '3' }],
    ['epoch above highestEpoch', { ...heartbeat, epoch: 9, highestEpoch: 4 }],
    ['missing from', { ...heartbeat, from: undefined }],
    ['empty from', { ...heartbeat, from: '' }],
    ['from with spaces', { ...heartbeat, from: 'a b' }],
    ['huge from', { ...heartbeat, from: 'x'.repeat(1_000_000) }],
    ['huge version', { ...heartbeat, info: { ...heartbeat.info, version: 'v'.repeat(100_000) } }],
    ['too many addrs', { ...heartbeat, info: { ...heartbeat.info, addrs: Array.from({ length: 1000 }, () => '/ip4/1.2.3.4') } }],
    ['addr not a string', { ...heartbeat, info: { ...heartbeat.info, addrs: [42] } }],
    ['info is an array', { ...heartbeat, info: [] }],
    ['bad role', { ...heartbeat, role: 'king' }],
    ['ack with junk', { ...heartbeat, ack: { to: '12D3KooWAbc', epoch: 1, seq: -1 } }],
    ['promise with NaN', { ...heartbeat, promise: { to: '12D3KooWAbc', epoch: 1, leftMs: Number.NaN } }],
    ['lease with zero duration', { type: 'lease', v: 1, from: 'p', epoch: 1, seq: 0, durationMs: 0 }],
    ['lease with negative seq', { type: 'lease', v: 1, from: 'p', epoch: 1, seq: -3, durationMs: 3000 }],
    ['claim with negative epoch', { type: 'claim', v: 1, from: 'p', epoch: -1, seq: 0, durationMs: 3000 }],
    ['grant without to', { type: 'grant', v: 1, from: 'p', epoch: 1, seq: 0 }],
    ['release with string leaving', { type: 'release', v: 1, from: 'p', epoch: 1, leaving: 'yes' }],
    ['nested junk', { type: { type: 'heartbeat' }, v: [1], from: { toString: () => 'p' } }],
    ['null', null],
    ['array', [heartbeat]],
    ['number', 42],
    ['string', 'heartbeat'],
    ['prototype pollution attempt', JSON.parse('{"__proto__":{"type":"leave"},"v":1,"from":"p"}')]
  ])('rejects %s', (_name, value) => {
    expect(parseControlMessage(value)).toBeUndefined()
  })

  it('survives values whose getters throw', () => {
    const evil = new Proxy({}, { get () { throw new Error('boom') }, ownKeys () { throw new Error('boom') } })
    expect(parseControlMessage(evil)).toBeUndefined()
    const getter = Object.defineProperty({ ...heartbeat }, 'from', { get () { throw new Error('boom') }, enumerable: true })
    expect(parseControlMessage(getter)).toBeUndefined()
  })

  it('decode rejects oversize frames, bad UTF-8, bad JSON and deep nesting', () => {
    const enc = new TextEncoder()
    const big = enc.encode(JSON.stringify({ ...heartbeat, pad: 'x'.repeat(MAX_CONTROL_MESSAGE_BYTES) }))
    expect(big.byteLength).toBeGreaterThan(MAX_CONTROL_MESSAGE_BYTES)
    expect(decodeControlMessage(big)).toBeUndefined()
    expect(decodeControlMessage(new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]))).toBeUndefined()
    expect(decodeControlMessage(enc.encode('{"type":"leave","v":1,'))).toBeUndefined()
    expect(decodeControlMessage(enc.encode('['.repeat(60_000)))).toBeUndefined()
    expect(decodeControlMessage(new Uint8Array(0))).toBeUndefined()
    expect(decodeControlMessage(enc.encode('{"type":"leave","v":1,"from":"p"}'))).toEqual({ type: 'leave', v: 1, from: 'p' })
    // Not a Uint8Array at all (a caller bug); still no throw.
    expect(decodeControlMessage('nope' as unknown as Uint8Array)).toBeUndefined()
  })

  it('a heartbeat\'s addresses fit the info answer that passes them on: one longer than it may carry does not decode', () => {
    const withAddr = (addr: string): HeartbeatMessage => ({ ...heartbeat, info: { ...heartbeat.info, addrs: [addr] } }) as HeartbeatMessage
    const fits = decodeControlMessage(encodeControlMessage(withAddr('x'.repeat(500))))
    expect(fits).toBeDefined()
    expect(InfoMember.shape.addrs.safeParse(fits?.type === 'heartbeat' ? fits.info.addrs : undefined).success).toBe(true)
    expect(decodeControlMessage(encodeControlMessage(withAddr('x'.repeat(501))))).toBeUndefined()
  })
})
