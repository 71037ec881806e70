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
      const { info, modes } = await withMeshClient('status', flags, async (client) => {
        const info = await client.call(INFO_PROTOCOL, {}, InfoResponse)
        // Each node decides for itself whose jobs it runs (--submitters): asked, each says which mode it is in.
        const modes = new Map<string, number | undefined>([[info.peerId, info.submitters]])
        await Promise.all(info.members.filter((m) => m.liveness === 'alive' && m.addrs.length > 0).map(async (m) => {
          const addrs = addrsFromInfo(info, m.peerId)
          if (addrs === undefined) return
          try {
            modes.set(m.peerId, (await client.call(INFO_PROTOCOL, {}, InfoResponse, addrs)).submitters)
          } catch {
            // Not answering now: its mode shows as unknown.
          }
        }))
        return { info, modes }
      })
      process.stdout.write(flags.json === true ? `${JSON.stringify(info, null, 2)}\n` : formatStatus(info, modes))
    })
}

/** `modes`: each node's `--submitters` count (undefined: any member); a node missing from it did not answer. */
export function formatStatus (info: InfoResponse, modes: ReadonlyMap<string, number | undefined> = new Map([[info.peerId, info.submitters]])): string {
  const lines: string[] = []
  const lease = info.leaseAgeMs === null ? 'no lease' : `lease age ${(info.leaseAgeMs / 1000).toFixed(1)} s${info.leaseRemainingMs === null ? '' : `, ${(Math.max(0, info.leaseRemainingMs) / 1000).toFixed(1)} s left`}`
  lines.push(`asked       ${info.peerId}`)
  lines.push(`coordinator ${info.coordinator ?? '(none)'}`)
  lines.push(`epoch       ${info.epoch} (${lease})`)
  lines.push('')
  const mode = (peer: string): string => !modes.has(peer) ? '?' : modes.get(peer) === undefined ? 'any member' : `${String(modes.get(peer))} allowed`
  const rows: string[][] = [['PEER', 'ADDRESS', 'ROLE', 'STATE', 'SLOTS', 'SUBMITTERS']]
  const seen = new Set<string>()
  const role = (peer: string, worker: boolean): string => peer === info.coordinator ? 'coordinator' : worker ? 'worker' : 'observer'
  rows.push([info.peerId, firstAddr(info.addrs), role(info.peerId, info.worker), 'self', String(info.slots), mode(info.peerId)])
  seen.add(info.peerId)
  for (const m of [...info.members].sort((a, b) => a.peerId < b.peerId ? -1 : 1)) {
    if (seen.has(m.peerId)) continue
    seen.add(m.peerId)
    rows.push([m.peerId, firstAddr(m.addrs), role(m.peerId, m.worker), m.liveness, String(m.slots), mode(m.peerId)])
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
