import type { ConnectionGater, PeerId } from '@libp2p/interface'

/** The part of a BlockList the gater reads. */
export interface PeerDenyList {
  has: (peerId: string) => boolean
}

/**
 * Refuses every connection, in either direction, with a peer on the deny list.
 * Inbound connections are refused once the remote's identity is known (after
 * the noise handshake), since that is the earliest point a PeerId exists.
 */
export function createConnectionGater (deny: PeerDenyList): ConnectionGater {
  const denied = (peer: PeerId): boolean => deny.has(peer.toString())
  return {
    denyDialPeer: denied,
    denyInboundEncryptedConnection: denied,
    denyOutboundEncryptedConnection: denied,
    denyInboundUpgradedConnection: denied,
    denyOutboundUpgradedConnection: denied
  }
}
