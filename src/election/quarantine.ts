import type { PeerIdString } from './types.js'

/**
 * How many contradictions a streak needs, whatever its length: a duplicated message or two (gossipsub may deliver
 * one twice) must never be enough, only a peer that keeps at it.
 */
export const QUARANTINE_MIN_CONTRADICTIONS = 3

/** The numbers a {@link Quarantine} works with (from ElectionConfig; docs/election.md, "Quarantine"). */
export interface QuarantineRules {
  /** A streak must last this long (first to last contradiction) before it quarantines. */
  afterMs: number
  /** A silence this long between two contradictions ends a streak: the next one starts a new one. */
  gapMs: number
  /** The first quarantine's length; each repeat doubles it. 0: nobody is ever quarantined. */
  baseMs: number
  /** No quarantine lasts longer; also how long a peer must keep quiet before its repeats are forgotten. */
  maxMs: number
}

/** A quarantine that has just started. */
export interface QuarantineStart {
  peer: PeerIdString
  forMs: number
  /** 1 for a peer's first quarantine, 2 for the next one, … (since it was last forgiven). */
  repeat: number
}

/** A quarantine running now, for views. */
export interface QuarantineEntry {
  peer: PeerIdString
  leftMs: number
}

interface Streak {
  start: number
  count: number
  last: number
  /** The key of the contradictions it counts (see {@link Contradiction}). */
  key: number | undefined
}

/** What kind of contradiction {@link Quarantine.contradiction} records. */
export interface Contradiction {
  /**
   * Each kind has a streak of its own. Only a contradiction of its kind starts it, but every contradiction continues
   * every streak of the peer still running: a kind that honest members show briefly must not start a streak after
   * another kind, yet a peer that keeps at it must not escape by changing kinds as circumstances change (our lease
   * lapsing, say). Default ''.
   */
  kind?: string
  /** Within a kind, a contradiction of another key starts that kind's streak anew (a claim of another epoch). */
  key?: number
  /**
   * Whether it quarantines a peer on probation at once (default true); false where an honest member wrongly
   * quarantined could not help contradicting again before it had a chance to show otherwise.
   */
  probation?: boolean
}

interface PeerRecord {
  /** The streaks running, by kind. */
  streaks: Map<string, Streak>
  /** The latest contradiction of any kind. */
  last: number
  /** Quarantined until then (our clock). */
  until: number
  /** The length of the latest quarantine: also how long the probation after it lasts. */
  forMs: number
  repeats: number
}

/**
 * Per-peer streaks of contradictions and the quarantines they lead to. Pure: every time is the caller's `now`.
 * What counts as a contradiction is the caller's business (ElectionNode: claims, leases and coordinator heartbeats
 * that contradict the lease a majority renews, or that no honest member keeps sending without a lease); this only
 * decides when enough of them make a quarantine, and for how long.
 *
 * Honest members contradict too, briefly (a claimant whose view of the lease lapsed a little early; the holder of
 * the smaller side of a healed partition until its lease runs out), so a streak must last `afterMs` and hold at
 * least {@link QUARANTINE_MIN_CONTRADICTIONS} contradictions, none more than `gapMs` apart. Each quarantine of the
 * same peer lasts twice the one before, up to `maxMs`. After a quarantine the peer is on probation for as long
 * again: it has shown that it keeps contradicting, so its first contradiction then quarantines it at once, rather
 * than after a new streak during which it would be heard. A peer that has not contradicted for `maxMs` since its
 * last quarantine ended is forgiven: the next quarantine starts over from `baseMs`, after a full streak.
 */
export class Quarantine {
  private readonly peers = new Map<PeerIdString, PeerRecord>()

  constructor (private readonly rules: QuarantineRules) {}

  /** Whether `peer`'s election messages are to be ignored at `now`. */
  has (peer: PeerIdString, now: number): boolean {
    const r = this.peers.get(peer)
    return r !== undefined && now < r.until
  }

  /** Whether `peer` has a streak (one that has run out but is not pruned yet counts too). */
  suspects (peer: PeerIdString): boolean {
    return (this.peers.get(peer)?.streaks.size ?? 0) > 0
  }

  /**
   * Records a contradiction from `peer` at `now`. Returns the quarantine it starts, if any; a peer already in
   * quarantine is not counted (its messages are ignored, so there is nothing to count).
   */
  contradiction (peer: PeerIdString, now: number, what: Contradiction = {}): QuarantineStart | undefined {
    if (this.rules.baseMs <= 0) return undefined
    const kind = what.kind ?? ''
    let r = this.peers.get(peer)
    if (r === undefined) {
      r = { streaks: new Map(), last: Number.NEGATIVE_INFINITY, until: Number.NEGATIVE_INFINITY, forMs: 0, repeats: 0 }
      this.peers.set(peer, r)
    }
    if (now < r.until) return undefined
    if (r.repeats > 0 && now - Math.max(r.until, r.last) >= this.rules.maxMs) r.repeats = 0
    const onProbation = (what.probation ?? true) && r.repeats > 0 && now < r.until + r.forMs
    r.last = Math.max(r.last, now)
    for (const [k, s] of r.streaks) if (now - s.last >= this.rules.gapMs) r.streaks.delete(k)
    const own = r.streaks.get(kind)
    if (own === undefined || own.key !== what.key) r.streaks.set(kind, { start: now, count: 0, last: now, key: what.key })
    let complete = onProbation
    for (const s of r.streaks.values()) {
      s.count++
      s.last = Math.max(s.last, now)
      if (s.count >= QUARANTINE_MIN_CONTRADICTIONS && now - s.start >= this.rules.afterMs) complete = true
    }
    if (!complete) return undefined
    r.repeats++
    r.forMs = Math.min(this.rules.baseMs * 2 ** (r.repeats - 1), this.rules.maxMs)
    r.until = now + r.forMs
    r.streaks.clear()
    return { peer, forMs: r.forMs, repeat: r.repeats }
  }

  /**
   * `peer` did something only an honest member does: its streak of `kind` (of every kind if none is named) is over.
   * A quarantine or probation is not.
   */
  clear (peer: PeerIdString, kind?: string): void {
    const streaks = this.peers.get(peer)?.streaks
    if (kind === undefined) streaks?.clear()
    else streaks?.delete(kind)
  }

  /** The quarantines running at `now`, sorted by peer. */
  list (now: number): QuarantineEntry[] {
    const out: QuarantineEntry[] = []
    for (const [peer, r] of this.peers) if (now < r.until) out.push({ peer, leftMs: r.until - now })
    return out.sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
  }

  /** Drops what no longer matters (streaks that ended, repeats forgiven), so that memory follows the offenders. */
  prune (now: number): void {
    for (const [peer, r] of this.peers) {
      if (now < r.until) continue
      for (const [kind, streak] of r.streaks) if (now - streak.last >= this.rules.gapMs) r.streaks.delete(kind)
      const forgiven = r.repeats === 0 || now - Math.max(r.until, r.last) >= this.rules.maxMs
      if (r.streaks.size === 0 && forgiven) this.peers.delete(peer)
    }
  }
}
