import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, IdentifyResult, PeerId, PeerInfo } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import { createMeshMaintainer, type MaintainerHost, type MeshMaintainer } from '../../src/node/mesh-maintainer.js'
import { sleep } from '../../src/util/sleep.js'
import type { Logger } from '../../src/util/logger.js'

/**
 * The maintainer against a fake host: which connections put a node "in the mesh" and so stop its bootstrap
 * retries. Found in a 20-node cluster test: a node whose first bootstrap dial timed out under start-up load, and
 * which the harness's probe happened to be polling, took the probe for a member and never dialled again.
 */
const MEMBER_PROTOCOL = '/mrp2p/member/1.0.0'

async function newPeerId (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

class FakeHost extends EventTarget {
  readonly connections: Connection[] = []
  bootstrapDials = 0
  refuseBootstrap = true
  /** Peers whose connection the maintainer closed. */
  readonly closed: string[] = []

  constructor (readonly peerId: PeerId) { super() }

  host (): MaintainerHost {
    return {
      peerId: this.peerId,
      getConnections: (peer?: PeerId) => this.connections.filter(c => peer === undefined || c.remotePeer.equals(peer)),
      dial: async (target: PeerId | Multiaddr) => {
        if (!('getComponents' in target)) throw new Error('no addresses for this peer')
        this.bootstrapDials++
        throw new Error(this.refuseBootstrap ? 'no answer within 5000 ms' : 'unexpected')
      },
      peerStore: { merge: async () => {} },
      addEventListener: this.addEventListener.bind(this) as MaintainerHost['addEventListener'],
      removeEventListener: this.removeEventListener.bind(this) as MaintainerHost['removeEventListener']
    }
  }

  /** A peer connects to us, libp2p files it as "discovered" (no addresses: it listens nowhere), identify runs. */
  connect (peer: PeerId, protocols: string[]): void {
    const conn = {
      remotePeer: peer,
      status: 'open',
      close: async () => { this.closed.push(peer.toString()); this.connections.splice(this.connections.indexOf(conn as unknown as Connection), 1) }
    }
    this.connections.push(conn as unknown as Connection)
    const listenAddrs = protocols.includes(MEMBER_PROTOCOL) ? [multiaddr('/ip4/127.0.0.1/tcp/4002')] : []
    this.dispatchEvent(new CustomEvent<PeerInfo>('peer:discovery', { detail: { id: peer, multiaddrs: listenAddrs } }))
    this.dispatchEvent(new CustomEvent<IdentifyResult>('peer:identify', { detail: { peerId: peer, protocols, listenAddrs } as unknown as IdentifyResult }))
  }
}

function recordingLog (): { log: Logger, messages: string[] } {
  const messages: string[] = []
  const record = (...args: unknown[]): void => { messages.push(String(args.find(a => typeof a === 'string') ?? '')) }
  const log = { debug: record, info: record, warn: record, error: record } as unknown as Logger
  return { log, messages }
}

let maintainer: MeshMaintainer | undefined
afterEach(() => { maintainer?.stop() })

async function setUp (): Promise<{ fake: FakeHost, messages: string[], bootstrapId: PeerId }> {
  const fake = new FakeHost(await newPeerId())
  const bootstrapId = await newPeerId()
  const { log, messages } = recordingLog()
  maintainer = createMeshMaintainer({
    host: fake.host(),
    bootstrap: [multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${bootstrapId.toString()}`)],
    memberProtocol: MEMBER_PROTOCOL,
    isBlocked: () => false,
    log,
    sweepIntervalMs: 5,
    dialTimeoutMs: 50,
    silentMeshMs: 200
  })
  maintainer.start()
  await waitFor(() => fake.bootstrapDials >= 1, { timeoutMs: 5_000, intervalMs: 5, description: 'the first bootstrap dial' })
  return { fake, messages, bootstrapId }
}

describe('mesh maintainer', () => {
  it('keeps dialling the bootstrap peer while only clients (status, a submitter, a probe) are connected', async () => {
    const { fake, messages } = await setUp()
    fake.connect(await newPeerId(), ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0'])
    const before = fake.bootstrapDials
    // Backoff 0.5 s doubling: two more attempts come within about 1.5 s.
    await waitFor(() => fake.bootstrapDials >= before + 2, { timeoutMs: 10_000, intervalMs: 10, description: 'two more bootstrap dials' })
    expect(messages).not.toContain('in the mesh; bootstrap retries stop')
  })

  it('stops dialling the bootstrap peer once a member is connected', async () => {
    const { fake, messages } = await setUp()
    fake.connect(await newPeerId(), ['/ipfs/id/1.0.0', MEMBER_PROTOCOL])
    await waitFor(() => messages.includes('in the mesh; bootstrap retries stop'), { timeoutMs: 10_000, intervalMs: 10, description: 'the maintainer to count itself in the mesh' })
  })

  it('closes a link to the mesh that carries no member\'s heartbeat, and dials the bootstrap anew', async () => {
    const { fake, messages, bootstrapId } = await setUp()
    fake.connect(bootstrapId, ['/ipfs/id/1.0.0', MEMBER_PROTOCOL])
    await waitFor(() => messages.includes('in the mesh; bootstrap retries stop'), { timeoutMs: 10_000, intervalMs: 10, description: 'the maintainer to count itself in the mesh' })
    const before = fake.bootstrapDials
    await waitFor(() => fake.closed.includes(bootstrapId.toString()), { timeoutMs: 10_000, intervalMs: 10, description: 'the silent link closed' })
    expect(messages).toContain('linked to the mesh but hearing no member; reconnecting')
    await waitFor(() => fake.bootstrapDials > before, { timeoutMs: 10_000, intervalMs: 10, description: 'a new bootstrap dial' })
  })

  it('keeps a link to the mesh once a member was heard', async () => {
    const { fake, messages, bootstrapId } = await setUp()
    fake.connect(bootstrapId, ['/ipfs/id/1.0.0', MEMBER_PROTOCOL])
    maintainer?.addMember(bootstrapId.toString(), ['/ip4/127.0.0.1/tcp/4001'])
    await waitFor(() => messages.includes('in the mesh; bootstrap retries stop'), { timeoutMs: 10_000, intervalMs: 10, description: 'the maintainer to count itself in the mesh' })
    // The time is the condition here: five times the silence allowed (200 ms), and a mesh that was heard is left alone.
    await sleep(1_000)
    expect(fake.closed).toEqual([])
  })

  it('counts a peer an election heartbeat named as a member', async () => {
    const { fake, messages } = await setUp()
    const peer = await newPeerId()
    fake.connect(peer, ['/ipfs/id/1.0.0'])
    maintainer?.addMember(peer.toString(), ['/ip4/127.0.0.1/tcp/4003'])
    await waitFor(() => messages.includes('in the mesh; bootstrap retries stop'), { timeoutMs: 10_000, intervalMs: 10, description: 'the maintainer to count itself in the mesh' })
  })
})
