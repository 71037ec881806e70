import '../../src/util/polyfills.js'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { RPC } from '@libp2p/gossipsub/message'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { generateKeyPairFromSeed, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CONTROL_TOPIC, DISCOVERY_TOPIC } from '../../src/protocol/ids.js'
import type { Prng } from './prng.js'
import { concat, EDGE_NUMBERS, encodeJsonBytes, hostileValue, mutateBytes, mutateJson, randomBytes, randomString, type Json } from './fuzz-mutate.js'
import { varint } from './mesh-peers.js'

/**
 * The gossip half of the protocol fuzzer: a real gossipsub peer that joins the
 * control topic (the election) and the discovery topic, watches what the mesh
 * says there, and publishes garbage and mutations of it. Its messages are
 * properly signed, so they reach the node's topic validator and, for the ones
 * that pass, the election state machine and pubsub-peer-discovery: the parts
 * of the node a peer in the mesh can reach without any stream of its own.
 */

export type GossipFuzzPeer = Libp2p<{ pubsub: GossipSub }>

export async function seededKey (rng: Prng): Promise<PrivateKey> {
  return await generateKeyPairFromSeed('Ed25519', randomBytes(rng, 32))
}

function fastMsgIdFn (msg: { from?: Uint8Array, seqno?: Uint8Array }): string {
  return `${Buffer.from(msg.from ?? new Uint8Array()).toString('base64')}/${Buffer.from(msg.seqno ?? new Uint8Array()).toString('hex')}`
}

/** A gossipsub peer with the node's own settings, listening nowhere (it dials the node it fuzzes). */
export async function createGossipFuzzPeer (privateKey: PrivateKey): Promise<GossipFuzzPeer> {
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 1_000, dialTimeout: 5_000 },
    services: {
      pubsub: gossipsub({
        D: 3, Dlo: 2, Dhi: 5, Dout: 1, Dlazy: 3, heartbeatInterval: 1_000, floodPublish: true, doPX: false,
        allowPublishToZeroTopicPeers: true, emitSelf: false, scoreParams: { IPColocationFactorWeight: 0 }, fastMsgIdFn,
        // Our own flood of publishes must not be cut short by our own outbound buffer limit.
        maxOutboundBufferSize: 64 * 1024 * 1024
      }),
      identify: identify()
    }
  })
  return node as unknown as GossipFuzzPeer
}

/**
 * - random-bytes, hostile-json: garbage on the control topic.
 * - observed-*-mutated: real messages of the mesh, mutated; their `from` names another node (a forgery) unless the
 *   mutation broke it.
 * - own-stale: real messages re-authored by us and mutated, then held to what a member may say without taking part
 *   in the election: follower heartbeats, and leases, claims, grants and releases of epochs the mesh has left behind.
 * - own-epoch-overflow: valid messages of ours with epochs the node must refuse (near 2^53, or far ahead of it).
 * - own-json-mutated, own-valid-edge: anything a member may say, leadership claims and hour-long promises included.
 *   Nodes bound to a live lease take none of it from anyone but their holder (docs/election.md).
 * - oversized: past the 64 KiB limit of a control message.
 * - discovery-*: pubsub-peer-discovery records: mutated real ones, random bytes, made-up peers (all to be refused),
 *   and our own record with odd addresses (accepted: a peer may announce itself).
 */
export type GossipMode =
  | 'random-bytes' | 'hostile-json' | 'observed-bytes-mutated' | 'observed-json-mutated' | 'own-stale' | 'own-epoch-overflow'
  | 'own-json-mutated' | 'own-valid-edge' | 'oversized' | 'discovery-mutated' | 'discovery-fake-peer' | 'discovery-random' | 'discovery-self'

export interface GossipFuzzStats {
  /** Messages published that gossipsub sent to the target. */
  frames: number
  published: number
  publishErrors: number
  /** Times the loop found no gossip stream to the target and waited. */
  noStream: number
  /** Times it dialled the target again. */
  reconnects: number
  /** Times it went on as a fresh member because the target stopped reading it (graylisted: docs/security.md). */
  rotations: number
  /** Times no fresh member could join in time. */
  rotationFailures: number
  byTopic: Record<string, number>
  byMode: Record<string, number>
  observed: Record<string, number>
  elapsedMs: number
}

