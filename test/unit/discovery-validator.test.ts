import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import type { GossipMessage, ValidationVerdict } from '../../src/election/gossip-adapter.js'
import { checkDiscoveryMessage, createDiscoveryValidator } from '../../src/node/discovery-validator.js'
import { DISCOVERY_TOPIC } from '../../src/protocol/ids.js'
import { encodeDiscoveryPeer } from '../support/fuzz-gossip.js'

async function peer (): Promise<{ id: PeerId, publicKey: Uint8Array }> {
  const key = await generateKeyPair('Ed25519')
  return { id: peerIdFromPrivateKey(key), publicKey: publicKeyToProtobuf(key.publicKey) }
}

function signed (from: PeerId, data: Uint8Array): GossipMessage {
  return { type: 'signed', from, topic: DISCOVERY_TOPIC, data }
}

describe('discovery message check', () => {
  it('accepts a record of its own signer and refuses one that announces another peer', async () => {
    const [a, b] = await Promise.all([peer(), peer()])
    const addr = new TextEncoder().encode('/ip4/127.0.0.1/tcp/1')
    expect(checkDiscoveryMessage(signed(a.id, encodeDiscoveryPeer(a.publicKey, [addr])))).toBeUndefined()
    expect(checkDiscoveryMessage(signed(a.id, encodeDiscoveryPeer(b.publicKey, [addr])))).toBe('announces another peer')
    expect(checkDiscoveryMessage({ type: 'unsigned', topic: DISCOVERY_TOPIC, data: encodeDiscoveryPeer(a.publicKey, []) })).toBe('unsigned')
    expect(checkDiscoveryMessage(signed(a.id, Uint8Array.of(0x1a, 0x00)))).toBe('unexpected field')
    expect(checkDiscoveryMessage(signed(a.id, encodeDiscoveryPeer(a.publicKey, Array.from({ length: 65 }, () => addr))))).toBe('too many addresses')
  })

  it('the validator refuses, counts and logs what the check refuses, and is removed on stop', async () => {
    const [a, b] = await Promise.all([peer(), peer()])
    let installed: ((p: PeerId, m: GossipMessage) => ValidationVerdict) | undefined
    const lines: Array<Record<string, unknown>> = []
    const validator = createDiscoveryValidator({
      pubsub: { setValidator: (topic, v) => { expect(topic).toBe(DISCOVERY_TOPIC); installed = v } },
      log: pino({ level: 'debug' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>) } })
    })
    validator.start()
    if (installed === undefined) throw new Error('no validator installed')
    expect(installed(a.id, signed(a.id, encodeDiscoveryPeer(a.publicKey, [])))).toBe('accept')
    expect(installed(a.id, signed(a.id, encodeDiscoveryPeer(b.publicKey, [])))).toBe('reject')
    expect(validator.dropped()).toBe(1)
    expect(lines.some(l => l.msg === 'dropped discovery message' && l.reason === 'announces another peer')).toBe(true)
    validator.stop()
    expect(installed).toBeUndefined()
  })
})
