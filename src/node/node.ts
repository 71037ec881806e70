import type { AbortOptions } from '@libp2p/interface'
import type { SubscriptionChangeData } from '@libp2p/gossipsub'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createLogger, type Logger } from '../util/logger.js'
import { errorMessage } from '../util/errors.js'
import { ElectionNode, resolveElectionConfig, type ElectionConfig, type ElectionView, type MemberInfo } from '../election/index.js'
import { controlPubSub } from '../election/control-pubsub.js'
import { createGossipElection, type GossipElection, type GossipElectionStats } from '../election/gossip-adapter.js'
import { CONTROL_TOPIC, INFO_PROTOCOL } from '../protocol/ids.js'
import { serveInfo, type InfoResponse, type InfoTasks } from '../protocol/info.js'
import type { RegisteredHandler } from '../protocol/reqresp.js'
import { createBlockList } from './block-list.js'
import { BLOCKED_PEERS_FILE, createDataDir, type DataDir } from './data-dir.js'
import { NodeNotStartedError } from './errors.js'
import { createDiscoveryValidator } from './discovery-validator.js'
import { createConnectionGater } from './gater.js'
import { toInfoResponse } from './info-view.js'
import { createMeshLibp2p, type MeshLibp2p } from './libp2p.js'
import { swarmKeyMismatch } from '../protocol/errors.js'
import { explainListenFailure } from './listen-errors.js'
import { createMeshMaintainer, type MeshMaintainer } from './mesh-maintainer.js'

/**
 * The composition root of one mrp2p node: data dir and identity, libp2p with
 * its transports and gossip, the partition-control block list, the mesh
 * maintainer, the election over gossip, and the info protocol. Roles added
 * later (worker, coordinator) get `libp2p` to register their protocols and
 * `election` to learn who leads.
 */
export interface NodeConfig {
  dataDir: string
  listen: string[]
  bootstrap: Multiaddr[]
  slots: number
  worker: boolean
  election: Partial<ElectionConfig>
  version: string
  /** pubsub-peer-discovery re-announce interval. */
  discoveryIntervalMs?: number
  tickMs?: number
  blockListPollMs?: number
  /** Set: a private mesh; only peers with this key can connect. */
  swarmKey?: Uint8Array
  /** Called when the node cannot ever join (its bootstrap refused the handshake: wrong or missing swarm key). */
  onFatal?: (err: Error) => void
}

export interface MeshNode {
  readonly peerId: string
  readonly libp2p: MeshLibp2p
  readonly dataDir: DataDir
  /** Dialable addresses ending in /p2p/<PeerId>. */
  addrs: () => string[]
  view: () => ElectionView
  isCoordinator: () => boolean
  info: () => InfoResponse
  electionStats: () => ControlStats
  setRunning: (running: number) => void
  /** Lets the worker role add what it holds to this node's info answers. */
  setTaskInfo: (tasks: () => InfoTasks) => void
  stop: (options?: AbortOptions) => Promise<void>
}

/** The control topic's counters, with the discovery topic's refusals beside them. */
export type ControlStats = GossipElectionStats & {
  /** Discovery-topic messages refused (not counted in `dropped`, which is the control topic's). */
  discoveryDropped: number
}

const DEFAULT_DISCOVERY_INTERVAL_MS = 5_000

