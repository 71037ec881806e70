import { createHash } from 'node:crypto'

/**
 * Rendezvous (highest random weight) hashing: every peer gets a score per block, and a block's holders are the
 * peers with the highest scores. Anyone who knows the members computes the same order with no table to share, and
 * a peer that comes or goes moves only the blocks it ranks first for.
 */
export function rankPeers (cid: string, peers: readonly string[]): string[] {
  const scored = peers.map((peer) => ({ peer, score: createHash('sha256').update(cid).update('\0').update(peer).digest().readUIntBE(0, 6) }))
  scored.sort((a, b) => b.score - a.score || (a.peer < b.peer ? -1 : 1))
  return scored.map((s) => s.peer)
}

export interface PlacementPeer {
  peer: string
  /** Bytes it may still store. */
  free: number
}

export type Placement =
  | { ok: true, holders: string[][] }
  | { ok: false, shortfall: string }

/**
 * Holders for each block: the first `replicas` peers in its rank that still have room for it, counting what the
 * blocks placed before it take. Fails, naming the first block that finds too few, when any cannot be placed
 * `replicas` times: then nothing is written.
 */
export function placeBlocks (blocks: ReadonlyArray<{ cid: string, bytes: number }>, peers: readonly PlacementPeer[], replicas: number): Placement {
  if (peers.length < replicas) return { ok: false, shortfall: `${replicas} replicas asked, but the mesh has ${peers.length} node${peers.length === 1 ? ' that stores' : 's that store'} blocks` }
  const room = new Map(peers.map((p) => [p.peer, p.free]))
  const holders: string[][] = []
  for (const b of blocks) {
    const chosen: string[] = []
    for (const peer of rankPeers(b.cid, [...room.keys()])) {
      if (chosen.length === replicas) break
      if ((room.get(peer) ?? 0) >= b.bytes) chosen.push(peer)
    }
    if (chosen.length < replicas) {
      const total = blocks.reduce((n, x) => n + x.bytes, 0) * replicas
      const free = peers.reduce((n, p) => n + p.free, 0)
      return { ok: false, shortfall: `block ${b.cid} (${b.bytes} bytes) fits on ${chosen.length} node${chosen.length === 1 ? '' : 's'}, not ${replicas}: the dataset needs ${total} bytes with its replicas and the nodes have ${free} free` }
    }
    for (const peer of chosen) room.set(peer, (room.get(peer) ?? 0) - b.bytes)
    holders.push(chosen)
  }
  return { ok: true, holders }
}
