import { publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { Logger } from '../util/logger.js'
import { errorMessage } from '../util/errors.js'
import { CONTROL_TOPIC, DISCOVERY_TOPIC } from '../protocol/ids.js'
import { createLogLimiter } from '../protocol/log-limiter.js'
import {
  decodeControlMessage, encodeControlMessage,
  type ElectionEffect, type ElectionNode, type ElectionView, type MemberInfo
} from './index.js'

/**
 * The only place where the pure election state machine meets the network.
 * It turns gossipsub messages on the control topic into `receive` calls, a
 * 100 ms timer into `tick` calls, and `publish` effects into gossip; every
 * other effect goes to the owner through `onEffect`.
 *
 * Trust: gossipsub signs every message (StrictSign), so `message.from` is the
 * proven author. A control message whose own `from` names someone else is a
 * forgery (or a bug) and is rejected in the topic validator, which also stops
 * gossipsub from forwarding it and lowers the sender's peer score. So is
 * anything that does not decode. Drops are logged, rate-limited per sender.
 */
export type ControlMessage = NonNullable<ReturnType<typeof decodeControlMessage>>

/** The election as the adapter drives it; ElectionNode satisfies it. */
export type ElectionMachine = Pick<ElectionNode, 'start' | 'tick' | 'receive' | 'stop' | 'view' | 'isCoordinator' | 'setInfo'> & {
  /** Optional: connectivity changed, heartbeat now rather than at the next period. */
  nudge?: (now: number) => ElectionEffect[]
}

export type ValidationVerdict = 'accept' | 'ignore' | 'reject'

/** What gossipsub hands us; both the signed and the unsigned flavour. */
export type GossipMessage =
  | { type: 'signed', from: PeerId, topic: string, data: Uint8Array }
  | { type: 'unsigned', topic: string, data: Uint8Array }

/** The part of gossipsub the adapter uses (the node builds it from @libp2p/gossipsub). */
export interface ControlPubSub {
  subscribe: (topic: string) => void
  unsubscribe: (topic: string) => void
  publish: (topic: string, data: Uint8Array) => Promise<unknown>
  /** Returns the function that removes the listener. */
  onMessage: (listener: (message: GossipMessage) => void) => () => void
  /** Runs before delivery and before forwarding; undefined removes it. */
  setValidator: (topic: string, validator: ((peer: PeerId, message: GossipMessage) => ValidationVerdict) | undefined) => void
}

export interface GossipElectionInit {
  pubsub: ControlPubSub
  election: ElectionMachine
  log: Logger
  topic?: string
  /**
   * The pubsub-peer-discovery topic, validated here too (see checkDiscoveryMessage); false leaves it alone.
   * Default DISCOVERY_TOPIC.
   */
  discoveryTopic?: string | false
  /** How often the state machine is ticked. */
  tickMs?: number
  /**
   * Milliseconds, monotonic within the process. The default is wall-clock
   * aligned (timeOrigin + performance.now()) so that numbers from different
   * processes on one machine are comparable in logs, yet never jump back.
   */
  clock?: () => number
  onEffect?: (effect: Exclude<ElectionEffect, { type: 'publish' }>) => void
}

export interface GossipElection {
  start: () => void
  /** Runs the machine's stop effects (a resigning coordinator says so) and leaves the topic. */
  stop: (options?: { signal?: AbortSignal }) => Promise<void>
  view: () => ElectionView
  isCoordinator: () => boolean
  setInfo: (info: MemberInfo) => void
  /** A peer joined the control topic: let the election announce itself to it at once. */
  nudge: () => void
  /** Counters for tests and benchmarks. */
  stats: () => GossipElectionStats
}

export interface GossipElectionStats {
  received: number
  dropped: number
  /** Discovery-topic messages refused (not counted in `dropped`, which is the control topic's). */
  discoveryDropped?: number
  published: number
  publishedBytes: number
}

export const DEFAULT_TICK_MS = 100

/**
 * Epochs are adopted from any member's message (by nodes not bound to a live
 * lease, docs/election.md), and a node claims
 * `highest + 1`. A message at or near Number.MAX_SAFE_INTEGER (the schema's
 * own bound) made every node adopt it, persist it in election.json, and then
 * claim an epoch past 2^53 that no node's schema accepts: heartbeats stopped
 * decoding, members looked dead to each other, and no coordinator was ever
 * elected again, restarts included (found by test/cluster/fuzz.test.ts). So the
 * adapter refuses epochs above MAX_EPOCH, which leaves 2^53 - 2^50 claims of
 * headroom, and epochs more than MAX_EPOCH_JUMP above the highest this node
 * knows: elections move one epoch per claim, so a real member is never that
 * far ahead (a million failed claims, weeks of a lost partition), while a
 * forged jump would need a billion messages to exhaust the range.
 */
export const MAX_EPOCH = 2 ** 50
export const MAX_EPOCH_JUMP = 2 ** 20

/** A pubsub-peer-discovery record is a key and a few addresses: a few hundred bytes. */
export const MAX_DISCOVERY_MESSAGE_BYTES = 8 * 1024
const MAX_DISCOVERY_ADDRS = 64

/**
 * pubsub-peer-discovery announces `{ publicKey, addrs }` and every node dials
 * the peers it learns this way, but the library never checks that the key is
 * the sender's own: one gossip peer could announce any number of made-up
 * peers, and every node of the mesh dialled each of them again and again (the
 * fuzz test's forged announcements queued hundreds of dials a second, filled
 * libp2p's dial queue and starved the election until the coordinator lost its
 * lease). A node only ever announces itself, so a record must carry the key of
 * the message's signed author. Returns why a message is refused, or undefined.
 */
export function checkDiscoveryMessage (message: GossipMessage): string | undefined {
  if (message.type !== 'signed') return 'unsigned'
  const data = message.data
  if (!(data instanceof Uint8Array) || data.byteLength > MAX_DISCOVERY_MESSAGE_BYTES) return 'too large'
  // protobuf Peer { bytes publicKey = 1; repeated bytes addrs = 2; }, decoded by hand: nothing else is allowed.
  let publicKey: Uint8Array | undefined
  let addrs = 0
  let i = 0
  const varint = (): number => {
    let n = 0
    for (let shift = 0; shift < 35; shift += 7) {
      if (i >= data.byteLength) throw new Error('truncated')
      const b = data[i++]
      n += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return n
    }
    throw new Error('varint too long')
  }
  try {
    while (i < data.byteLength) {
      const tag = varint()
      if (tag !== 0x0a && tag !== 0x12) return 'unexpected field'
      const len = varint()
      if (i + len > data.byteLength) return 'truncated'
      const bytes = data.subarray(i, i + len)
      i += len
      if (tag === 0x0a) publicKey = bytes
      else if (++addrs > MAX_DISCOVERY_ADDRS) return 'too many addresses'
    }
    if (publicKey === undefined) return 'no key'
    if (!peerIdFromPublicKey(publicKeyFromProtobuf(publicKey)).equals(message.from)) return 'announces another peer'
  } catch {
    return 'does not decode'
  }
  return undefined
}

/** Every epoch a control message carries. */
function epochsOf (m: ControlMessage): number[] {
  switch (m.type) {
    case 'heartbeat': return [m.epoch, m.highestEpoch, m.ack?.epoch ?? 0, m.promise?.epoch ?? 0]
    case 'leave': return []
    default: return [m.epoch]
  }
}

export function defaultClock (): number {
  return performance.timeOrigin + performance.now()
}

export function createGossipElection (init: GossipElectionInit): GossipElection {
  const { pubsub, election, log } = init
  const topic = init.topic ?? CONTROL_TOPIC
  const discoveryTopic = init.discoveryTopic ?? DISCOVERY_TOPIC
  const tickMs = init.tickMs ?? DEFAULT_TICK_MS
  const clock = init.clock ?? defaultClock
  const limiter = createLogLimiter(1_000)
  const stats: GossipElectionStats = { received: 0, dropped: 0, discoveryDropped: 0, published: 0, publishedBytes: 0 }
  let timer: NodeJS.Timeout | undefined
  let running = false
  let unlisten: (() => void) | undefined
  const pending = new Set<Promise<unknown>>()

  /** `reason` is a fixed word (the rate-limit key); `detail` may carry remote data. */
  const drop = (sender: string, reason: string, detail?: string): void => {
    stats.dropped++
    const suppressed = limiter.admit(`${sender}:${reason}`)
    if (suppressed === undefined) return
    log.warn({ topic, peer: sender, reason, detail, suppressed }, 'dropped control message')
  }

  /** Decode and authenticate; undefined (and a log line) when the message must not be used. */
  const check = (message: GossipMessage): ControlMessage | undefined => {
    if (message.type !== 'signed') {
      drop('unknown', 'unsigned')
      return undefined
    }
    const sender = message.from.toString()
    const decoded = decodeControlMessage(message.data)
    if (decoded === undefined) {
      drop(sender, 'does not decode')
      return undefined
    }
    if (decoded.from !== sender) {
      drop(sender, 'forged sender', `claims to be from ${decoded.from.slice(0, 80)}`)
      return undefined
    }
    const epoch = Math.max(0, ...epochsOf(decoded))
    if (epoch > MAX_EPOCH || epoch > election.view(clock()).highestEpoch + MAX_EPOCH_JUMP) {
      drop(sender, 'epoch out of range', `epoch ${epoch}`)
      return undefined
    }
    return decoded
  }

  const apply = (effects: ElectionEffect[]): void => {
    for (const effect of effects) {
      if (effect.type === 'publish') {
        publish(effect.message)
        continue
      }
      switch (effect.type) {
        case 'role-changed':
          log.info({ role: effect.role, epoch: effect.epoch, leader: effect.leader }, 'election role changed')
          break
        case 'member-changed':
          log.info({ peer: effect.peer, liveness: effect.liveness }, 'member changed')
          break
        default:
          break
      }
      try {
        init.onEffect?.(effect)
      } catch (err) {
        log.error({ err: errorMessage(err), effect: effect.type }, 'election effect handler failed')
      }
    }
  }

  const publish = (message: Parameters<typeof encodeControlMessage>[0]): void => {
    let bytes: Uint8Array
    try {
      bytes = encodeControlMessage(message)
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'cannot encode control message')
      return
    }
    stats.published++
    stats.publishedBytes += bytes.byteLength
    const p = pubsub.publish(topic, bytes).catch((err: unknown) => {
      // No subscriber yet, or a stream that just closed: the next heartbeat repeats it.
      log.debug({ err: errorMessage(err) }, 'control publish failed')
    })
    pending.add(p)
    void p.finally(() => pending.delete(p))
  }

  const validator = (_peer: PeerId, message: GossipMessage): ValidationVerdict => {
    return check(message) === undefined ? 'reject' : 'accept'
  }

  const discoveryValidator = (_peer: PeerId, message: GossipMessage): ValidationVerdict => {
    const why = checkDiscoveryMessage(message)
    if (why === undefined) return 'accept'
    stats.discoveryDropped = (stats.discoveryDropped ?? 0) + 1
    const sender = message.type === 'signed' ? message.from.toString() : 'unknown'
    const suppressed = limiter.admit(`${sender}:discovery:${why}`)
    if (suppressed !== undefined) log.warn({ topic: discoveryTopic, peer: sender, reason: why, suppressed }, 'dropped discovery message')
    return 'reject'
  }

  const onMessage = (message: GossipMessage): void => {
    if (message.topic !== topic || !running) return
    // The validator already ran; checking again costs microseconds and keeps
    // this handler safe even if a validator is replaced.
    const decoded = check(message)
    if (decoded === undefined) return
    stats.received++
    try {
      apply(election.receive(decoded, clock()))
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'election rejected a message')
    }
  }

  const tick = (): void => {
    try {
      apply(election.tick(clock()))
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'election tick failed')
    }
  }

  return {
    start () {
      if (running) return
      running = true
      pubsub.setValidator(topic, validator)
      if (discoveryTopic !== false) pubsub.setValidator(discoveryTopic, discoveryValidator)
      unlisten = pubsub.onMessage(onMessage)
      pubsub.subscribe(topic)
      apply(election.start(clock()))
      timer = setInterval(tick, tickMs)
    },
    async stop (options = {}) {
      if (!running) return
      running = false
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      apply(election.stop(clock()))
      // Give the farewell a moment on the wire, but never hold shutdown hostage to it.
      const flushed = Promise.allSettled([...pending])
      const limit = new Promise(resolve => setTimeout(resolve, 250).unref())
      const aborted = new Promise(resolve => options.signal?.addEventListener('abort', resolve, { once: true }))
      await Promise.race([flushed, limit, aborted])
      unlisten?.()
      unlisten = undefined
      pubsub.setValidator(topic, undefined)
      if (discoveryTopic !== false) pubsub.setValidator(discoveryTopic, undefined)
      try {
        pubsub.unsubscribe(topic)
      } catch {
        // Already stopped: nothing to leave.
      }
    },
    view: () => election.view(clock()),
    isCoordinator: () => election.isCoordinator(clock()),
    setInfo: (info) => { election.setInfo(info) },
    nudge: () => {
      if (!running || election.nudge === undefined) return
      try {
        apply(election.nudge(clock()))
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'election nudge failed')
      }
    },
    stats: () => ({ ...stats })
  }
}
