import { availableParallelism } from 'node:os'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidArgumentError, errorMessage } from '../util/errors.js'
import { defaultDataDir } from '../node/data-dir.js'
import { readSwarmKey } from '../node/private-network.js'
import { hasPublicAddress } from '../node/reachability.js'
import { relaySlotsFor } from '../node/relay-limits.js'
import { envList, envValue, flagOrEnv, nonBlank, type Env } from '../util/env.js'
import { isLoopbackAddr } from '../util/loopback.js'
import { parseIntArg } from './arg-parsers.js'

// A node's settings from flags and environment: where it is on the network (bootstrap, listen, private-mesh key)
// and the rest of `join`'s (data dir, slots, worker). A flag given on the command line wins over its environment
// variable; every error names the flag (or variable) it came from, so `mrp2p: invalid --bootstrap "x": …` tells a
// person exactly what to fix.

/** Loopback on a port the system picks: safe for a node or submitter that nobody configured. */
export const DEFAULT_LISTEN = '/ip4/127.0.0.1/tcp/0'

export interface JoinFlags {
  bootstrap?: string[]
  listen?: string[]
  dataDir?: string
  slots?: string
  worker?: boolean
  swarmKey?: string
  /** `--mdns` true, `--no-mdns` false, neither undefined (then MRP2P_MDNS, then the rule in resolveMdns). */
  mdns?: boolean
  announce?: string[]
  /** `--relay` true, `--no-relay` false, neither undefined (then MRP2P_RELAY, then the rule in resolveRelay). */
  relay?: boolean
}

export interface NetworkOptions {
  bootstrap: Multiaddr[]
  listen: string[]
  dataDir: string
  slots: number
  worker: boolean
  /** Set: the mesh is private (src/node/private-network.ts). */
  swarmKey?: Uint8Array
  /** Find the mesh's other nodes on the LAN by multicast DNS (src/node/lan-discovery.ts). */
  mdns: boolean
  relay: boolean
  relaySlots: number
  /** Set: the addresses other nodes dial instead of the listen addresses (port forwarding). */
  announce?: string[]
}

/** `--bootstrap` if given, else MRP2P_BOOTSTRAP (a list); each address checked, errors naming where it came from. May be empty. */
export function resolveBootstrap (flag: string[] | undefined, env: Env = process.env): Multiaddr[] {
  const { values, source } = listFromFlagOrEnv(flag, '--bootstrap', env, 'MRP2P_BOOTSTRAP')
  return values.map(s => parseBootstrapAddr(s, source))
}

/** `--listen` if given, else MRP2P_LISTEN (a list), else DEFAULT_LISTEN; each address checked. */
export function resolveListen (flag: string[] | undefined, env: Env = process.env): string[] {
  const { values, source } = listFromFlagOrEnv(flag, '--listen', env, 'MRP2P_LISTEN')
  return (values.length > 0 ? values : [DEFAULT_LISTEN]).map(s => parseListenAddr(s, source))
}

function listFromFlagOrEnv (flag: string[] | undefined, flagName: string, env: Env, envName: string): { values: string[], source: string } {
  return flag !== undefined && flag.length > 0 ? { values: flag, source: flagName } : { values: envList(env, envName), source: envName }
}

/** `join`'s node settings, checked; empty variables count as unset (src/util/env.ts). */
export function resolveNetworkOptions (flags: JoinFlags, env: Env = process.env): NetworkOptions {
  const bootstrap = resolveBootstrap(flags.bootstrap, env)
  const listen = resolveListen(flags.listen, env)
  const dataDir = nonBlank(flags.dataDir) ?? envValue(env, 'MRP2P_DATA_DIR') ?? defaultDataDir()
  const slotsRaw = flagOrEnv(flags.slots, '--slots', env, 'MRP2P_SLOTS')
  const slots = slotsRaw === undefined ? availableParallelism() : parseIntArg(slotsRaw.raw, slotsRaw.source, 1, 1024)
  const { values: announced, source: announceSource } = listFromFlagOrEnv(flags.announce, '--announce', env, 'MRP2P_ANNOUNCE')
  const announce = announced.map(s => parseAnnounceAddr(s, announceSource))
  const mdns = resolveMdns(flags.mdns, env, bootstrap, listen)
  const relay = resolveRelay(flags.relay, env, listen, announced)
  return {
    bootstrap,
    listen,
    dataDir,
    slots,
    worker: flags.worker ?? true,
    swarmKey: resolveSwarmKey(flags.swarmKey, env),
    mdns,
    announce: announce.length > 0 ? announce : undefined,
    relay,
    relaySlots: relaySlotsFor(relay, listen, announced)
  }
}

/**
 * `--relay`/`--no-relay`, else MRP2P_RELAY (1 or 0), else on exactly when the node has a public address (listened
 * on, on an interface under a wildcard, or announced): only such a node can be reached by nodes behind NAT.
 */