export interface GossipFuzzOptions {
  rng: Prng
  peer: GossipFuzzPeer
  target: PeerId
  targetAddr: Multiaddr
  /**
   * A fresh member, already connected to the target and subscribed, to go on as once the target stops reading
   * the current one (a graylisted peer's stream is paused): as an attacker with many keys would. Without it the
   * fuzzer waits on the stuck stream.
   */
  nextPeer?: () => Promise<GossipFuzzPeer>
  /** PeerIds of the real nodes (values for `to`, `leader`, forged `from`). */
  nodeIds: string[]
  /** Relative weights of the modes; a mode left out is not used. */
  modes: Partial<Record<GossipMode, number>>
  /** Unsent bytes on our gossip stream to the target past which we wait. */
  highWaterBytes?: number
  /**
   * At most this many messages a second. gossipsub keeps two minutes of every message id it saw (and a delivery
   * record for scoring), so the node's memory under this fuzz is proportional to its rate: a fixed rate keeps the
   * test's memory bound meaningful on a machine faster than the one it was measured on.
   */
  maxPerSecond?: number
}

/** Control messages as the schema allows them, from `from`, with values at the edges of every range. */
function edgeControlMessage (rng: Prng, from: string, nodeIds: string[]): Json {
  const id = (): string => rng.chance(0.7) ? rng.pick(nodeIds) : rng.chance(0.5) ? from : randomString(rng, rng.int(1, 128)).replace(/[^\x21-\x7e]/g, 'x') || 'x'
  const epoch = (): number => rng.pick([0, 1, 2, rng.int(0, 50), rng.int(0, 1_000_000), 2 ** 31, 2 ** 40, 2 ** 52, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER])
  const seq = (): number => rng.pick([0, 1, rng.int(0, 1000), Number.MAX_SAFE_INTEGER])
  const duration = (): number => rng.pick([1, 2, 100, 2_000, 3_000, 60_000, 3_600_000])
  const info = (): Json => ({
    addrs: Array.from({ length: rng.int(0, 64) }, () => rng.pick(['/ip4/127.0.0.1/tcp/1', '/ip4/10.0.0.1/tcp/4001', '/dns4/example.invalid/tcp/1', 'not a multiaddr', '/ip4/127.0.0.1/tcp/9/p2p/' + rng.pick(nodeIds), 'x'.repeat(500), 'x'.repeat(501)])),
    slots: rng.pick([0, 1, 2, 1_000_000]),
    running: rng.pick([0, 1, 1_000_000]),
    worker: rng.chance(0.5),
    version: rng.pick(['0.1.0', '', 'v'.repeat(64)])
  })
  switch (rng.int(0, 5)) {
    case 0: {
      const highest = epoch()
      const m: Record<string, Json> = { type: 'heartbeat', v: 1, from, info: info(), role: rng.pick(['follower', 'candidate', 'coordinator']), epoch: rng.int(0, Math.min(highest, 1_000_000)), highestEpoch: highest }
      if (rng.chance(0.5)) m.leader = id()
      if (rng.chance(0.5)) m.ack = { to: id(), epoch: epoch(), seq: seq() }
      if (rng.chance(0.5)) m.promise = { to: id(), epoch: epoch(), leftMs: rng.pick([0, 1, 2_000, 3_600_000]) }
      return m
    }
    case 1: return { type: 'lease', v: 1, from, epoch: epoch(), seq: seq(), durationMs: duration() }
    case 2: return { type: 'claim', v: 1, from, epoch: epoch(), seq: seq(), durationMs: duration() }
    case 3: return { type: 'grant', v: 1, from, to: id(), epoch: epoch(), seq: seq() }
    case 4: return { type: 'release', v: 1, from, epoch: epoch(), leaving: rng.chance(0.5) }
    default: return { type: 'leave', v: 1, from }
  }
}

/** pubsub-peer-discovery's Peer protobuf: { bytes publicKey = 1; repeated bytes addrs = 2 }. */
export function encodeDiscoveryPeer (publicKey: Uint8Array, addrs: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(0x0a), varint(publicKey.length), publicKey]
  for (const a of addrs) parts.push(Uint8Array.of(0x12), varint(a.length), a)
  return concat(...parts)
}

/** An Ed25519 public key in libp2p's protobuf wrapping, with random key bytes: a peer nobody holds the key of. */
export function fakePublicKey (rng: Prng): Uint8Array {
  return concat(Uint8Array.of(0x08, 0x01, 0x12, 0x20), randomBytes(rng, 32))
}

/**
 * Holds a mutated control message of ours to what a member may say without
 * contending for leadership (see own-stale): epochs at or below `stale` for
 * everything but heartbeats, follower heartbeats that raise nothing, no
 * promises, acks of no current lease. Whatever else a mutation did stays.
 */
