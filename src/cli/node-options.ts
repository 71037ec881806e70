import { availableParallelism } from 'node:os'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidArgumentError, errorMessage } from '../util/errors.js'
import { defaultDataDir } from '../node/data-dir.js'
import { readSwarmKey } from '../node/private-network.js'
import { envList, envValue, flagOrEnv, nonBlank, type Env } from '../util/env.js'
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
}

export interface NetworkOptions {
  bootstrap: Multiaddr[]
  listen: string[]
  dataDir: string
  slots: number
  worker: boolean
  /** Set: the mesh is private (src/node/private-network.ts). */
  swarmKey?: Uint8Array
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
  return { bootstrap, listen, dataDir, slots, worker: flags.worker ?? true, swarmKey: resolveSwarmKey(flags.swarmKey, env) }
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
