import type { AbortOptions, PrivateKey, Startable } from '@libp2p/interface'
import type { SubscriptionChangeData } from '@libp2p/gossipsub'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Registry } from 'prom-client'
import { Lifecycle, listening } from '../util/lifecycle.js'
import { processLogger, type ComponentLogger, type Logger } from '../util/logger.js'
import { sleep } from '../util/sleep.js'
import { errorMessage } from '../util/errors.js'
import { ElectionNode, resolveElectionConfig, type ElectionConfig, type ElectionView, type MemberInfo } from '../election/index.js'
import { controlPubSub } from '../election/control-pubsub.js'
import { createGossipElection, type GossipElection } from '../election/gossip-adapter.js'
import { senderRateFor } from '../election/sender-rate.js'
import { CONTROL_TOPIC, INFO_PROTOCOL } from '../protocol/ids.js'
import { serveInfo, type InfoResponse, type InfoTasks } from '../protocol/info.js'
import { servedWhileStarted } from '../protocol/reqresp.js'
import { createBlockList } from './block-list.js'
import { BLOCKED_PEERS_FILE, createDataDir, type DataDir } from './data-dir.js'
import { NodeNotStartedError } from './errors.js'
import { createDiscoveryValidator } from './discovery-validator.js'
import { createConnectionGater } from './gater.js'
import { toInfoResponse } from './info-view.js'
import { graylistedPeers } from './gossip-scoring.js'
import { createMeshLibp2p, type MeshLibp2p } from './libp2p.js'
import { swarmKeyMismatch } from '../protocol/errors.js'
import { explainListenFailure } from './listen-errors.js'
import { createMeshMaintainer, type MeshMaintainer } from './mesh-maintainer.js'
import { isRelayed } from './reachability.js'

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
  /** Find the mesh's other nodes on the LAN by multicast DNS (src/node/lan-discovery.ts). */
  mdns?: boolean
  /** Set: the addresses other nodes dial instead of the listen addresses (behind port forwarding). */
  announce?: string[]
  /** Serve as a circuit relay for nodes behind NAT (`join --relay`, src/node/relay-limits.ts). */
  relay?: boolean
  /** Relay slots to hold (a node that others may not be able to dial); 0 or unset: none. */
  relaySlots?: number
  /** Called when the node cannot ever join (its bootstrap refused the handshake: wrong or missing swarm key). */
  onFatal?: (err: Error) => void
  /** Where every part of the node logs, by component; default the process's logger. */
  logger?: ComponentLogger
  /** Set: the node's metrics (libp2p's, the process's, mrp2p's) are kept in this registry, for `/metrics`. */
  metrics?: Registry
  /** Set: only these submitter identities (PeerIds) may submit or cancel jobs here (`join --submitters`). */
  submitters?: ReadonlySet<string>
}

export interface MeshNode {
  readonly peerId: string
  /** The node's logger, for the roles started on it. */
  readonly logger: ComponentLogger
  readonly libp2p: MeshLibp2p
  readonly dataDir: DataDir
  /** The registry of the node's metrics, when it keeps them (the dashboard is on). */
  readonly metrics: Registry | undefined
  /** The submitter identities this node allows (`--submitters`); undefined: any member. */
  readonly submitters: ReadonlySet<string> | undefined
  /** The node's own key (its PeerId's): what it signs with when it asks as a client would (the dashboard's cancel). */
  readonly privateKey: PrivateKey
  /** Dialable addresses ending in /p2p/<PeerId>. */
  addrs: () => string[]
  view: () => ElectionView
  isCoordinator: () => boolean
  info: () => InfoResponse
  electionStats: () => ControlStats
  /** Gossip peers this node graylists now (their score is below the threshold): it drops what they send. */
  graylisted: () => string[]
  setRunning: (running: number) => void
  /** Lets the worker role add what it holds to this node's info answers. */
  setTaskInfo: (tasks: () => InfoTasks) => void
  stop: (options?: AbortOptions) => Promise<void>
}

/** The control topic's counters, with the discovery topic's refusals beside them: InfoResponse's `control`, all there. */
export type ControlStats = Required<NonNullable<InfoResponse['control']>>

const DEFAULT_DISCOVERY_INTERVAL_MS = 5_000

/**
 * Builds and starts a node: one {@link Lifecycle} in the order the parts depend on each other (data dir, block
 * list, info protocol, libp2p, discovery check, election, heal nudge, address updates, mesh maintainer,
 * node.json), stopped in reverse by
 * `stop()`. On failure everything already started is stopped again.
 */
