import { networkInterfaces } from 'node:os'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { isPrivate } from '@libp2p/utils'
import type { Connection } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'

/**
 * How a node is reached from outside (docs/mesh.md, "Across NATs"): AutoNAT's verdict on its public addresses,
 * and the relays it holds a slot on. Read from libp2p's address manager, which AutoNAT and the relay transport
 * keep up to date; nothing here dials or decides.
 */
export interface Reachability {
  /**
   * `public`: AutoNAT confirmed one of this node's public addresses (peers on other networks dialled it back).
   * `private`: it has no public address at all (only loopback or private ranges, as behind NAT or on a LAN).
   * `unknown`: it has a public address that AutoNAT has not confirmed (yet, or peers could not dial it).
   */
  nat: 'public' | 'private' | 'unknown'
  /** Relays this node holds a reservation on: others reach it through them. */
  relays: string[]
}

export interface ReachabilityComponents {
  addressManager: AddressManager
}

/** A libp2p service (`services.reachability`) that answers {@link Reachability} from the address manager. */
export interface ReachabilityView {
  now: () => Reachability
}

export function reachabilityView (): (components: ReachabilityComponents) => ReachabilityView {
  return (components) => ({ now: () => reachabilityOf(components.addressManager.getAddressesWithMetadata()) })
}

const CIRCUIT = '/p2p-circuit'

/** The verdict from the address manager's list (pure: tested on its own). */
export function reachabilityOf (addrs: ReadonlyArray<{ multiaddr: Multiaddr, verified: boolean }>): Reachability {
  const relays = new Set<string>()
  let publicAddr = false
  let confirmed = false
  for (const { multiaddr: ma, verified } of addrs) {
    const text = ma.toString()
    const at = text.indexOf(CIRCUIT)
    if (at >= 0) {
      const relay = /\/p2p\/([^/]+)$/.exec(text.slice(0, at))?.[1]
      if (relay !== undefined) relays.add(relay)
      continue
    }
    if (isPrivate(ma)) continue
    publicAddr = true
    if (verified) confirmed = true
  }
  return { nat: confirmed ? 'public' : publicAddr ? 'unknown' : 'private', relays: [...relays].sort() }
}

/** An address through a relay (`…/p2p/<relay>/p2p-circuit…`) rather than straight to the peer. */
export function isCircuit (ma: Multiaddr): boolean {
  return ma.toString().includes(CIRCUIT)
}

/** A connection that goes through a relay rather than straight to the peer. */
export function isRelayed (conn: Pick<Connection, 'remoteAddr'>): boolean {
  return isCircuit(conn.remoteAddr)
}

/**
 * `join --relay`'s default: serve as a relay when the node has a public address, listened on or announced, since
 * only then can nodes behind NAT reach it. A wildcard listen address counts the machine's interfaces. AutoNAT
 * could say more, but only once the node runs, and a libp2p service cannot be added to a running node.
 */
export function hasPublicAddress (listen: string[], announce: string[] = [], interfaces = localAddresses()): boolean {
  const hosts: string[] = []
  for (const text of [...listen, ...announce]) {
    const host = multiaddr(text).getComponents()[0]
    if (host === undefined || host.value === undefined) continue
    if (host.name === 'dns' || host.name === 'dns4' || host.name === 'dns6') return true
    // 0.0.0.0 listens on every IPv4 address; `::` on every address of both families (Node's default dual stack).
    if (host.value === '0.0.0.0') hosts.push(...interfaces.filter((a) => !a.includes(':')))
    else if (host.value === '::') hosts.push(...interfaces)
    else hosts.push(host.value)
  }
  return hosts.some((h) => !isPrivate(multiaddr(h.includes(':') ? `/ip6/${h}` : `/ip4/${h}`)))
}

function localAddresses (): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address))
}
