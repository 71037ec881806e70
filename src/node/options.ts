import { availableParallelism } from 'node:os'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidArgumentError, errorMessage } from '../util/errors.js'
import { defaultDataDir } from './data-dir.js'
import { readSwarmKey } from './private-network.js'

/**
 * Turning flags and environment variables into a checked node configuration.
 * A flag given on the command line wins over its environment variable; every
 * error names the flag (or variable) it came from, so `mrp2p: invalid
 * --bootstrap "x": …` tells a person exactly what to fix.
 */
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

type Env = Record<string, string | undefined>

/** Split a list given in one environment variable: commas and/or whitespace. */
export function splitList (value: string | undefined): string[] {
  if (value === undefined) return []
  return value.split(/[\s,]+/).filter(s => s.length > 0)
}

export function resolveNetworkOptions (flags: JoinFlags, env: Env = process.env): NetworkOptions {
  const fromFlag = (flags.bootstrap?.length ?? 0) > 0
  const bootstrapRaw = fromFlag ? (flags.bootstrap ?? []) : splitList(env.MRP2P_BOOTSTRAP)
  const bootstrap = bootstrapRaw.map(s => parseBootstrapAddr(s, fromFlag ? '--bootstrap' : 'MRP2P_BOOTSTRAP'))

  const listenFromFlag = (flags.listen?.length ?? 0) > 0
  const listenRaw = listenFromFlag ? (flags.listen ?? []) : splitList(env.MRP2P_LISTEN)
  const listen = (listenRaw.length > 0 ? listenRaw : [DEFAULT_LISTEN]).map(s => parseListenAddr(s, listenFromFlag ? '--listen' : 'MRP2P_LISTEN'))

  const dataDir = nonEmpty(flags.dataDir) ?? nonEmpty(env.MRP2P_DATA_DIR) ?? defaultDataDir()

  const slotsSource = flags.slots !== undefined ? '--slots' : 'MRP2P_SLOTS'
  const slotsRaw = flags.slots ?? nonEmpty(env.MRP2P_SLOTS)
  const slots = slotsRaw === undefined ? availableParallelism() : parseIntArg(slotsRaw, slotsSource, 1, 1024)

  return { bootstrap, listen, dataDir, slots, worker: flags.worker ?? true, swarmKey: resolveSwarmKey(flags.swarmKey, env) }
}

/** Where the key of a private mesh is: `--swarm-key FILE`, else the file named by MRP2P_SWARM_KEY, else none. */
export function swarmKeyPath (flag: string | undefined, env: Env = process.env): string | undefined {
  return nonEmpty(flag) ?? nonEmpty(env.MRP2P_SWARM_KEY)
}

/** The key of a private mesh, read and checked (see swarmKeyPath). */
export function resolveSwarmKey (flag: string | undefined, env: Env = process.env): Uint8Array | undefined {
  const path = swarmKeyPath(flag, env)
  return path === undefined ? undefined : readSwarmKey(path)
}

/** A bootstrap address must say whom we dial: transport plus /p2p/<PeerId>. */
export function parseBootstrapAddr (value: string, source: string): Multiaddr {
  let ma: Multiaddr
  try {
    ma = multiaddr(value)
  } catch (err) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": ${errorMessage(err)}`)
  }
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

export function parseListenAddr (value: string, source: string): string {
  let ma: Multiaddr
  try {
    ma = multiaddr(value)
  } catch (err) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": ${errorMessage(err)}`)
  }
  const names = ma.getComponents().map(c => c.name)
  if (!names.includes('tcp') || names.includes('p2p')) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": expected a TCP address like ${DEFAULT_LISTEN}`)
  }
  return ma.toString()
}

export function parseIntArg (value: string, source: string, min: number, max: number): number {
  const n = Number(value.trim())
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": expected an integer from ${min} to ${max}`)
  }
  return n
}

function nonEmpty (s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s
}
