import type { Command } from 'commander'
import { multiaddr } from '@multiformats/multiaddr'
import { UserFacingError, errorMessage } from '../util/errors.js'
import { createClientLibp2p } from '../node/libp2p.js'
import { isHandshakeRefusal, swarmKeyMismatch } from '../protocol/errors.js'
import { MRP2P_VERSION } from '../node/version.js'
import { queryInfo, type InfoResponse } from '../protocol/info.js'
import { quietUnlessLogLevelSet } from './log-level.js'
import { resolveBootstrap, resolveSwarmKey } from './node-options.js'
import { parseIntArg } from './arg-parsers.js'

/** The node named by --bootstrap did not answer. */
export class NodeUnreachableError extends UserFacingError {
  static readonly NAME = 'NodeUnreachableError'
  override readonly name = NodeUnreachableError.NAME
  readonly exitCode = 1
}

interface StatusFlags {
  bootstrap?: string[]
  json?: boolean
  timeoutMs?: string
  swarmKey?: string
}

/**
 * `mrp2p status`: ask one node of the mesh (over /mrp2p/info/1.0.0) what it
 * sees and print it. The client has a throw-away identity, listens nowhere
 * and does not join gossip, so it is never a member, a candidate, or a bridge.
 */
/** How long `status` waits for a node's answer unless told. */
const DEFAULT_STATUS_TIMEOUT_MS = 5_000

export function registerStatusCommand (program: Command): void {
  program
    .command('status')
    .description('print the mesh as a node sees it: peers, coordinator, epoch, lease')
    .option('--bootstrap <multiaddr...>', 'a node to ask, ending in /p2p/<PeerId> (env MRP2P_BOOTSTRAP)')
    .option('--json', 'print the raw answer as JSON')
    .option('--timeout-ms <ms>', 'give up after this long', String(DEFAULT_STATUS_TIMEOUT_MS))
    .option('--swarm-key <file>', 'the key of a private mesh (env MRP2P_SWARM_KEY)')
    .action(async (flags: StatusFlags) => {
      quietUnlessLogLevelSet()
      const targets = resolveBootstrap(flags.bootstrap)
      if (targets.length === 0) throw new NodeUnreachableError('status needs --bootstrap <multiaddr> (or MRP2P_BOOTSTRAP) naming a node to ask')
      const timeoutMs = flags.timeoutMs === undefined ? DEFAULT_STATUS_TIMEOUT_MS : parseIntArg(flags.timeoutMs, '--timeout-ms', 100, 600_000)
      const info = await askAny(targets.map(t => t.toString()), timeoutMs, resolveSwarmKey(flags.swarmKey))
      process.stdout.write(flags.json === true ? `${JSON.stringify(info, null, 2)}\n` : formatStatus(info))
    })
}

async function askAny (targets: string[], timeoutMs: number, swarmKey: Uint8Array | undefined): Promise<InfoResponse> {
  const client = await createClientLibp2p({ version: MRP2P_VERSION, swarmKey })
  const errors: string[] = []
  try {
    for (const target of targets) {
      try {
        return await queryInfo(client, multiaddr(target), {
          signal: AbortSignal.timeout(timeoutMs),
          timeouts: { dialMs: timeoutMs, firstByteMs: timeoutMs, responseMs: timeoutMs }
        })
      } catch (err) {
        if (isHandshakeRefusal(err)) throw swarmKeyMismatch(target, swarmKey !== undefined)
        errors.push(`${target}: ${errorMessage(err)}`)
      }
    }
    throw new NodeUnreachableError(`no node answered: ${errors.join('; ')}${swarmKey === undefined ? ' (a private mesh also needs --swarm-key FILE)' : ''}`)
  } finally {
    try { await client.stop() } catch { /* already stopping */ }
  }
}

export function formatStatus (info: InfoResponse): string {
  const lines: string[] = []
  const lease = info.leaseAgeMs === null ? 'no lease' : `lease age ${(info.leaseAgeMs / 1000).toFixed(1)} s${info.leaseRemainingMs === null ? '' : `, ${(Math.max(0, info.leaseRemainingMs) / 1000).toFixed(1)} s left`}`
  lines.push(`asked       ${info.peerId}`)
  lines.push(`coordinator ${info.coordinator ?? '(none)'}`)
  lines.push(`epoch       ${info.epoch} (${lease})`)
  lines.push('')
  const rows: string[][] = [['PEER', 'ADDRESS', 'ROLE', 'STATE', 'SLOTS']]
  const seen = new Set<string>()
  const role = (peer: string, worker: boolean): string => peer === info.coordinator ? 'coordinator' : worker ? 'worker' : 'observer'
  rows.push([info.peerId, firstAddr(info.addrs), role(info.peerId, info.worker), 'self', String(info.slots)])
  seen.add(info.peerId)
  for (const m of [...info.members].sort((a, b) => a.peerId < b.peerId ? -1 : 1)) {
    if (seen.has(m.peerId)) continue
    seen.add(m.peerId)
    rows.push([m.peerId, firstAddr(m.addrs), role(m.peerId, m.worker), m.liveness, String(m.slots)])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  for (const r of rows) lines.push(r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  '))
  const alive = info.members.filter(m => m.liveness === 'alive' && m.peerId !== info.peerId).length + 1
  lines.push('')
  lines.push(`${alive} alive of ${seen.size} known`)
  return `${lines.join('\n')}\n`
}

/** Without the /p2p suffix: the PEER column already says who. */
function firstAddr (addrs: string[]): string {
  const a = addrs[0]
  return a === undefined ? '-' : a.replace(/\/p2p\/[^/]+$/, '')
}
