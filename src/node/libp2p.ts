import { autoNAT } from '@libp2p/autonat'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { identify, type Identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping, type Ping } from '@libp2p/ping'
import { pubsubPeerDiscovery } from '@libp2p/pubsub-peer-discovery'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import type { ConnectionGater, PrivateKey } from '@libp2p/interface'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Registry } from 'prom-client'
import { CONTROL_TOPIC, DISCOVERY_TOPIC } from '../protocol/ids.js'
import { GOSSIP_SCORE_PARAMS, GOSSIP_SCORE_THRESHOLDS, graylistGuard, shortenScoreCache, type GraylistGuard } from './gossip-scoring.js'
import { circuitListen, dialSettings, YAMUX } from './client-libp2p.js'
import { lanDiscovery } from './lan-discovery.js'
import { privateNetwork } from './private-network.js'
import { reachabilityView, type ReachabilityView } from './reachability.js'
import { RELAY_LIMITS } from './relay-limits.js'

export interface MeshServices extends Record<string, unknown> {
  pubsub: GossipSub
  graylist: GraylistGuard
  identify: Identify
  ping: Ping
  reachability: ReachabilityView
}

export type MeshLibp2p = Libp2p<MeshServices>

export interface MeshLibp2pInit {
  privateKey: PrivateKey
  listen: string[]
  connectionGater: ConnectionGater
  /** How often pubsub-peer-discovery re-announces our addresses. */
  discoveryIntervalMs: number
  version: string
  /** Set: a private mesh; only peers with the same key can connect (src/node/private-network.ts). */
  swarmKey?: Uint8Array
  /** Set: libp2p's own connection and stream metrics go to this Prometheus registry (the dashboard's /metrics). */
  metrics?: Registry
  /** Find the mesh's nodes on the LAN by multicast DNS (`join --mdns`). */
  mdns?: boolean
  /** Set: the addresses others are told to dial, instead of the listen addresses (`join --announce`). */
  announce?: string[]
  /** Serve as a circuit relay for nodes behind NAT (`join --relay`); RELAY_LIMITS bound what it serves. */
  relay?: boolean
  /** Hold a slot on this many relays, so that nodes that cannot dial this one reach it through them. */
  relaySlots?: number
}

/**
 * The gossip parameters measured to work for meshes of 2–20 local nodes (see
 * /work/shared/libp2p-notes.md): a small D so a 3-node mesh is already "full",
 * flood publishing so a heartbeat reaches every subscriber in one hop rather
 * than waiting for the mesh to form, no peer exchange (we dial everyone
 * ourselves), and a half-second heartbeat so grafts happen quickly after a
 * connection opens.
 *
 * IP colocation scoring is off: gossipsub's default penalises more than 10
 * peers behind one IP address as a Sybil attack, graylisting them all, which
 * silently killed gossip on one machine at 11+ nodes (and would on any host
 * running many nodes, or behind one NAT). Membership here is a cluster of
 * cooperating nodes, not an open network.
 */
/**
 * Without this, gossipsub verifies the signature of every copy of a message
 * before noticing it is a duplicate, and with flood publishing each node gets
 * 1 + D copies: most of an idle node's CPU. Author + sequence number is what
 * the real message id is made of; a forged copy is still verified (and
 * rejected) before its id is cached, so it cannot shadow the real message.
 */
function fastMsgIdFn (msg: { from?: Uint8Array, seqno?: Uint8Array, data?: Uint8Array }): string {
  return `${Buffer.from(msg.from ?? new Uint8Array()).toString('base64')}/${Buffer.from(msg.seqno ?? new Uint8Array()).toString('hex')}`
}

const GOSSIP = {
  D: 3,
  Dlo: 2,
  Dhi: 5,
  Dout: 1,
  Dlazy: 3,
  heartbeatInterval: 1_000,
  floodPublish: true,
  doPX: false,
  allowPublishToZeroTopicPeers: true,
  emitSelf: false,
  scoreParams: GOSSIP_SCORE_PARAMS,
  scoreThresholds: GOSSIP_SCORE_THRESHOLDS,
  // A message on a topic nobody here uses would still be verified and cached, and, with no validator and no
  // score for its topic, never charged: a flood there would cost CPU and memory without graylisting anyone.
  allowedTopics: [CONTROL_TOPIC, DISCOVERY_TOPIC],
  fastMsgIdFn
}

export async function createMeshLibp2p (init: MeshLibp2pInit): Promise<MeshLibp2p> {
  const node = await createLibp2p<MeshServices>({
    start: false,
    privateKey: init.privateKey,
    nodeInfo: { name: 'mrp2p', version: init.version },
    addresses: { listen: [...init.listen, ...circuitListen(init.relaySlots)], announce: init.announce },
    transports: [tcp(), circuitRelayTransport(RELAY_LIMITS.client)],
    connectionProtector: init.swarmKey === undefined ? undefined : privateNetwork(init.swarmKey),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux(YAMUX)],
    connectionGater: init.connectionGater,
    metrics: init.metrics === undefined ? undefined : prometheusMetrics({ registry: init.metrics }),
    connectionManager: {
      // The default (5 per second per host) refuses the 6th local node for good.
      inboundConnectionThreshold: 1_000,
      maxIncomingPendingConnections: 100,
      maxConnections: 500,
      ...dialSettings()
    },
    peerDiscovery: [
      pubsubPeerDiscovery({ interval: init.discoveryIntervalMs, topics: [DISCOVERY_TOPIC] }),
      ...(init.mdns === true ? [lanDiscovery(init.swarmKey)] : [])
    ],
    services: {
      // pubsub-peer-discovery finds gossipsub under this exact component name.
      pubsub: gossipsub(GOSSIP),
      graylist: graylistGuard(),
      identify: identify(),
      ping: ping(),
      reachability: reachabilityView(),
      autoNAT: autoNAT(),
      dcutr: dcutr(),
      ...(init.relay === true ? { relay: circuitRelayServer(RELAY_LIMITS.server) } : {})
    }
  })
  shortenScoreCache(node.services.pubsub)
  return node
}
