import type { AbortOptions, Libp2p } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { isCircuit } from '../node/reachability.js'
import { queryInfo } from '../protocol/info.js'
import { sleep } from '../util/sleep.js'
import type { Logger } from '../util/logger.js'
import { withPeerId } from '../util/peer-addr.js'

/** How long a submitter waits for a relay slot before it submits with the addresses it has. */
export const RELAY_SLOT_WAIT_MS = 10_000

/**
 * A submitter that workers on other networks may not be able to dial (it listens off loopback, so it may sit behind
 * NAT) is reached through a relay, as the mesh's own nodes behind NAT are. The job carries the submitter's
 * addresses, so the slot must be held before the job is sent. The bootstrap node tells which relays it knows: itself
 * if it is one, else the relays it holds slots on. The submitter connects to them; libp2p's relay transport then
 * reserves, and the relayed address appears among the node's own. A mesh with no relay costs one info request.
 * Resolves once the node has a relayed address, or when no relay is known, or after `waitMs` (then the job goes
 * out with the direct addresses only, and the log says so).
 */
export async function holdRelaySlot (node: Libp2p, bootstrap: Multiaddr[], log: Logger, options: AbortOptions & { waitMs?: number } = {}): Promise<void> {
  const relayed = (): boolean => node.getMultiaddrs().some(isCircuit)
  let relays: Multiaddr[][] = []
  try {
    const info = await queryInfo(node, bootstrap, { signal: options.signal, timeouts: { dialMs: 3_000, firstByteMs: 3_000, responseMs: 3_000 } })
    const reach = info.reachability
    if (reach?.relay === true) relays = [bootstrap]
    else {
      relays = (reach?.relays ?? []).map((peer) => {
        const member = info.members.find((m) => m.peerId === peer)
        return (member?.addrs ?? []).map((a) => multiaddr(a)).filter((a) => !isCircuit(a)).map((a) => withPeerId(a, peer))
      }).filter((addrs) => addrs.length > 0)
    }
  } catch (err) {
    log.debug({ err: String(err) }, 'no relay list from the bootstrap node')
    return
  }
  if (relays.length === 0) return
  await Promise.all(relays.map(async (addrs) => { await node.dial(addrs, { signal: options.signal }).catch(() => {}) }))
  const deadline = Date.now() + (options.waitMs ?? RELAY_SLOT_WAIT_MS)
  while (!relayed() && Date.now() < deadline) await sleep(100, { signal: options.signal })
  if (relayed()) log.debug({ addrs: node.getMultiaddrs().map(String) }, 'holding a relay slot')
  else log.warn({ relays: relays.length }, 'no relay slot: workers on other networks may not reach this submitter')
}
