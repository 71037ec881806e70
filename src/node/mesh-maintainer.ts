import type { AbortOptions, Connection, IdentifyResult, Libp2pEvents, PeerData, PeerId, PeerInfo, TypedEventTarget } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../util/logger.js'
import { errorMessage } from '../util/errors.js'
import { isHandshakeRefusal } from '../protocol/errors.js'

/**
 * Keeps this node connected to every other node of the mesh. libp2p 3 dials
 * nothing by itself, so this is what turns "I have heard of peer X" into a
 * connection, and what repairs the mesh after a restart or a healed partition.
 *
 * Candidates come from three places: pubsub-peer-discovery (`peer:discovery`),
 * identify (a peer that serves the member protocol is an mrp2p node), and the
 * election's heartbeats, which carry every member's addresses (`addMember`):
 * the first heartbeat relayed by the bootstrap node is enough to find everyone.
 *
 * - A new candidate is dialled at once by the lower PeerId of the pair, so two
 *   nodes do not open two connections to each other; the higher one waits a
 *   grace period and dials only if still unconnected.
 * - Every sweep interval, each unconnected, unblocked candidate is dialled
 *   again, with per-peer exponential backoff; one failing for 5 minutes is
 *   forgotten until it shows up again.
 * - While we have no connection at all, the bootstrap addresses are dialled
 *   with exponential backoff (0.5 s doubling to 10 s), and each failure says so
 *   in the log: an unreachable bootstrap never stops the node.
 * - Connected to the mesh but hearing no member at all (`addMember` never
 *   called) for `silentMeshMs`: the links are closed and the bootstrap dialled
 *   anew. gossipsub opens its streams once per connection; one whose stream
 *   set-up failed under load carries nothing for good, and a 20-node cluster
 *   test found a node that stayed so, connected to its bootstrap and alone.
 */
type MaintainerEvents = Pick<Libp2pEvents, 'peer:discovery' | 'peer:identify'>

export interface MaintainerHost {
  peerId: PeerId
  getConnections: (peer?: PeerId) => Connection[]
  dial: (target: PeerId | Multiaddr, options?: AbortOptions) => Promise<Connection>
  peerStore: { merge: (id: PeerId, data: PeerData, options?: AbortOptions) => Promise<unknown> }
  addEventListener: TypedEventTarget<MaintainerEvents>['addEventListener']
  removeEventListener: TypedEventTarget<MaintainerEvents>['removeEventListener']
}

export interface MeshMaintainerInit {
  host: MaintainerHost
  bootstrap: Multiaddr[]
  /** The protocol every mrp2p node serves; tells members from other peers after identify. */
  memberProtocol: string
  isBlocked: (peerId: string) => boolean
  log: Logger
  sweepIntervalMs?: number
  dialTimeoutMs?: number
  /** How long a node linked to the mesh may hear no member before it reconnects (default 10 s, doubling to 80 s). */
  silentMeshMs?: number
  /**
   * Called when a bootstrap dial fails in the handshake before this node ever reached a member: the mesh is
   * private and our key is missing or wrong, which no retry can fix.
   */
  onHandshakeRefused?: (target: string) => void
}

export interface MeshMaintainer {
  start: () => void
  stop: () => void
  /** A member the election heard of, with the addresses it announced. */
  addMember: (peerId: string, addrs: string[]) => void
}

const BACKOFF_MIN_MS = 500
const BACKOFF_MAX_MS = 10_000
const PEER_BACKOFF_MAX_MS = 8_000
/** How long the higher PeerId of a pair leaves the first dial to the lower one. */
const HIGHER_ID_GRACE_MS = 2_000
const FORGET_AFTER_MS = 5 * 60_000

interface Candidate {
  id: PeerId
  nextAttempt: number
  backoff: number
  failingSince?: number
  inFlight: boolean
  /** Known to be an mrp2p node (identify listed the member protocol, or a heartbeat named it), not just any peer. */
  member: boolean
}

