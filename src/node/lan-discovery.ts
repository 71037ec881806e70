import { createHash } from 'node:crypto'
import { mdns } from '@libp2p/mdns'

/** How often a node asks the LAN for its mesh's nodes; each answers at once, so a new node is found within this. */
export const LAN_QUERY_MS = 5_000

/**
 * The mDNS service a mesh's nodes announce and ask for: `_mrp2p._udp.local` for an open mesh, and one per key for a
 * private mesh (a digest of the key, which tells nothing of it), so that only nodes of the same mesh, and no other
 * libp2p program on the LAN (`_p2p._udp.local`), are taken as members.
 */
export function mdnsServiceTag (swarmKey?: Uint8Array): string {
  if (swarmKey === undefined) return '_mrp2p._udp.local'
  const digest = createHash('sha256').update('mrp2p mdns service\n').update(swarmKey).digest('hex').slice(0, 16)
  return `_mrp2p-${digest}._udp.local`
}

/** How often `submit`/`status --mdns` ask while they wait for a first answer. */
export const LAN_CLIENT_QUERY_MS = 500

/**
 * libp2p's own mDNS discovery, set for this mesh: what it finds goes to the mesh maintainer as `peer:discovery`.
 * A client (`answer: false`) only asks: it answers no query, so no node takes it for a member.
 */
export function lanDiscovery (swarmKey?: Uint8Array, options: { answer?: boolean, intervalMs?: number } = {}): ReturnType<typeof mdns> {
  return mdns({ serviceTag: mdnsServiceTag(swarmKey), interval: options.intervalMs ?? LAN_QUERY_MS, broadcast: options.answer ?? true })
}
