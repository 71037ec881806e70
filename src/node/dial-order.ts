import { networkInterfaces } from 'node:os'
import type { Address, AddressSorter } from '@libp2p/interface'
import { circuitRelayAddressesLast, isPrivate, loopbackAddressLast, publicAddressesFirst, reliableTransportsFirst } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isLoopbackAddr } from '../util/loopback.js'
import { isCircuit } from './reachability.js'

/**
 * The order libp2p dials a peer's addresses in (docs/mesh.md, "Silent addresses"). libp2p dials them one at a
 * time, each for up to 6 s within a 5 s dial, and its own order puts private addresses before relayed ones. A node
 * behind another NAT announces its private address first, and from here that address is silent (the SYN is
 * dropped or answered with an ICMP error that TCP only retries on), so the relayed address was never tried: a
 * submitter behind one NAT never reached a coordinator behind another after a failover. Here a private address
 * on none of this machine's networks goes last, after the relayed ones; every other order is libp2p's.
 */
export function dialOrder (localNetworks: Network[] = ownNetworks()): AddressSorter {
  const elsewhere = (ma: Multiaddr): boolean => isPrivate(ma) && !isLoopbackOrCircuit(ma) && !onNetworks(ma, localNetworks)
  return (a: Address, b: Address) => {
    const x = elsewhere(a.multiaddr)
    const y = elsewhere(b.multiaddr)
    if (x !== y) return x ? 1 : -1
    return loopbackAddressLast(a.multiaddr, b.multiaddr) ||
      publicAddressesFirst(a.multiaddr, b.multiaddr) ||
      circuitRelayAddressesLast(a.multiaddr, b.multiaddr) ||
      certifiedFirst(a, b) ||
      reliableTransportsFirst(a.multiaddr, b.multiaddr)
  }
}

/** An IPv4 network this machine is on. */
export interface Network { address: number, mask: number }

function certifiedFirst (a: Address, b: Address): -1 | 0 | 1 {
  if (a.isCertified === b.isCertified) return 0
  return a.isCertified ? -1 : 1
}

function isLoopbackOrCircuit (ma: Multiaddr): boolean {
  return isCircuit(ma) || isLoopbackAddr(ma)
}

function ipv4 (text: string): number | undefined {
  const parts = text.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0
}

/** Whether the address's host is on one of `networks` (IPv4; any other kind counts as on them: left where it was). */
function onNetworks (ma: Multiaddr, networks: Network[]): boolean {
  const host = ma.getComponents()[0]
  if (host?.name !== 'ip4' || host.value === undefined) return true
  const ip = ipv4(host.value)
  if (ip === undefined) return true
  return networks.some((n) => ((ip & n.mask) >>> 0) === ((n.address & n.mask) >>> 0))
}

/** This machine's IPv4 networks, read when the node starts (a network joined later counts as elsewhere). */
export function ownNetworks (): Network[] {
  const out: Network[] = []
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) {
      if (i.family !== 'IPv4') continue
      const address = ipv4(i.address)
      const mask = ipv4(i.netmask)
      if (address !== undefined && mask !== undefined) out.push({ address, mask })
    }
  }
  return out
}
