import '../../src/util/polyfills.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { controlPubSub } from '../../src/election/control-pubsub.js'
import { createGossipElection, type ElectionMachine, type GossipElection } from '../../src/election/gossip-adapter.js'
import { encodeControlMessage, type ControlMessage, type ElectionEffect, type ElectionInput, type MemberInfo } from '../../src/election/index.js'
import { createConnectionGater } from '../../src/node/gater.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/node/libp2p.js'
import { CONTROL_TOPIC } from '../../src/protocol/ids.js'
import type { Logger } from '../../src/util/logger.js'
import { waitFor } from '../../src/harness/wait-for.js'

const INFO: MemberInfo = { addrs: [], slots: 1, running: 0, worker: true, version: 'test' }

/**
 * Stands in for the election: every tick it publishes a heartbeat, and it
 * records what the adapter hands it. The adapter's job is only transport and
 * authentication, so this is all it needs to be tested against.
 */
class RecordingElection implements ElectionMachine {
  received: ControlMessage[] = []
  constructor (readonly self: string) {}
  step (input: ElectionInput): ElectionEffect[] {
    switch (input.type) {
      case 'start':
      case 'tick':
        return [{ type: 'publish', message: { type: 'heartbeat', v: 1, from: this.self, info: INFO, role: 'follower', epoch: 0, highestEpoch: 0 } }]
      case 'receive':
        this.received.push(input.message)
        return []
      default:
        return []
    }
  }

  isCoordinator (): boolean { return false }
  view (): ReturnType<ElectionMachine['view']> {
    return { self: this.self, role: 'follower', leader: undefined, epoch: 0, highestEpoch: 0, leaseAgeMs: undefined, leaseValid: false, members: [] }
  }
}

function memoryLogger (): { log: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  return { log: pino({ level: 'debug' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>) } }), lines }
}

async function meshPeer (): Promise<MeshLibp2p> {
  const node = await createMeshLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    connectionGater: createConnectionGater({ has: () => false }),
    discoveryIntervalMs: 60_000,
    version: 'test'
  })
  await node.start()
  return node
}

describe('gossip adapter on real gossipsub', () => {
  let a: MeshLibp2p
  let b: MeshLibp2p
  let attacker: MeshLibp2p
  let electionA: RecordingElection
  let adapterA: GossipElection
  let adapterB: GossipElection
  const logA = memoryLogger()

  beforeAll(async () => {
    ;[a, b, attacker] = await Promise.all([meshPeer(), meshPeer(), meshPeer()])
    await b.dial(a.getMultiaddrs()[0])
    await attacker.dial(a.getMultiaddrs()[0])
    electionA = new RecordingElection(a.peerId.toString())
    adapterA = createGossipElection({ pubsub: controlPubSub(a.services.pubsub), election: electionA, log: logA.log, tickMs: 100 })
    adapterB = createGossipElection({ pubsub: controlPubSub(b.services.pubsub), election: new RecordingElection(b.peerId.toString()), log: memoryLogger().log, tickMs: 100 })
    adapterA.start()
    adapterB.start()
    attacker.services.pubsub.subscribe(CONTROL_TOPIC)
  })

  afterAll(async () => {
    await adapterA.stop()
    await adapterB.stop()
    await Promise.all([a.stop(), b.stop(), attacker.stop()])
  })

  it('delivers signed control messages from their real author', async () => {
    const bId = b.peerId.toString()
    await waitFor(() => electionA.received.some(m => m.from === bId), { timeoutMs: 10_000, description: 'a heartbeat from b' })
  })

  it('drops garbage and forged senders, logs it, and keeps delivering', async () => {
    await waitFor(() => attacker.services.pubsub.getSubscribers(CONTROL_TOPIC).some(p => p.equals(a.peerId)), { timeoutMs: 10_000, description: 'the attacker to see a on the topic' })
    const droppedBefore = adapterA.stats().dropped
    const forged = encodeControlMessage({ type: 'heartbeat', v: 1, from: b.peerId.toString(), info: INFO, role: 'coordinator', epoch: 99, highestEpoch: 99 })
    const garbage = [Uint8Array.of(0xff, 0x00, 0x13), new TextEncoder().encode('{"type":"lease"}'), new TextEncoder().encode('null'), forged]
    for (const bytes of garbage) await attacker.services.pubsub.publish(CONTROL_TOPIC, bytes)

    await waitFor(() => adapterA.stats().dropped >= droppedBefore + garbage.length, { timeoutMs: 10_000, description: 'all four messages dropped' })
    expect(electionA.received.some(m => m.from === b.peerId.toString() && m.type === 'heartbeat' && m.epoch === 99)).toBe(false)
    expect(electionA.received.some(m => m.from === attacker.peerId.toString())).toBe(false)
    expect(logA.lines.some(l => l.msg === 'dropped control message' && l.peer === attacker.peerId.toString())).toBe(true)

    // Still working afterwards.
    const count = electionA.received.length
    await waitFor(() => electionA.received.length > count, { timeoutMs: 10_000, description: 'more heartbeats from b' })
  })
})