/** Build and start a node; on failure everything already opened is closed again. */
export async function startNode (config: NodeConfig, options: AbortOptions = {}): Promise<MeshNode> {
  const log = createLogger('node')
  const dataDir = createDataDir(config.dataDir)
  await dataDir.open(options)
  const cleanups: Array<() => Promise<void> | void> = [async () => { await dataDir.close() }]
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) {
      try { await fn() } catch (err) { log.debug({ err: errorMessage(err) }, 'cleanup step failed') }
    }
  }

  try {
    const privateKey = await dataDir.loadOrCreateKey(options)
    const initialEpoch = await dataDir.readEpoch(options)

    const blockList = createBlockList({ file: dataDir.file(BLOCKED_PEERS_FILE), pollMs: config.blockListPollMs, log: createLogger('block-list') })
    await blockList.start()
    cleanups.push(() => { blockList.stop() })

    const libp2p = await createMeshLibp2p({
      privateKey,
      listen: config.listen,
      connectionGater: createConnectionGater(blockList),
      discoveryIntervalMs: config.discoveryIntervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS,
      version: config.version,
      swarmKey: config.swarmKey
    })
    const self = libp2p.peerId.toString()
    const electionConfig = resolveElectionConfig(config.election)
    const startedAt = performance.now()

    let election: GossipElection | undefined
    const pubsub = controlPubSub(libp2p.services.pubsub)
    const electionLog = createLogger('election')
    // Its refusals have always been logged as the election's: the log lines stay as they were.
    const discoveryValidator = createDiscoveryValidator({ pubsub, log: electionLog })
    const controlStats = (started: GossipElection): ControlStats => {
      const { received, dropped, published, publishedBytes } = started.stats()
      return { received, dropped, discoveryDropped: discoveryValidator.dropped(), published, publishedBytes }
    }
    const stopSignal = new AbortController()
    let running = 0
    let taskInfo: (() => InfoTasks) | undefined
    const memberInfo = (): MemberInfo => ({ addrs: addrsOf(libp2p), slots: config.slots, running, worker: config.worker, version: config.version })

    const infoNow = (): InfoResponse => {
      if (election === undefined) throw new NodeNotStartedError('election not started yet')
      return toInfoResponse({
        self,
        addrs: addrsOf(libp2p),
        version: config.version,
        worker: config.worker,
        slots: config.slots,
        connections: [...new Set(libp2p.getConnections().map(c => c.remotePeer.toString()))],
        blocked: blockList.list(),
        view: election.view(),
        isCoordinator: election.isCoordinator(),
        leaseMs: electionConfig.leaseMs,
        uptimeMs: performance.now() - startedAt,
        tasks: taskInfo?.(),
        streams: openStreams(libp2p),
        control: controlStats(election)
      })
    }

    // Registered before start so identify's first answer already lists it:
    // that is how peers tell mrp2p nodes from other libp2p peers.
    const infoHandler: RegisteredHandler = await serveInfo({ registrar: libp2p, log: createLogger('info'), info: infoNow })
    cleanups.push(async () => { await infoHandler.unregister() })

    try {
      await libp2p.start()
    } catch (err) {
      throw await explainListenFailure(config.listen, err)
    }
    cleanups.push(async () => { await stopLibp2p(libp2p, log) })

    const maintainer: MeshMaintainer = createMeshMaintainer({
      host: libp2p,
      bootstrap: config.bootstrap,
      memberProtocol: INFO_PROTOCOL,
      isBlocked: (peer) => blockList.has(peer),
      log: createLogger('mesh'),
      onHandshakeRefused: config.onFatal === undefined ? undefined : (target) => { config.onFatal?.(swarmKeyMismatch(target, config.swarmKey !== undefined)) }
    })

    const electionNode = new ElectionNode({
      self,
      config: config.election,
      random: Math.random,
      info: memberInfo(),
      initialEpoch
    })
    election = createGossipElection({
      pubsub,
      election: electionNode,
      log: electionLog,
      tickMs: config.tickMs,
      onEffect: (effect) => {
        if (effect.type === 'epoch-observed') {
          dataDir.writeEpoch(effect.epoch).catch((err: unknown) => {
            log.error({ err: errorMessage(err), epoch: effect.epoch }, 'cannot persist election epoch')
          })
        } else if (effect.type === 'member-changed' && effect.liveness === 'alive') {
          // Heartbeats carry each member's addresses: the fastest way to a full mesh.
          const member = election?.view().members.find(m => m.peer === effect.peer)
          if (member !== undefined) maintainer.addMember(member.peer, member.info.addrs)
        }
      }
    })
    discoveryValidator.start()
    cleanups.push(() => { discoveryValidator.stop() })
    election.start()
    const startedElection = election
    // A peer that just subscribed to the control topic has not heard our last
    // heartbeat: after a heal, this is what makes both sides learn of each
    // other's leases within one message delay.
    const onSubscription = (evt: CustomEvent<SubscriptionChangeData>): void => {
      if (evt.detail.subscriptions.some(s => s.topic === CONTROL_TOPIC && s.subscribe)) startedElection.nudge()
    }
    libp2p.services.pubsub.addEventListener('subscription-change', onSubscription)
    cleanups.push(() => { libp2p.services.pubsub.removeEventListener('subscription-change', onSubscription) })
    cleanups.push(async () => { await startedElection.stop({ signal: stopSignal.signal }) })
    maintainer.start()
    cleanups.push(() => { maintainer.stop() })

    // A peer that becomes blocked loses its open connections too: the gater
    // only guards new ones.
    blockList.onChange((blocked) => {
      for (const conn of libp2p.getConnections()) {
        if (blocked.has(conn.remotePeer.toString())) {
          conn.close().catch(() => { conn.abort(new Error('peer blocked')) })
        }
      }
    })

    // Our own addresses may change (identify learns more): keep the heartbeat's copy fresh.
    libp2p.addEventListener('self:peer:update', () => { startedElection.setInfo(memberInfo()) })

    await dataDir.writeNodeInfo({ peerId: self, addrs: addrsOf(libp2p), pid: process.pid, startedAt: new Date().toISOString(), ready: true }, options)
    cleanups.push(async () => { await dataDir.removeNodeInfo() })

    let stopped = false
    return {
      peerId: self,
      libp2p,
      dataDir,
      addrs: () => addrsOf(libp2p),
      view: () => startedElection.view(),
      isCoordinator: () => startedElection.isCoordinator(),
      info: infoNow,
      electionStats: () => controlStats(startedElection),
      setRunning: (n) => { running = n; startedElection.setInfo(memberInfo()) },
      setTaskInfo: (fn) => { taskInfo = fn },
      async stop (opts = {}) {
        if (stopped) return
        stopped = true
        // An aborted stop skips the goodbye wait; every other step is bounded anyway.
        const forward = (): void => { stopSignal.abort() }
        if (opts.signal?.aborted === true) forward()
        opts.signal?.addEventListener('abort', forward, { once: true })
        try {
          await cleanup()
        } finally {
          opts.signal?.removeEventListener('abort', forward)
        }
      }
    }

  } catch (err) {
    await cleanup()
    throw err
  }
}

function addrsOf (libp2p: MeshLibp2p): string[] {
  return libp2p.getMultiaddrs().map(ma => ma.toString())
}

/** libp2p.stop() can take a second or more on open connections; never longer than this. */
async function stopLibp2p (libp2p: MeshLibp2p, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<void>(resolve => { timer = setTimeout(resolve, 1_200) })
  const stopping = (async () => { await libp2p.stop() })().catch((err: unknown) => { log.debug({ err: errorMessage(err) }, 'libp2p stop failed') })
  await Promise.race([stopping, limit])
  clearTimeout(timer)
}

function openStreams (libp2p: MeshLibp2p): Record<string, number> {
  const out: Record<string, number> = {}
  for (const conn of libp2p.getConnections()) {
    for (const s of conn.streams) out[s.protocol ?? 'unnegotiated'] = (out[s.protocol ?? 'unnegotiated'] ?? 0) + 1
  }
  return out
}