export function createMeshMaintainer (init: MeshMaintainerInit): MeshMaintainer {
  const { host, log } = init
  const self = host.peerId.toString()
  const sweepIntervalMs = init.sweepIntervalMs ?? 1_000
  const dialTimeoutMs = init.dialTimeoutMs ?? 5_000
  const candidates = new Map<string, Candidate>()
  const bootstrap = init.bootstrap.filter(ma => ma.getComponents().findLast(c => c.name === 'p2p')?.value !== self)
  const CODE_P2P = 0x01a5
  const bootstrapIds = new Set(bootstrap.map(ma => ma.getComponents().findLast(c => c.name === 'p2p')?.value).filter((id): id is string => id !== undefined))
  let bootstrapBackoff = BACKOFF_MIN_MS
  let bootstrapNext = 0
  let bootstrapAttempt = 0
  let bootstrapInFlight = false
  /** Once in the mesh, a refused handshake is one odd peer, not a wrong key. */
  let everConnected = false
  /** Some member's heartbeat reached us: gossip flows. */
  let heardMember = false
  /** Since when we have been linked to a member without hearing one, and how long that may last this time. */
  let silentSince: number | undefined
  let silentMeshMs = init.silentMeshMs ?? 10_000
  let timer: NodeJS.Timeout | undefined
  let running = false
  const controller = new AbortController()

  const connected = (id: PeerId): boolean => host.getConnections(id).length > 0

  const dial = (c: Candidate): void => {
    if (c.inFlight || !running) return
    c.inFlight = true
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(dialTimeoutMs)])
    host.dial(c.id, { signal }).then(() => {
      c.backoff = BACKOFF_MIN_MS
      c.failingSince = undefined
    }, (err: unknown) => {
      const now = performance.now()
      c.failingSince ??= now
      c.nextAttempt = now + c.backoff * (0.75 + Math.random() * 0.5)
      c.backoff = Math.min(c.backoff * 2, PEER_BACKOFF_MAX_MS)
      log.debug({ peer: c.id.toString(), err: errorMessage(err), retryInMs: Math.round(c.nextAttempt - now) }, 'dial to peer failed')
    }).finally(() => { c.inFlight = false })
  }

  /** Note a candidate; dial it now if it is new and ours to dial. */
  const consider = (id: PeerId, member: boolean): void => {
    const key = id.toString()
    if (key === self || !running) return
    let c = candidates.get(key)
    if (c === undefined) {
      const now = performance.now()
      c = { id, nextAttempt: self < key ? now : now + HIGHER_ID_GRACE_MS, backoff: BACKOFF_MIN_MS, inFlight: false, member }
      candidates.set(key, c)
    }
    c.member ||= member
    if (!init.isBlocked(key) && !connected(id) && performance.now() >= c.nextAttempt) dial(c)
  }

  // libp2p also calls every peer new to its peer store "discovered", a `status` client or a submitter that
  // connected to us included: without addresses there is nothing to dial, and such a peer is no member.
  const onDiscovery = (evt: CustomEvent<PeerInfo>): void => {
    if (evt.detail.multiaddrs.length > 0) consider(evt.detail.id, false)
  }
  const onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    if (evt.detail.protocols.includes(init.memberProtocol) && evt.detail.listenAddrs.length > 0) consider(evt.detail.peerId, true)
  }

  const sweepBootstrap = (now: number): void => {
    if (bootstrap.length === 0 || bootstrapInFlight || now < bootstrapNext) return
    // Only members count: a probe, `status` or a submitter connected to us does not put us in the mesh (a node whose
    // first bootstrap dial timed out while the test harness polled it once stopped retrying for good).
    // Only an open connection counts: one still listed while it closes would stop the retries for good too.
    const isMember = (peer: string): boolean => candidates.get(peer)?.member === true || bootstrapIds.has(peer)
    const linked = host.getConnections().find(c => c.status === 'open' && isMember(c.remotePeer.toString()))
    if (linked !== undefined) {
      if (bootstrapAttempt > 0) log.info({ peer: linked.remotePeer.toString(), status: linked.status, attempts: bootstrapAttempt }, 'in the mesh; bootstrap retries stop')
      everConnected = true
      bootstrapBackoff = BACKOFF_MIN_MS
      bootstrapAttempt = 0
      if (!heardMember) reconnectIfSilent(now)
      return
    }
    silentSince = undefined
    bootstrapInFlight = true
    const attempt = ++bootstrapAttempt
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(dialTimeoutMs)])
    // Our own bound too: a dial that joins an earlier, aborted dial to the same peer in libp2p's queue can stay
    // pending for good, and a bootstrap loop waiting on it would never try again.
    let bound: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_resolve, reject) => {
      bound = setTimeout(() => { reject(new Error(`no answer within ${dialTimeoutMs} ms`)) }, dialTimeoutMs + 500)
    })
    // From the second attempt on, dial the bare transport address: libp2p folds a dial to a PeerId into one already
    // pending for it, and a dial wedged under start-up load would swallow every retry.
    const targets = attempt === 1 ? bootstrap : bootstrap.map(ma => ma.decapsulateCode(CODE_P2P))
    Promise.race([Promise.any(targets.map(async ma => await host.dial(ma, { signal }))), timedOut]).then((conn) => {
      log.info({ peer: conn.remotePeer.toString(), attempt }, 'connected to bootstrap peer')
      everConnected = true
      bootstrapBackoff = BACKOFF_MIN_MS
      bootstrapAttempt = 0
    }, (err: unknown) => {
      if (!running) return
      const retryInMs = Math.round(bootstrapBackoff * (0.75 + Math.random() * 0.5))
      bootstrapNext = performance.now() + retryInMs
      bootstrapBackoff = Math.min(bootstrapBackoff * 2, BACKOFF_MAX_MS)
      if (!everConnected && isHandshakeRefusal(err) && init.onHandshakeRefused !== undefined) {
        init.onHandshakeRefused(bootstrap.map(String).join(', '))
        return
      }
      const reasons = err instanceof AggregateError ? err.errors.map(errorMessage) : [errorMessage(err)]
      log.warn({ bootstrap: bootstrap.map(String), attempt, retryInMs, err: reasons.join('; ') }, `bootstrap peer unreachable, retrying in ${(retryInMs / 1000).toFixed(1)} s`)
    }).finally(() => {
      clearTimeout(bound)
      bootstrapInFlight = false
    })
  }

  const reconnectIfSilent = (now: number): void => {
    silentSince ??= now
    if (now - silentSince < silentMeshMs) return
    const links = host.getConnections().filter(c => candidates.get(c.remotePeer.toString())?.member === true || bootstrapIds.has(c.remotePeer.toString()))
    log.warn({ silentMs: Math.round(now - silentSince), links: links.length }, 'linked to the mesh but hearing no member; reconnecting')
    silentSince = undefined
    silentMeshMs = Math.min(silentMeshMs * 2, 8 * (init.silentMeshMs ?? 10_000))
    for (const conn of links) conn.close().catch(() => { conn.abort(new Error('silent mesh link')) })
  }

  const sweep = (): void => {
    const now = performance.now()
    sweepBootstrap(now)
    for (const [key, c] of candidates) {
      if (init.isBlocked(key)) continue
      if (connected(c.id)) {
        c.backoff = BACKOFF_MIN_MS
        c.failingSince = undefined
        continue
      }
      if (c.failingSince !== undefined && now - c.failingSince > FORGET_AFTER_MS) {
        candidates.delete(key)
        continue
      }
      if (now >= c.nextAttempt) dial(c)
    }
  }

  return {
    start () {
      if (running) return
      running = true
      host.addEventListener('peer:discovery', onDiscovery)
      host.addEventListener('peer:identify', onIdentify)
      sweep()
      timer = setInterval(sweep, sweepIntervalMs)
    },
    stop () {
      if (!running) return
      running = false
      host.removeEventListener('peer:discovery', onDiscovery)
      host.removeEventListener('peer:identify', onIdentify)
      if (timer !== undefined) clearInterval(timer)
      controller.abort()
    },
    addMember (peer, addrs) {
      if (!running || peer === self) return
      heardMember = true
      let id: PeerId
      let mas: Multiaddr[]
      try {
        id = peerIdFromString(peer)
        // Addresses come from a signed heartbeat, but only that peer's own
        // addresses are worth keeping: anything naming another PeerId is dropped.
        mas = addrs.map(a => multiaddr(a)).filter(ma => {
          const p2p = ma.getComponents().findLast(c => c.name === 'p2p')?.value
          return p2p === undefined || p2p === peer
        })
      } catch (err) {
        log.debug({ peer, err: errorMessage(err) }, 'ignoring member with unusable addresses')
        return
      }
      const known = candidates.get(peer)
      if (known !== undefined && connected(id)) {
        known.member = true
        return
      }
      host.peerStore.merge(id, { multiaddrs: mas }).then(() => { consider(id, true) }, (err: unknown) => {
        log.debug({ peer, err: errorMessage(err) }, 'cannot store member addresses')
      })
    }
  }
}
