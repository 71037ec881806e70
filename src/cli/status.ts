import type { Command } from 'commander'
import { INFO_PROTOCOL } from '../protocol/ids.js'
import { InfoResponse } from '../protocol/info.js'
import { addMeshClientOptions, addrsFromInfo, withMeshClient, type MeshClientFlags } from './mesh-client.js'

export { NodeUnreachableError } from './mesh-client.js'

/**
 * `mrp2p status`: ask one node of the mesh (over /mrp2p/info/1.0.0) what it
 * sees and print it.
 */
export function registerStatusCommand (program: Command): void {
  addMeshClientOptions(program
    .command('status')
    .description('print the mesh as a node sees it: peers, coordinator, epoch, lease'))
    .action(async (flags: MeshClientFlags) => {
      const { info, answers } = await withMeshClient('status', flags, async (client) => {
        const info = await client.call(INFO_PROTOCOL, {}, InfoResponse)
        // Each node decides for itself whose jobs it runs (--submitters) and knows its own links: every live member
        // is asked.
        const answers = new Map<string, InfoResponse>([[info.peerId, info]])
        // --json prints the asked node's answer alone: nobody else need be asked.
        if (flags.json === true) return { info, answers }
        await Promise.all(info.members.filter((m) => m.liveness === 'alive' && m.addrs.length > 0).map(async (m) => {
          const addrs = addrsFromInfo(info, m.peerId)
          if (addrs === undefined) return
          try {
            answers.set(m.peerId, await client.call(INFO_PROTOCOL, {}, InfoResponse, addrs))
          } catch {
            // Not answering now: its mode and links show as unknown.
          }
        }))
        return { info, answers }
      })
      process.stdout.write(flags.json === true ? `${JSON.stringify(info, null, 2)}\n` : formatStatus(info, answers))
    })
}

/** `answers`: what each node that answered said of itself (its `--submitters`, reachability and links). */
export function formatStatus (info: InfoResponse, answers: ReadonlyMap<string, InfoResponse> = new Map([[info.peerId, info]])): string {
  const lines: string[] = []
  const lease = info.leaseAgeMs === null ? 'no lease' : `lease age ${(info.leaseAgeMs / 1000).toFixed(1)} s${info.leaseRemainingMs === null ? '' : `, ${(Math.max(0, info.leaseRemainingMs) / 1000).toFixed(1)} s left`}`
  lines.push(`asked       ${info.peerId}`)
  lines.push(`coordinator ${info.coordinator ?? '(none)'}`)
  lines.push(`epoch       ${info.epoch} (${lease})`)
  lines.push('')
  const mode = (peer: string): string => {
    const a = answers.get(peer)
    return a === undefined ? '?' : a.submitters === undefined ? 'any member' : `${String(a.submitters)} allowed`
  }
  const reach = (peer: string): string => {
    const r = answers.get(peer)?.reachability
    if (r === undefined) return '?'
    const parts: string[] = [r.nat]
    if (r.relay) parts.push('relay')
    if (r.relays.length > 0) parts.push(`via ${r.relays.length} relay${r.relays.length === 1 ? '' : 's'}`)
    return parts.join(', ')
  }
  const link = (peer: string): string => info.relayed?.includes(peer) === true ? 'relayed' : info.connections.includes(peer) ? 'direct' : '-'
  const rows: string[][] = [['PEER', 'ADDRESS', 'ROLE', 'STATE', 'SLOTS', 'LINK', 'REACH', 'SUBMITTERS']]
  const seen = new Set<string>()
  const role = (peer: string, worker: boolean): string => peer === info.coordinator ? 'coordinator' : worker ? 'worker' : 'observer'
  rows.push([info.peerId, firstAddr(info.addrs), role(info.peerId, info.worker), 'self', String(info.slots), '-', reach(info.peerId), mode(info.peerId)])
  seen.add(info.peerId)
  for (const m of [...info.members].sort((a, b) => a.peerId < b.peerId ? -1 : 1)) {
    if (seen.has(m.peerId)) continue
    seen.add(m.peerId)
    rows.push([m.peerId, firstAddr(m.addrs), role(m.peerId, m.worker), m.liveness, String(m.slots), link(m.peerId), reach(m.peerId), mode(m.peerId)])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => r[i].length)))
  for (const r of rows) lines.push(r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  '))
  const alive = info.members.filter(m => m.liveness === 'alive' && m.peerId !== info.peerId).length + 1
  lines.push('')
  lines.push(`${alive} alive of ${seen.size} known`)
  const relayed = relayedPairs(answers)
  if (relayed.length > 0) {
    lines.push('')
    lines.push('reached only through a relay:')
    for (const [a, b] of relayed) lines.push(`  ${a} <-> ${b}`)
  }
  return `${lines.join('\n')}\n`
}

/** Pairs of nodes, as the answers tell, connected only through a relay (either side saying so is enough). */
export function relayedPairs (answers: ReadonlyMap<string, InfoResponse>): Array<[string, string]> {
  const pairs = new Map<string, [string, string]>()
  for (const [peer, a] of answers) {
    for (const other of a.relayed ?? []) {
      const pair: [string, string] = peer < other ? [peer, other] : [other, peer]
      pairs.set(pair.join(' '), pair)
    }
  }
  return [...pairs.values()].sort((x, y) => x.join(' ') < y.join(' ') ? -1 : 1)
}

/** Without the /p2p suffix: the PEER column already says who. */
function firstAddr (addrs: string[]): string {
  const a = addrs[0]
  return a === undefined ? '-' : a.replace(/\/p2p\/[^/]+$/, '')
}
