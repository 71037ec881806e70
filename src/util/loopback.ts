import type { Multiaddr } from '@multiformats/multiaddr'

/** A host name or address of this machine only: `localhost`, `::1` or 127.0.0.0/8. */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** A multiaddr whose host (its first part: an IP address or DNS name) is loopback. */
export function isLoopbackAddr (ma: Multiaddr): boolean {
  const host = ma.getComponents()[0]
  return ['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(host?.name ?? '') && host?.value !== undefined && isLoopback(host.value)
}
