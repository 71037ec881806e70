import type { Command } from 'commander'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { z } from 'zod'
import type { InfoResponse } from '../protocol/info.js'
import { MRP2P_VERSION } from '../node/version.js'
import { isHandshakeRefusal, swarmKeyMismatch } from '../protocol/errors.js'
import { request, type StreamOpener } from '../protocol/reqresp.js'
import { errorMessage, UserFacingError } from '../util/errors.js'
import { parseIntArg } from './arg-parsers.js'
import { quietUnlessLogLevelSet } from './log-level.js'
import { mdnsServiceTag } from '../node/lan-discovery.js'
import { envValue, type Env } from '../util/env.js'
import { withPeerId } from '../util/peer-addr.js'
import { resolveBootstrap, resolveSwarmKey } from './node-options.js'

/** The node named by --bootstrap did not answer. */
export class NodeUnreachableError extends UserFacingError {
  static readonly NAME = 'NodeUnreachableError'
  override readonly name = NodeUnreachableError.NAME
  readonly exitCode = 1
}

/** The flags of every command that asks a node of the mesh (`status`, `jobs`, `job`, `logs`, `cancel`). */
export interface MeshClientFlags {
  bootstrap?: string[]
  mdns?: boolean
  json?: boolean
  timeoutMs?: string
  swarmKey?: string
}

/** How long a command waits for a node's answer unless told. */
export const DEFAULT_CLIENT_TIMEOUT_MS = 5_000

export function addMeshClientOptions (cmd: Command): Command {
  return cmd
    .option('--bootstrap <multiaddr...>', 'a node to ask, ending in /p2p/<PeerId> (env MRP2P_BOOTSTRAP)')
    .option('--mdns', MDNS_CLIENT_HELP)
    .option('--json', 'print the answer as JSON')
    .option('--timeout-ms <ms>', 'give up after this long', String(DEFAULT_CLIENT_TIMEOUT_MS))
    .option('--swarm-key <file>', 'the key of a private mesh (env MRP2P_SWARM_KEY)')
}

export const MDNS_CLIENT_HELP = 'with no --bootstrap, find a node of the mesh on the LAN by multicast DNS (env MRP2P_MDNS=1)'

/**
 * Where a command finds the mesh: --bootstrap (or MRP2P_BOOTSTRAP); without one, with --mdns (or MRP2P_MDNS=1),
 * the first node of the mesh (of this swarm key) that answers on the LAN within `timeoutMs`. One line names what
 * is missing otherwise.
 */
export async function resolveMeshTargets (command: string, flags: { bootstrap?: string[], mdns?: boolean }, swarmKey: Uint8Array | undefined, timeoutMs: number, env: Env = process.env): Promise<Multiaddr[]> {
  const targets = resolveBootstrap(flags.bootstrap, env)
  if (targets.length > 0) return targets
  const mdns = flags.mdns ?? envValue(env, 'MRP2P_MDNS') === '1'
  if (!mdns) throw new NodeUnreachableError(`${command} needs --bootstrap <multiaddr> (or MRP2P_BOOTSTRAP) naming a node of the mesh, or --mdns to find one on the LAN`)
  const { findMeshOnLan } = await import('../node/find-on-lan.js')
  const found = await findMeshOnLan({ swarmKey, version: MRP2P_VERSION, signal: AbortSignal.timeout(timeoutMs) })
  if (found.length === 0) throw new NodeUnreachableError(`no node of the mesh answered on the LAN within ${timeoutMs} ms (mDNS ${mdnsServiceTag(swarmKey)}${swarmKey === undefined ? '; a private mesh also needs --swarm-key FILE' : ''})`)
  return found
}

/** One asked node: calls to it, and to other members by their addresses. */
export interface MeshClient {
  /** The node that answered, as dialled. */
  target: Multiaddr
  /** The client's libp2p, for bulk streams (datasets' blocks). */
  opener: StreamOpener
  call: <S extends z.ZodType>(protocol: string, body: unknown, schema: S, to?: Multiaddr[]) => Promise<z.output<S>>
}

/**
 * Runs `fn` against the first of the --bootstrap nodes that answers `probe`, from a throw-away client
 * identity that listens nowhere and joins no gossip: never a member, a candidate or a bridge.
 */
export async function withMeshClient<T> (command: string, flags: MeshClientFlags, fn: (client: MeshClient) => Promise<T>): Promise<T> {
  quietUnlessLogLevelSet()
  const timeoutMs = flags.timeoutMs === undefined ? DEFAULT_CLIENT_TIMEOUT_MS : parseIntArg(flags.timeoutMs, '--timeout-ms', 100, 600_000)
  const swarmKey = resolveSwarmKey(flags.swarmKey)
  const targets = await resolveMeshTargets(command, flags, swarmKey, timeoutMs)
  const { createClientLibp2p } = await import('../node/client-libp2p.js')
  const node = await createClientLibp2p({ version: MRP2P_VERSION, swarmKey })
  const errors: string[] = []
  try {
    for (const target of targets) {
      const client = clientFor(node, target, timeoutMs)
      let reached = false
      try {
        return await fn({
          target,
          opener: node,
          call: async (protocol, body, schema, to) => {
            try {
              const answer = await client.call(protocol, body, schema, to)
              reached = true
              return answer
            } catch (err) {
              if (isHandshakeRefusal(err)) throw swarmKeyMismatch(String(to ?? target), swarmKey !== undefined)
              throw err
            }
          }
        })
      } catch (err) {
        // A node that answered and then said no (an unknown job) is the answer; only one that never answered is skipped.
        if (reached || err instanceof UserFacingError) throw err
        errors.push(`${target.toString()}: ${errorMessage(err)}`)
      }
    }
    throw new NodeUnreachableError(`no node answered: ${errors.join('; ')}${swarmKey === undefined ? ' (a private mesh also needs --swarm-key FILE)' : ''}`)
  } finally {
    try { await node.stop() } catch { /* already stopping */ }
  }
}

function clientFor (node: StreamOpener, target: Multiaddr, timeoutMs: number): { call: MeshClient['call'] } {
  return {
    call: async (protocol, body, schema, to) => await request(node, to ?? target, protocol, body, schema, {
      signal: AbortSignal.timeout(timeoutMs),
      timeouts: { dialMs: timeoutMs, firstByteMs: timeoutMs, responseMs: timeoutMs },
      maxFrameBytes: 16 * 1024 * 1024
    })
  }
}

/**
 * The addresses an info answer gives for `peer` (the node that answered, or one of its members, `dead` ones
 * only when `withDead`), each ending in its /p2p part; undefined when it names no such peer.
 */
export function addrsFromInfo (info: InfoResponse, peer: string, withDead = true): Multiaddr[] | undefined {
  if (info.peerId === peer) return memberAddrs(peer, info.addrs)
  const member = info.members.find((m) => m.peerId === peer && (withDead || m.liveness !== 'dead'))
  return member === undefined ? undefined : memberAddrs(peer, member.addrs)
}

/** A member's addresses as the info answer lists them, each ending in its /p2p part. */
export function memberAddrs (peer: string, addrs: string[]): Multiaddr[] {
  return addrs.map((a) => withPeerId(a, peer))
}
