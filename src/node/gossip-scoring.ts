import type { GossipSub } from '@libp2p/gossipsub'
import type { PeerScoreParams, PeerScoreThresholds, TopicScoreParams } from '@libp2p/gossipsub/score'
import type { PeerId } from '@libp2p/interface'
import { CONTROL_TOPIC, DISCOVERY_TOPIC } from '../protocol/ids.js'

/**
 * Peer scoring, for one purpose: a member whose messages our validators refuse (src/election/gossip-adapter.ts,
 * src/node/discovery-validator.ts), a flood over its rate included, is graylisted: gossipsub drops its RPCs
 * before verifying a signature (GossipSub.acceptFrom). Only penalties count; a well-behaved peer scores 0, as
 * every peer did before scoring, so mesh upkeep and grafting behave as they did.
 *
 * - P4, refused messages: weight -1 a topic, squared, so 3 refusals cost 9 (nothing changes above -10), 9
 *   graylist (-81 < -80). Honest members never send a message any node refuses: what one node alone may refuse
 *   (a rate or an epoch of its own reckoning) is only rejected from its author, and ignored from a relay. The
 *   counter decays by 0.98 a second, so a peer stays graylisted about 50 × ln(n / 9) s after n refusals: 5 s
 *   after 10, 40 s after 20, 2 min after 100. A flood is graylisted after a few dozen to a hundred refusals
 *   (the score is recomputed every GOSSIP_SCORE_CACHE_MS), and the flood detector refuses its author for a
 *   minute after its last message (src/election/sender-rate.ts), so it is graylisted again at once when it is
 *   heard again.
 * - P1, P2 (time in mesh, first deliveries): 0. A positive score would let a peer bank credit to spend on
 *   refusals, and buys nothing here: we do no peer exchange and opportunistic grafting has no use in a mesh
 *   where every node dials every other.
 * - P3, P3b (mesh delivery deficit): 0. Control messages are a few a second, discovery one a minute; gossipsub's
 *   default asks a mesh peer for 20 deliveries a decay window and would graylist honest quiet peers.
 * - P6, IP colocation: 0. Many nodes on one host is normal here (see GOSSIP below).
 * - P7, behaviour (a GRAFT during backoff, an IHAVE whose IWANT went unanswered): weight -1 past 6 events,
 *   decaying by 0.9 a second, so a peer is graylisted only past 15 of them in quick succession. gossipsub's
 *   default (-10 from the first event, squared) graylists a peer for 3 unanswered IWANTs, which an honest node
 *   busy under a flood can miss.
 * - Disconnected peers' scores are kept an hour (gossipsub's default), but gossipsub 17.1.1 starts a peer's
 *   score afresh when it connects again (PeerScore.addPeer replaces the kept one). What holds back a flooder
 *   that reconnects is the flood detector's debt: its first message is refused again.
 */
const REFUSAL_ONLY_TOPIC: TopicScoreParams = {
  topicWeight: 1,
  timeInMeshWeight: 0,
  timeInMeshQuantum: 1_000,
  timeInMeshCap: 1,
  firstMessageDeliveriesWeight: 0,
  firstMessageDeliveriesDecay: 0.5,
  firstMessageDeliveriesCap: 1,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 1,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5_000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -1,
  invalidMessageDeliveriesDecay: 0.98
}

export const GOSSIP_SCORE_PARAMS: Partial<PeerScoreParams> = {
  topics: { [CONTROL_TOPIC]: REFUSAL_ONLY_TOPIC, [DISCOVERY_TOPIC]: REFUSAL_ONLY_TOPIC },
  topicScoreCap: 0,
  appSpecificWeight: 0,
  IPColocationFactorWeight: 0,
  behaviourPenaltyWeight: -1,
  behaviourPenaltyThreshold: 6,
  behaviourPenaltyDecay: 0.9,
  decayInterval: 1_000,
  decayToZero: 0.1,
  retainScore: 3_600_000
}

/**
 * gossipsub's defaults, stated here so that `status` and /metrics compare with the numbers the router uses:
 * below -10 a peer gets no IHAVE gossip from us, below -50 none of our published messages, below -80 we drop
 * everything it sends. acceptPX and opportunistic grafting are unreachable with P1/P2 at 0 (and PX is off).
 */
export const GOSSIP_SCORE_THRESHOLDS: PeerScoreThresholds = Object.freeze({
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 100,
  opportunisticGraftThreshold: 1
})

/** The part of the gossipsub instance that scores peers (the class has it; the exported type does not). */
interface ScoredPubSub {
  getPeers: () => Array<{ toString: () => string }>
  getScore?: (peer: string) => number
  score?: { scoreCacheValidityMs?: unknown }
}

/** The gossip peers whose score is below the graylist threshold: we drop whatever they send. */
export function graylistedPeers (pubsub: GossipSub): string[] {
  const scored = pubsub as unknown as ScoredPubSub
  if (typeof scored.getScore !== 'function') return []
  const getScore = scored.getScore.bind(pubsub)
  return scored.getPeers().map(p => p.toString()).filter(p => getScore(p) < GOSSIP_SCORE_THRESHOLDS.graylistThreshold)
}

/**
 * How long gossipsub may reuse a peer's computed score. It caches one for a whole heartbeat (1 s) and has no
 * option for it, so a flooder's score stayed what it was before the flood for up to a second, and each node
 * verified the signature of every message of that second before the first refusal counted: on the 3 nodes of
 * test/integration/gossip-scoring.test.ts, sharing one thread, that stalled the thread for 3 s and lapsed the
 * lease. Computing a score is a few multiplications per topic.
 */
