/**
 * How long a storing member that left is still counted where its blocks belong, so that nobody copies them
 * elsewhere yet. HDFS waits 10.5 minutes before it calls a DataNode dead and re-replicates, and Ceph 10 before it
 * marks an OSD out, for the same two reasons: a node that restarts comes back with its blocks, and copying a dead
 * node's share takes the disks, the network and (here, with every block hashed and encrypted) the cores that the
 * jobs running on the survivors need. What it costs: a block the departed node held has one copy fewer meanwhile.
 */
export const DEFAULT_REPAIR_AFTER_MS = 30_000

/** Tracks departures; pure (the caller gives the time), so the repair loop and its tests share it. */
export class DepartureGrace {
  private known = new Set<string>()
  private readonly gone = new Map<string, number>()

  constructor (private readonly graceMs: number) {}

  /**
   * The members to rank blocks over at `now`: those `alive`, then each peer seen before and missing since, for
   * less than the grace. A peer that returns in time is alive again; one that does not drops out for good.
   */
  rankable (alive: readonly string[], now: number): string[] {
    const present = new Set(alive)
    for (const peer of this.known) if (!present.has(peer) && !this.gone.has(peer)) this.gone.set(peer, now)
    this.known = present
    const out = [...alive]
    for (const [peer, since] of this.gone) {
      if (present.has(peer) || now - since >= this.graceMs) this.gone.delete(peer)
      else out.push(peer)
    }
    return out
  }
}