export async function startNode (config: NodeConfig, options: AbortOptions = {}): Promise<MeshNode> {
  const logger = config.logger ?? processLogger()
  const log = logger.forComponent('node')
  const lifecycle = new Lifecycle(log)
  const dataDir = await lifecycle.start('data dir', dataDirService(createDataDir(config.dataDir), options)).then((s) => s.dataDir)

  try {
    const privateKey = await dataDir.loadOrCreateKey(options)
    const initialEpoch = await dataDir.readEpoch(options)

    const blockList = await lifecycle.start('block list', createBlockList({ file: dataDir.file(BLOCKED_PEERS_FILE), pollMs: config.blockListPollMs, log: logger.forComponent('block-list') }))

    const libp2p = await createMeshLibp2p({
      privateKey,
      listen: config.listen,
      connectionGater: createConnectionGater(blockList),
      discoveryIntervalMs: config.discoveryIntervalMs ?? DEFAULT_DISCOVERY_INTERVAL_MS,
      version: config.version,
      swarmKey: config.swarmKey,
      metrics: config.metrics,
      mdns: config.mdns,
      announce: config.announce,
      relay: config.relay,
      relaySlots: config.relaySlots
    })
    const self = libp2p.peerId.toString()
    const electionConfig = resolveElectionConfig(config.election)
    const startedAt = performance.now()

    let election: GossipElection | undefined
    const pubsub = controlPubSub(libp2p.services.pubsub)
    const electionLog = logger.forComponent('election')
    // Its refusals have always been logged as the election's: the log lines stay as they were.
    const discoveryValidator = createDiscoveryValidator({ pubsub, log: electionLog })
    const controlStats = (started: GossipElection): ControlStats => {
      const { received, dropped, rateDropped, published, publishedBytes } = started.stats()
      return { received, dropped, rateDropped, discoveryDropped: discoveryValidator.dropped(), published, publishedBytes }
    }
    /** Aborted by an aborted `stop()`: the election skips its goodbye wait. */
    const stopSignal = new AbortController()
    let running = 0
    let taskInfo: (() => InfoTasks) | undefined
    const memberInfo = (): MemberInfo => ({ addrs: addrsOf(libp2p), slots: config.slots, running, worker: config.worker, version: config.version })

    const cpu = resourceSampler()
    const infoNow = (): InfoResponse => {
      if (election === undefined) throw new NodeNotStartedError('election not started yet')
      return toInfoResponse({
        self,
        addrs: addrsOf(libp2p),
        version: config.version,
        worker: config.worker,
        slots: config.slots,
        ...connectionKinds(libp2p),
        reachability: { ...libp2p.services.reachability.now(), relay: config.relay === true },
        blocked: blockList.list(),
        view: election.view(),
        isCoordinator: election.isCoordinator(),
        leaseMs: electionConfig.leaseMs,
        uptimeMs: performance.now() - startedAt,
        tasks: taskInfo?.(),
        streams: openStreams(libp2p),
        resources: cpu.sample(),
        submitters: config.submitters?.size,
        graylisted: graylistedPeers(libp2p.services.pubsub),
        control: controlStats(election)
      })
    }

    // Registered before libp2p starts so identify's first answer already lists it:
    // that is how peers tell mrp2p nodes from other libp2p peers.
    await lifecycle.start('info protocol', servedWhileStarted(async () => await serveInfo({ registrar: libp2p, log: logger.forComponent('info'), info: infoNow })))
    await lifecycle.start('libp2p', libp2pService(libp2p, config.listen, log))

    const maintainer: MeshMaintainer = createMeshMaintainer({
      host: libp2p,
      bootstrap: config.bootstrap,
      memberProtocol: INFO_PROTOCOL,
      isBlocked: (peer) => blockList.has(peer),
      log: logger.forComponent('mesh'),
      onHandshakeRefused: config.onFatal === undefined ? undefined : (target) => { config.onFatal?.(swarmKeyMismatch(target, config.swarmKey !== undefined)) }
    })

    const electionNode = new ElectionNode({
      self,
      config: config.election,
      random: Math.random,
      info: memberInfo(),
      initialEpoch
    })
    const startedElection = election = createGossipElection({
      pubsub,
      election: electionNode,
      log: electionLog,
      tickMs: config.tickMs,
      // Heartbeats shorter than the default send more: each author's allowance grows with them.
      senderRate: senderRateFor(electionConfig),
      onEffect: (effect) => {
        if (effect.type === 'epoch-observed') {
          dataDir.writeEpoch(effect.epoch).catch((err: unknown) => {
            log.error({ err: errorMessage(err), epoch: effect.epoch }, 'cannot persist election epoch')
          })
        } else if (effect.type === 'member-changed' && effect.liveness === 'alive') {
          // Heartbeats carry each member's addresses: the fastest way to a full mesh.
          const member = election?.view().members.find(m => m.peer === effect.peer)
          if (member !== undefined) maintainer.addMember(member.peer, member.info.addrs)
        } else if (effect.type === 'peer-quarantined') {
          electionLog.warn({ peer: effect.peer, forMs: effect.forMs, repeat: effect.repeat }, 'member quarantined: it kept contradicting the lease a majority renews; its election messages are ignored meanwhile')
        }
      }
    })
    await lifecycle.start('discovery check', discoveryValidator)
    await lifecycle.start('election', { start: () => { startedElection.start() }, stop: async () => { await startedElection.stop({ signal: stopSignal.signal }) } })
    // A peer that just subscribed to the control topic has not heard our last
    // heartbeat: after a heal, this is what makes both sides learn of each
    // other's leases within one message delay.
    await lifecycle.start('heal nudge', listening(libp2p.services.pubsub, 'subscription-change', (evt: CustomEvent<SubscriptionChangeData>) => {
      if (evt.detail.subscriptions.some(s => s.topic === CONTROL_TOPIC && s.subscribe)) startedElection.nudge()
    }))
    // Our own addresses may change (identify learns more): keep the heartbeat's copy fresh.
    await lifecycle.start('address updates', listening(libp2p, 'self:peer:update', () => { startedElection.setInfo(memberInfo()) }))
    await lifecycle.start('mesh maintainer', maintainer)

    // A peer that becomes blocked loses its open connections too: the gater
    // only guards new ones.
    blockList.onChange((blocked) => {
      for (const conn of libp2p.getConnections()) {
        if (blocked.has(conn.remotePeer.toString())) {
          conn.close().catch(() => { conn.abort(new Error('peer blocked')) })
        }
      }
    })

    await lifecycle.start('node.json', {
      start: async () => { await dataDir.writeNodeInfo({ peerId: self, addrs: addrsOf(libp2p), pid: process.pid, startedAt: new Date().toISOString(), ready: true }, options) },
      stop: async () => { await dataDir.removeNodeInfo() }
    })

    let stopped = false
    return {
      peerId: self,
      logger,
      libp2p,
      dataDir,
      metrics: config.metrics,
      submitters: config.submitters,
      privateKey,
      addrs: () => addrsOf(libp2p),
      view: () => startedElection.view(),
      isCoordinator: () => startedElection.isCoordinator(),
      info: infoNow,
      electionStats: () => controlStats(startedElection),
      graylisted: () => graylistedPeers(libp2p.services.pubsub),
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
          await lifecycle.stop()
        } finally {
          opts.signal?.removeEventListener('abort', forward)
        }
      }
    }
  } catch (err) {
    await lifecycle.stop()
    throw err
  }
}