function holdStale (v: Json, stale: number, highest: number): Json {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v
  const m: Record<string, Json> = { ...v }
  const cap = (key: string, bound: number): void => { if (typeof m[key] === 'number' && (m[key] as number) > bound) m[key] = bound }
  if (m.type === 'heartbeat') {
    if (m.role !== 'follower') m.role = 'follower'
    cap('highestEpoch', highest)
    cap('epoch', highest)
    delete m.promise
    if (m.ack !== undefined) m.ack = { to: typeof m.from === 'string' ? m.from : 'x', epoch: stale, seq: 0 }
  } else {
    cap('epoch', stale)
    if (typeof m.durationMs === 'number' && m.durationMs > 3_000) m.durationMs = 3_000
  }
  return m
}

/** How long the stream to the target may stay full before the fuzzer takes it as graylisted. */
const STUCK_MS = 300

export class GossipFuzzer {
  readonly stats: GossipFuzzStats = { frames: 0, published: 0, publishErrors: 0, noStream: 0, reconnects: 0, rotations: 0, rotationFailures: 0, byTopic: {}, byMode: {}, observed: {}, elapsedMs: 0 }
  private readonly seen: Record<string, Uint8Array[]> = { [CONTROL_TOPIC]: [], [DISCOVERY_TOPIC]: [] }
  private running = false
  private loopDone: Promise<void> = Promise.resolve()
  private startedAt = 0
  private self = ''
  /** The highest epoch the mesh's own messages have shown us. */
  private highest = 0

  private ownKey: Uint8Array = new Uint8Array()
  /** The member we publish as now. */
  private peer: GossipFuzzPeer

  constructor (private readonly opts: GossipFuzzOptions) {
    this.peer = opts.peer
    this.become(opts.peer)
  }

  /** Publishes as `peer` from now on, and learns the mesh's messages through it. */
  private become (peer: GossipFuzzPeer): void {
    this.peer = peer
    this.self = peer.peerId.toString()
    if (peer.peerId.publicKey === undefined) throw new Error('the gossip fuzzer needs a key-carrying PeerId')
    this.ownKey = publicKeyToProtobuf(peer.peerId.publicKey)
    peer.services.pubsub.addEventListener('message', (evt) => {
      const m = evt.detail
      const list = this.seen[m.topic]
      if (list === undefined) return
      this.stats.observed[m.topic] = (this.stats.observed[m.topic] ?? 0) + 1
      // Keep a varied sample: the newest 64 of each topic.
      list.push(m.data)
      if (m.topic === CONTROL_TOPIC) {
        try {
          const v = JSON.parse(new TextDecoder().decode(m.data)) as { epoch?: unknown, highestEpoch?: unknown }
          for (const e of [v.epoch, v.highestEpoch]) if (typeof e === 'number' && Number.isSafeInteger(e)) this.highest = Math.max(this.highest, e)
        } catch {
          // Not ours to judge.
        }
      }
      if (list.length > 64) list.shift()
    })
    peer.services.pubsub.subscribe(CONTROL_TOPIC)
    peer.services.pubsub.subscribe(DISCOVERY_TOPIC)
  }

  /** The real messages kept of a topic (the newest 64). */
  samples (topic: string): Uint8Array[] {
    return this.seen[topic] ?? []
  }

  /** Real messages seen so far, per topic. */
  observedCount (topic: string): number {
    return this.seen[topic]?.length ?? 0
  }

  start (): void {
    this.running = true
    this.startedAt = performance.now()
    this.loopDone = this.loop()
  }

  async stop (): Promise<GossipFuzzStats> {
    this.running = false
    await this.loopDone
    this.stats.elapsedMs = performance.now() - this.startedAt
    return this.stats
  }

  /** Our outbound gossip stream to the target, to keep its unsent bytes bounded. */
  private outbound (): { writeBufferLength: number } | undefined {
    for (const conn of this.peer.getConnections(this.opts.target)) {
      for (const s of conn.streams) if (s.direction === 'outbound' && s.protocol.startsWith('/meshsub/')) return s
    }
    return undefined
  }

