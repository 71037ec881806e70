import type { CircuitRelayServerInit, CircuitRelayTransportInit } from '@libp2p/circuit-relay-v2'
import { multiaddr } from '@multiformats/multiaddr'
import { isLoopbackAddr } from '../util/loopback.js'

/**
 * What a relay (`join --relay`) serves, and how a node behind NAT reserves (docs/mesh.md, "Across NATs").
 *
 * The relay bounds how many nodes it serves and for how long a slot lasts, not how much one relayed connection
 * carries: libp2p's default (2 minutes and 128 KiB per connection) would cut a map-output pull in the middle, and
 * every cut pull is a fetch failure that can make the coordinator run the map again. A relayed connection with no
 * limit is also an ordinary connection to libp2p, so every protocol runs over it unchanged. The price is that a
 * relay carries whatever its members send through it: on a mesh with a public relay, use a swarm key, so that
 * only members can reserve.
 */
export const RELAY_LIMITS: { server: CircuitRelayServerInit, client: CircuitRelayTransportInit } = {
  server: {
    reservations: {
      // A relay serves up to 64 nodes behind NAT; a 65th reserves on another relay.
      maxReservations: 64,
      // A slot lasts an hour unless its holder renews it (the relay transport renews before it ends).
      reservationTtl: 60 * 60_000,
      applyDefaultLimit: false
    },
    // Relayed connections opened at once through this relay (each is one hop stream while it opens).
    maxInboundHopStreams: 64,
    maxOutboundStopStreams: 256
  },
  client: {
    // Reserve on two relays at once, so that losing one relay leaves the node reachable through the other.
    reservationConcurrency: 2,
    reservationCompletionTimeout: 10_000
  }
}

/** How many relay slots a node behind NAT holds: two, so that the loss of one relay is not the loss of the node. */
export const RELAY_SLOTS = 2

/**
 * A node that is no relay and can be reached only from its own network (it listens off loopback and announces
 * nothing) holds slots on relays, should the mesh have any: nodes behind other NATs then reach it through them. A
 * node on loopback is on one machine's mesh, where nothing needs a relay.
 */
export function relaySlotsFor (relay: boolean, listen: string[], announce: string[]): number {
  if (relay || announce.length > 0) return 0
  return listen.some((a) => !isLoopbackAddr(multiaddr(a))) ? RELAY_SLOTS : 0
}