export function resolveRelay (flag: boolean | undefined, env: Env, listen: string[], announce: string[], publicAddress = hasPublicAddress): boolean {
  if (flag !== undefined) return flag
  const raw = envValue(env, 'MRP2P_RELAY')
  if (raw === '1') return true
  if (raw === '0') return false
  if (raw !== undefined) throw new InvalidArgumentError(`invalid MRP2P_RELAY "${raw}": expected 1 or 0`)
  return publicAddress(listen, announce)
}


/**
 * `--mdns`/`--no-mdns`, else MRP2P_MDNS (1 or 0), else on exactly when nothing says where the mesh is (no
 * bootstrap) and the node can be reached from the LAN (a listen address that is not loopback): the case where a
 * user started nodes on a few machines and expects them to find each other.
 */
export function resolveMdns (flag: boolean | undefined, env: Env, bootstrap: Multiaddr[], listen: string[]): boolean {
  if (flag !== undefined) return flag
  const raw = envValue(env, 'MRP2P_MDNS')
  if (raw === '1') return true
  if (raw === '0') return false
  if (raw !== undefined) throw new InvalidArgumentError(`invalid MRP2P_MDNS "${raw}": expected 1 or 0`)
  return bootstrap.length === 0 && listen.some(a => !isLoopbackAddr(multiaddr(a)))
}

/**
 * The one-line warning for a node that listens only on loopback but bootstraps to another host: that host can
 * never dial it back (it cannot serve map output), and the user almost certainly meant to listen on the LAN.
 */
export function loopbackWarning (listen: string[], bootstrap: Multiaddr[], announce: string[] | undefined): string | undefined {
  if (announce !== undefined || listen.some(a => !isLoopbackAddr(multiaddr(a)))) return undefined
  const remote = bootstrap.find(b => !isLoopbackAddr(b))
  if (remote === undefined) return undefined
  const port = tcpPort(multiaddr(listen[0])) ?? '0'
  return `mrp2p: warning: this node listens only on loopback (${listen.join(', ')}) but bootstraps to ${remote.toString()}: nodes on other hosts cannot reach it; did you mean --listen /ip4/0.0.0.0/tcp/${port}?`
}


/** The TCP port of a multiaddr, as written. */
function tcpPort (ma: Multiaddr): string | undefined {
  return ma.getComponents().find(c => c.name === 'tcp')?.value
}

/** An announced address is one others can dial: TCP, a definite host (not 0.0.0.0 or ::), no /p2p (it is ours). */
export function parseAnnounceAddr (value: string, source: string): string {
  const addr = parseListenAddr(value, source)
  const ma = multiaddr(addr)
  const host = ma.getComponents()[0]
  if (host?.value === '0.0.0.0' || host?.value === '::') {
    throw new InvalidArgumentError(`invalid ${source} "${value}": announce the address others dial (e.g. /ip4/203.0.113.7/tcp/4001), not ${host.value}`)
  }
  if (tcpPort(ma) === '0') {
    throw new InvalidArgumentError(`invalid ${source} "${value}": announce the port others dial, not 0`)
  }
  return addr
}

/** Where the key of a private mesh is: `--swarm-key FILE`, else the file named by MRP2P_SWARM_KEY, else none. */
export function swarmKeyPath (flag: string | undefined, env: Env = process.env): string | undefined {
  return nonBlank(flag) ?? envValue(env, 'MRP2P_SWARM_KEY')
}

/** The key of a private mesh, read and checked (see swarmKeyPath). */
export function resolveSwarmKey (flag: string | undefined, env: Env = process.env): Uint8Array | undefined {
  const path = swarmKeyPath(flag, env)
  return path === undefined ? undefined : readSwarmKey(path)
}

/** A bootstrap address must say whom we dial: transport plus /p2p/<PeerId>. */
export function parseBootstrapAddr (value: string, source: string): Multiaddr {
  const ma = parseMultiaddr(value, source)
  const components = ma.getComponents()
  const p2p = components.findLast(c => c.name === 'p2p')
  if (p2p?.value === undefined) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": it must end with /p2p/<PeerId> (the line 'addr …' that 'mrp2p join' prints)`)
  }
  try {
    peerIdFromString(p2p.value)
  } catch (err) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": bad PeerId (${errorMessage(err)})`)
  }
  if (!components.some(c => c.name === 'tcp')) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": only TCP addresses are supported`)
  }
  return ma
}

/** A listen address is a TCP address without /p2p (the PeerId is ours). */
export function parseListenAddr (value: string, source: string): string {
  const ma = parseMultiaddr(value, source)
  const names = ma.getComponents().map(c => c.name)
  if (!names.includes('tcp') || names.includes('p2p')) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": expected a TCP address like ${DEFAULT_LISTEN}`)
  }
  return ma.toString()
}

function parseMultiaddr (value: string, source: string): Multiaddr {
  try {
    return multiaddr(value)
  } catch (err) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": ${errorMessage(err)}`)
  }
}