  private build (rng: Prng, mode: GossipMode): { topic: string, data: Uint8Array } {
    const control = this.seen[CONTROL_TOPIC]
    const discovery = this.seen[DISCOVERY_TOPIC]
    const observedJson = (): Json | undefined => {
      if (control.length === 0) return undefined
      try { return JSON.parse(new TextDecoder().decode(rng.pick(control))) as Json } catch { return undefined }
    }
    switch (mode) {
      case 'random-bytes': return { topic: CONTROL_TOPIC, data: randomBytes(rng, rng.int(0, 2_048)) }
      case 'hostile-json': return { topic: CONTROL_TOPIC, data: encodeJsonBytes(hostileValue(rng, 3)) }
      case 'observed-bytes-mutated': return { topic: CONTROL_TOPIC, data: mutateBytes(rng, control.length > 0 ? rng.pick(control) : randomBytes(rng, 200), 256 * 1024) }
      case 'observed-json-mutated': {
        const v = observedJson()
        return { topic: CONTROL_TOPIC, data: encodeJsonBytes(v === undefined ? hostileValue(rng) : mutateJson(rng, v)) }
      }
      case 'own-json-mutated': {
        // A real message re-authored by us, then mutated: what a buggy or hostile member would send.
        const v = observedJson()
        const own = v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...v, from: this.self } : edgeControlMessage(rng, this.self, this.opts.nodeIds)
        return { topic: CONTROL_TOPIC, data: encodeJsonBytes(mutateJson(rng, own)) }
      }
      case 'own-valid-edge': return { topic: CONTROL_TOPIC, data: encodeJsonBytes(edgeControlMessage(rng, this.self, this.opts.nodeIds)) }
      case 'own-stale': {
        const v = observedJson()
        const own = v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...v, from: this.self } : edgeControlMessage(rng, this.self, this.opts.nodeIds)
        return { topic: CONTROL_TOPIC, data: encodeJsonBytes(holdStale(mutateJson(rng, own), Math.max(0, this.highest - 1), this.highest)) }
      }
      case 'own-epoch-overflow': {
        const m = edgeControlMessage(rng, this.self, this.opts.nodeIds) as Record<string, Json>
        const e = rng.pick([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER - 1, 2 ** 52, 2 ** 50 + 1, this.highest + 2 ** 20 + 1, this.highest + 2 ** 30])
        if (m.type === 'leave') return { topic: CONTROL_TOPIC, data: encodeJsonBytes({ type: 'release', v: 1, from: this.self, epoch: e, leaving: false }) }
        if (m.type === 'heartbeat') {
          m.highestEpoch = e
          m.epoch = rng.chance(0.5) ? e : 0
        } else {
          m.epoch = e
        }
        return { topic: CONTROL_TOPIC, data: encodeJsonBytes(m) }
      }
      case 'oversized': {
        // Around the 64 KiB limit of a control message, and well past it.
        const size = rng.pick([64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 200_000, 900_000])
        const base = { type: 'leave', v: 1, from: this.self, pad: '' }
        base.pad = 'x'.repeat(Math.max(0, size - encodeJsonBytes(base).length))
        return { topic: CONTROL_TOPIC, data: encodeJsonBytes(base) }
      }
      case 'discovery-mutated': return { topic: DISCOVERY_TOPIC, data: mutateBytes(rng, discovery.length > 0 ? rng.pick(discovery) : randomBytes(rng, 80), 64 * 1024) }
      case 'discovery-fake-peer': {
        const addrs = Array.from({ length: rng.int(0, 4) }, () => rng.chance(0.8)
          ? multiaddr(`/ip4/127.0.0.${rng.int(1, 254)}/tcp/${rng.pick([1, 9, 22, rng.int(1024, 65535)])}`).bytes
          : randomBytes(rng, rng.int(0, 40)))
        return { topic: DISCOVERY_TOPIC, data: encodeDiscoveryPeer(rng.chance(0.9) ? fakePublicKey(rng) : randomBytes(rng, rng.int(0, 80)), addrs) }
      }
      case 'discovery-random': return { topic: DISCOVERY_TOPIC, data: randomBytes(rng, rng.int(0, 512)) }
      case 'discovery-self': {
        // Our own key, with addresses nobody listens on (or that do not parse).
        const addrs = Array.from({ length: rng.int(0, 3) }, () => rng.chance(0.7) ? multiaddr(`/ip4/127.0.0.1/tcp/${rng.pick([1, 9])}`).bytes : randomBytes(rng, rng.int(0, 40)))
        return { topic: DISCOVERY_TOPIC, data: encodeDiscoveryPeer(this.ownKey, addrs) }
      }
    }
  }

  private async loop (): Promise<void> {
    const rng = this.opts.rng
    const modes = Object.entries(this.opts.modes).filter(([, w]) => (w ?? 0) > 0) as Array<[GossipMode, number]>
    const total = modes.reduce((s, [, w]) => s + w, 0)
    const target = this.opts.target.toString()
    const highWater = this.opts.highWaterBytes ?? 256 * 1024
    let sinceYield = 0
    const maxPerSecond = this.opts.maxPerSecond ?? Number.POSITIVE_INFINITY
    const started = performance.now()
    let stuckSince: number | undefined
    while (this.running) {
      // Ahead of the allowed rate: wait until the schedule catches up.
      const ahead = this.stats.published - (performance.now() - started) * maxPerSecond / 1000
      if (ahead >= 1) {
        await new Promise(resolve => setTimeout(resolve, Math.max(1, ahead * 1000 / maxPerSecond)))
        continue
      }
      // publish() signs and queues without any I/O of its own, so this loop would otherwise run on
      // microtasks alone and starve the event loop (timers, sockets, the test itself).
      if (++sinceYield >= 16) {
        sinceYield = 0
        await new Promise(resolve => setImmediate(resolve))
      }
      const out = this.outbound()
      if (out === undefined) {
        // No gossip stream to the target (yet, or any more: an overloaded peer fails libp2p's ping monitor and loses
        // its connections): nothing would reach it. Dial again if the connection itself is gone.
        this.stats.noStream++
        if (this.peer.getConnections(this.opts.target).length === 0) {
          this.stats.reconnects++
          await this.peer.dial(this.opts.targetAddr, { signal: AbortSignal.timeout(10_000) }).catch(() => {})
        }
        await new Promise(resolve => setTimeout(resolve, 20))
        continue
      }
      if (out.writeBufferLength > highWater) {
        stuckSince ??= performance.now()
        if (this.opts.nextPeer !== undefined && performance.now() - stuckSince > STUCK_MS) {
          // The target stopped reading us: it has graylisted this identity. Go on as a fresh one.
          const old = this.peer
          let fresh: GossipFuzzPeer
          try {
            fresh = await this.opts.nextPeer()
          } catch {
            // The target too busy to take a new member now: stay stuck a while longer and try again.
            this.stats.rotationFailures++
            stuckSince = performance.now()
            continue
          }
          this.become(fresh)
          this.stats.rotations++
          stuckSince = undefined
          void Promise.resolve(old.stop()).catch(() => {})
          continue
        }
        await new Promise(resolve => setTimeout(resolve, 5))
        continue
      }
      stuckSince = undefined
      let r = rng.next() * total
      let mode = modes[0][0]
      for (const [m, w] of modes) { r -= w; if (r < 0) { mode = m; break } }
      const { topic, data } = this.build(rng, mode)
      try {
        const res = await this.peer.services.pubsub.publish(topic, data)
        this.stats.published++
        if (res.recipients.some(p => p.toString() === target)) {
          this.stats.frames++
          this.stats.byTopic[topic] = (this.stats.byTopic[topic] ?? 0) + 1
          this.stats.byMode[mode] = (this.stats.byMode[mode] ?? 0) + 1
        }
      } catch {
        this.stats.publishErrors++
      }
    }
  }
}

