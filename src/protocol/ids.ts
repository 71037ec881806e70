/**
 * Every wire name of mrp2p in one place. Protocol ids carry a version so that
 * a later incompatible change gets a new id and old and new nodes refuse each
 * other at multistream-select instead of misreading bytes.
 */
export const PROTOCOL_PREFIX = '/mrp2p'

export function protocolId (name: string, version = '1.0.0'): string {
  return `${PROTOCOL_PREFIX}/${name}/${version}`
}

/** Request/response: a node's membership and election view (used by `status`). */
export const INFO_PROTOCOL = protocolId('info')

/** Gossipsub topic of the election: heartbeats and lease announcements. */
export const CONTROL_TOPIC = protocolId('control')

/**
 * Gossipsub topic of pubsub-peer-discovery. Our own name, not the libp2p-wide
 * default, so that mrp2p meshes do not advertise themselves to unrelated apps.
 */
export const DISCOVERY_TOPIC = 'mrp2p._peer-discovery._p2p._pubsub'
