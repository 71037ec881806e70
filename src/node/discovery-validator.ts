import { publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { ControlPubSub, GossipMessage } from '../election/gossip-adapter.js'
import { DISCOVERY_TOPIC } from '../protocol/ids.js'
import { createLogLimiter } from '../util/log-limiter.js'
import type { Logger } from '../util/logger.js'

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

export interface DiscoveryValidatorInit {
  pubsub: Pick<ControlPubSub, 'setValidator'>
  log: Logger
  /** Default DISCOVERY_TOPIC. */
  topic?: string
}

/** The discovery topic's gossipsub validator: refuses what {@link checkDiscoveryMessage} refuses, and counts it. */
export interface DiscoveryValidator {
  start: () => void
  stop: () => void
  /** Discovery messages refused since start (status shows it as `discoveryDropped`). */
  dropped: () => number
}

/**
 * Refusing in the validator, not after delivery, also keeps gossipsub from
 * forwarding a forged record and lowers its sender's peer score. Refusals are
 * logged, rate-limited per sender and reason.
 */
export function createDiscoveryValidator (init: DiscoveryValidatorInit): DiscoveryValidator {
  const { pubsub, log } = init
  const topic = init.topic ?? DISCOVERY_TOPIC
  const limiter = createLogLimiter(1_000)
  let dropped = 0
  return {
    start () {
      pubsub.setValidator(topic, (_peer, message) => {
        const why = checkDiscoveryMessage(message)
        if (why === undefined) return 'accept'
        dropped++
        const sender = message.type === 'signed' ? message.from.toString() : 'unknown'
        const suppressed = limiter.admit(`${sender}:discovery:${why}`)
        if (suppressed !== undefined) log.warn({ topic, peer: sender, reason: why, suppressed }, 'dropped discovery message')
        return 'reject'
      })
    },
    stop () {
      pubsub.setValidator(topic, undefined)
    },
    dropped: () => dropped
  }
}