/** The data dir as a service: opened (and locked) on start, closed on stop. */
function dataDirService (dataDir: DataDir, options: AbortOptions): Startable & { dataDir: DataDir } {
  return {
    dataDir,
    start: async () => { await dataDir.open(options) },
    stop: async () => { await dataDir.close() }
  }
}

/** libp2p, with a listen failure explained in one line and a stop that never takes longer than {@link stopLibp2p}. */
function libp2pService (libp2p: MeshLibp2p, listen: string[], log: Logger): Startable {
  return {
    start: async () => {
      try {
        await libp2p.start()
      } catch (err) {
        throw await explainListenFailure(listen, err)
      }
    },
    stop: async () => { await stopLibp2p(libp2p, log) }
  }
}

/** The process's memory now, and its CPU use since the previous sample. */
function resourceSampler (): { sample: () => NonNullable<InfoResponse['resources']> } {
  let last = { at: performance.now(), cpu: process.cpuUsage() }
  return {
    sample: () => {
      const now = { at: performance.now(), cpu: process.cpuUsage() }
      const usedUs = now.cpu.user + now.cpu.system - last.cpu.user - last.cpu.system
      const wallMs = Math.max(1, now.at - last.at)
      last = now
      const mem = process.memoryUsage()
      return { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, cpuPercent: Math.round(usedUs / 10 / wallMs) }
    }
  }
}

/** Every peer with an open connection, and those of them reached only through a relay. */
function connectionKinds (libp2p: MeshLibp2p): { connections: string[], relayed: string[] } {
  const direct = new Set<string>()
  const viaRelay = new Set<string>()
  for (const c of libp2p.getConnections()) (isRelayed(c) ? viaRelay : direct).add(c.remotePeer.toString())
  return { connections: [...new Set([...direct, ...viaRelay])], relayed: [...viaRelay].filter(p => !direct.has(p)) }
}

function addrsOf (libp2p: MeshLibp2p): string[] {
  return libp2p.getMultiaddrs().map(ma => ma.toString())
}

/** libp2p.stop() can take a second or more on open connections; never longer than this. */
async function stopLibp2p (libp2p: MeshLibp2p, log: Logger): Promise<void> {
  const limit = new AbortController()
  const stopping = (async () => { await libp2p.stop() })().catch((err: unknown) => { log.debug({ err: errorMessage(err) }, 'libp2p stop failed') })
  await Promise.race([stopping, sleep(1_200, { signal: limit.signal }).catch(() => {})])
  limit.abort()
}

function openStreams (libp2p: MeshLibp2p): Record<string, number> {
  const out: Record<string, number> = {}
  for (const conn of libp2p.getConnections()) {
    for (const s of conn.streams) out[s.protocol ?? 'unnegotiated'] = (out[s.protocol ?? 'unnegotiated'] ?? 0) + 1
  }
  return out
}