/** Raw gossipsub RPCs (what the meshsub stream carries) for the stream fuzzer: unsigned, badly signed, odd controls. */
export function rawRpcSeeds (rng: Prng, from: PeerId, samples: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = []
  const fromBytes = from.toMultihash().bytes
  for (let i = 0; i < 24; i++) {
    const data = samples.length > 0 && rng.chance(0.5) ? rng.pick(samples) : randomBytes(rng, rng.int(0, 300))
    const topic = rng.pick([CONTROL_TOPIC, DISCOVERY_TOPIC, '', randomString(rng, rng.int(1, 300))])
    const rpc: RPC = {
      subscriptions: rng.chance(0.5) ? [{ subscribe: rng.chance(0.7), topic }] : [],
      messages: rng.chance(0.8)
        ? [{ topic, data, from: rng.chance(0.8) ? fromBytes : randomBytes(rng, 38), seqno: randomBytes(rng, rng.pick([0, 8, 20])), signature: rng.chance(0.7) ? randomBytes(rng, 64) : undefined, key: rng.chance(0.2) ? randomBytes(rng, 36) : undefined }]
        : [],
      control: rng.chance(0.4)
        ? {
            ihave: [{ topicID: topic, messageIDs: Array.from({ length: rng.int(0, 50) }, () => randomBytes(rng, rng.int(0, 60))) }],
            iwant: [{ messageIDs: Array.from({ length: rng.int(0, 50) }, () => randomBytes(rng, rng.int(0, 60))) }],
            graft: [{ topicID: topic }],
            prune: [{ topicID: topic, peers: [], backoff: rng.pick(EDGE_NUMBERS.filter(n => Number.isSafeInteger(n) && n >= 0)) }],
            idontwant: []
          }
        : undefined
    }
    out.push(RPC.encode(rpc))
  }
  return out
}