export const GOSSIP_SCORE_CACHE_MS = 25

/** Sets {@link GOSSIP_SCORE_CACHE_MS} on gossipsub's private score keeper; false where its shape is not the one pinned. */
export function shortenScoreCache (pubsub: GossipSub, ms = GOSSIP_SCORE_CACHE_MS): boolean {
  const score = (pubsub as unknown as ScoredPubSub).score
  if (score === undefined || typeof score.scoreCacheValidityMs !== 'number') return false
  score.scoreCacheValidityMs = ms
  return true
}

const GOSSIP_PROTOCOLS = ['/meshsub/', '/floodsub/']

/** How often the graylist guard looks for new gossip streams, newly graylisted and recovered peers. */
export const GRAYLIST_CHECK_MS = 100
/** How often, at most, a watched stream that delivers data checks whether its peer is graylisted now. */
const GRAYLIST_WATCH_MS = 5

/** The graylist guard service (`libp2p.services.graylist`). */
export interface GraylistGuard {
  /** Peers whose gossip stream we stopped reading because they were graylisted. */
  paused: () => string[]
}

interface StreamLike {
  direction: string
  protocol: string
  readStatus: string
  pause: () => void
  resume: () => void
  addEventListener (type: 'message' | 'close', listener: () => void, options?: { once?: boolean }): void
  removeEventListener (type: 'message', listener: () => void): void
  listenerCount (type: 'message'): number
}
interface GuardComponents {
  pubsub: GossipSub
  connectionManager: { getConnections: (peer?: PeerId) => Array<{ streams: StreamLike[] }> }
}

/**
 * Stops reading the gossip stream of each graylisted peer, and reads it again once its score is back above the
 * threshold. gossipsub drops a graylisted peer's RPCs only after decrypting, demultiplexing and decoding them
 * (handleReceivedRpc), and yamux answers every data frame with a window update: at thousands of messages a
 * second that is a large part of a core spent on a peer whose every byte is thrown away. Paused, yamux grants
 * it no more window, and the flood stays in the flooder's own buffers (what its window already allowed, at
 * most our 4 MiB, is held unread). What we receive does not change: a graylisted peer's messages are dropped
 * either way; paused, those in flight arrive late instead, when it is heard again, and go through the
 * validators like any other.
 *
 * The check runs on the stream's own data, not only on a timer: a node whose event loop is busy with a flood
 * runs no timer until the sockets run dry, which they do not while it reads them (seconds, in the test).
 */
class GraylistPause implements GraylistGuard {
  /** Inbound gossip streams watched, and their peer. */
  private readonly watched = new Map<StreamLike, string>()
  private readonly pausedByUs = new Set<StreamLike>()
  private timer: ReturnType<typeof setInterval> | undefined

  constructor (private readonly components: GuardComponents, private readonly intervalMs: number) {}

  start (): void {
    this.timer = setInterval(() => { this.check() }, this.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
    // Their connections are closing with the node: nothing to resume.
    this.pausedByUs.clear()
    this.watched.clear()
  }

  paused (): string[] {
    return [...new Set([...this.pausedByUs].map(s => this.watched.get(s) ?? ''))].filter(p => p !== '')
  }

  private graylisted (peer: string): boolean {
    const getScore = (this.components.pubsub as unknown as ScoredPubSub).getScore
    return typeof getScore === 'function' && getScore.call(this.components.pubsub, peer) < GOSSIP_SCORE_THRESHOLDS.graylistThreshold
  }

  private apply (s: StreamLike, peer: string): void {
    const gray = this.graylisted(peer)
    if (gray && s.readStatus === 'readable') {
      s.pause()
      this.pausedByUs.add(s)
    } else if (!gray && this.pausedByUs.has(s)) {
      this.pausedByUs.delete(s)
      if (s.readStatus === 'paused') s.resume()
    }
  }

  private watch (s: StreamLike, peer: string): void {
    this.watched.set(s, peer)
    let checkedAt = 0
    const onData = (): void => {
      const now = Date.now()
      if (now - checkedAt < GRAYLIST_WATCH_MS) return
      checkedAt = now
      this.apply(s, peer)
    }
    s.addEventListener('message', onData)
    s.addEventListener('close', () => {
      s.removeEventListener('message', onData)
      this.watched.delete(s)
      this.pausedByUs.delete(s)
    }, { once: true })
  }

  private check (): void {
    const { pubsub, connectionManager } = this.components
    for (const peer of pubsub.getPeers()) {
      for (const c of connectionManager.getConnections(peer)) {
        for (const s of c.streams) {
          if (s.direction !== 'inbound' || this.watched.has(s) || !GOSSIP_PROTOCOLS.some(p => s.protocol.startsWith(p))) continue
          // A stream with no reader yet buffers its data; with our listener alone it would hand it to us and lose it.
          if (s.listenerCount('message') === 0) continue
          if (s.readStatus === 'readable' || s.readStatus === 'paused') this.watch(s, peer.toString())
        }
      }
    }
    for (const [s, peer] of this.watched) this.apply(s, peer)
  }
}

/** The graylist guard as a libp2p service: it needs `pubsub` among the services before it. */
export function graylistGuard (intervalMs = GRAYLIST_CHECK_MS): (components: GuardComponents) => GraylistGuard {
  return (components) => new GraylistPause(components, intervalMs)
}
