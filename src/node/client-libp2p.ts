import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify, type Identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2p } from 'libp2p'
import { dialOrder } from './dial-order.js'
import type { lanDiscovery } from './lan-discovery.js'
import { privateNetwork } from './private-network.js'
import { RELAY_LIMITS } from './relay-limits.js'

// The libp2p of `submit`, `status` and the other commands that ask the mesh: apart from the mesh node's
// (libp2p.ts), so that a command loads no gossip, discovery or metrics it never runs.

/**
 * A bulk reader that falls behind pauses its stream (src/protocol/bulk.ts). Paused, yamux grants no more
 * window, but what the window already allowed still arrives into the stream's read buffer, which resets the
 * stream when it overflows: yamux's window grows to 16 MiB by default, its read buffer holds 4 MiB. So the
 * window stops at 4 MiB and the read buffer holds twice that.
 */
export const YAMUX = { streamOptions: { maxStreamWindowSize: 4 * 1024 * 1024, maxReadBufferLength: 8 * 1024 * 1024 } }

/** How libp2p dials, for the node and the client alike: a whole dial within 5 s, addresses in `dialOrder`. */
export function dialSettings (): { dialTimeout: number, addressSorter: ReturnType<typeof dialOrder> } {
  return { dialTimeout: 5_000, addressSorter: dialOrder() }
}

/** `/p2p-circuit` once per relay slot wanted: libp2p's relay transport then reserves that many slots. */
export function circuitListen (slots = 0): string[] {
  return Array.from({ length: slots }, () => '/p2p-circuit')
}

/**
 * A libp2p with no gossip and no discovery: used by `status` and the test
 * harness to ask nodes questions without becoming a member of the mesh or a
 * bridge between partitioned halves. By default it listens nowhere; a
 * submitter that peers must reach passes `listen`.
 */
export async function createClientLibp2p (init: { privateKey?: PrivateKey, version: string, listen?: string[], swarmKey?: Uint8Array, relaySlots?: number, lan?: boolean }): Promise<Libp2p<{ identify: Identify }>> {
  return await createLibp2p({
    privateKey: init.privateKey,
    nodeInfo: { name: 'mrp2p-client', version: init.version },
    addresses: { listen: [...(init.listen ?? []), ...circuitListen(init.relaySlots)] },
    // Nodes behind NAT are reached through relays: the relay transport dials their /p2p-circuit addresses.
    transports: [tcp(), circuitRelayTransport(RELAY_LIMITS.client)],
    connectionProtector: init.swarmKey === undefined ? undefined : privateNetwork(init.swarmKey),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux(YAMUX)],
    connectionManager: { ...dialSettings(), inboundConnectionThreshold: 1_000 },
    // Asks the LAN for the mesh's nodes and answers nobody: a client is never taken for a member.
    peerDiscovery: init.lan === true ? [await lanClientDiscovery(init.swarmKey)] : [],
    services: { identify: identify() }
  })
}

/** mDNS for a client, loaded only when asked for (`--mdns`). */
async function lanClientDiscovery (swarmKey?: Uint8Array): Promise<ReturnType<typeof lanDiscovery>> {
  const { LAN_CLIENT_QUERY_MS, lanDiscovery } = await import('./lan-discovery.js')
  return lanDiscovery(swarmKey, { answer: false, intervalMs: LAN_CLIENT_QUERY_MS })
}
