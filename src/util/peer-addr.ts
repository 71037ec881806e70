import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

/** `addr` ending in /p2p/<peer>, as libp2p dials it: added where the address does not already name its peer. */
export function withPeerId (addr: string | Multiaddr, peer: string): Multiaddr {
  const ma = typeof addr === 'string' ? multiaddr(addr) : addr
  return ma.getComponents().some((c) => c.name === 'p2p') ? ma : ma.encapsulate(`/p2p/${peer}`)
}
