/**
 * A per-author token bucket for the control topic's validator: the flood
 * detector that lets gossipsub's peer score graylist a member publishing far
 * more control messages than any honest member can.
 *
 * How fast an honest member can publish (src/election/election-node.ts,
 * timing.ts), per second, with heartbeat period h and lease L in ms:
 * heartbeats at most one per h/10 (10000/h: the gap a renewal or nudge may
 * shorten a heartbeat to), lease announcements one per L/6 (6000/L), claims
 * one per h/2 (2000/h), grants one per claim heard (about 2000/h for one
 * candidate, double it for two at once), releases one per claim ended. That is
 * at most about 16000/h + 6000/L: 18/s with the defaults (h 1000, L 3000), 43/s
 * with the tests' short lease (h 400, L 2000). Measured peaks are far lower:
 * 5 to 8 a second with the tests' lease, the first election included
 * (test/integration/gossip-scoring.test.ts prints it). The default rate, 100 a
 * second, is more than twice the bound for any heartbeat of 400 ms or more;
 * {@link senderRateFor} scales it for shorter ones. The burst, 20, is four
 * times what one member sends at once (a heartbeat, a lease, a grant, a claim
 * and a release in one tick); it is small because every message of a flood
 * admitted before the bucket runs dry is verified, delivered and relayed by
 * every node.
 *
 * A bucket measures the times this node handled the messages, not when they
 * were sent: after this node's event loop stalled (a GC pause, a suspended VM,
 * a flood being read), every author's messages of the stall are handled at
 * once, and an honest author would overrun a bucket that holds only `burst`.
 * So the caller says how long this node has just been unable to listen
 * (`stalledMs`, as src/election/election-node.ts says "the silence was ours,
 * not our peers'"), and the bucket holds that much more refill.
 *
 * Why a debt and a grace: gossipsub charges a relay for a copy of a message
 * that this node has already rejected (the delivery record says invalid) just
 * as it charges the author, and where a flood ran out of an author's bucket
 * depends on each node's own timing. If node A admits a message that node B
 * had already rejected from its author, A's relayed copy costs A its score at
 * B. So the first message over the bucket puts its author a second of its
 * rate into debt, and every further one refused deepens it (down to
 * `debtSeconds` of its rate): an author sending faster than the rate only
 * digs deeper, and is admitted again once quiet long enough to repay it (a
 * minute, after a flood), while an honest one whose backlog overran once is
 * heard again within about a second at its own pace. Every node admits
 * one prefix of a flood, and none lets through a trickle at the refill rate
 * that others refused (nor a second burst refilled while its event loop was
 * busy: a plain bucket did, in the test, and the relays paid for it). The
 * first `graceMessages` in debt are only 'over' (the validator ignores them):
 * nodes disagree about the length of that prefix by the refill over their
 * different timings (by up to 62 messages in the test's runs), and until the
 * grace is spent another node may still have admitted and relayed the message.
 * Past it they are a 'flood', rejected when they come from the author itself.
 * At 5,000 messages a second the grace costs the flooder 20 ms. Graylisted, a
 * flooder is no longer heard and its debt runs out while its score recovers;
 * if it floods again when heard again it is refused at once.
 */

export interface SenderRateOptions {
  /** Sustained messages a second an author may publish. */
  perSecond: number
  /** Messages an idle author may publish at once. */
  burst: number
  /** How long an author that overran its bucket stays refused after its last message, in seconds of `perSecond`. */
  debtSeconds?: number
  /** How many refused messages are only 'over' before they are a 'flood'. */
  graceMessages?: number
  /** Authors tracked at most; idle ones go first, then the least recently heard. */
  maxAuthors?: number
}

export const DEFAULT_SENDER_RATE: Readonly<Required<SenderRateOptions>> = Object.freeze({
  perSecond: 100,
  burst: 20,
  debtSeconds: 60,
  graceMessages: 100,
  maxAuthors: 1024
})

/** An upper bound of what one honest member publishes a second (see the module comment). */
export function honestPeakPerSecond (timing: { heartbeatMs: number, leaseMs: number }): number {
  return 16_000 / timing.heartbeatMs + 6_000 / timing.leaseMs
}

/** The default bucket, or where 2 × the honest bound is more, one that large, its burst and grace scaled with it. */
export function senderRateFor (timing: { heartbeatMs: number, leaseMs: number }): Required<SenderRateOptions> {
  const d = DEFAULT_SENDER_RATE
  const perSecond = Math.max(d.perSecond, Math.ceil(2 * honestPeakPerSecond(timing)))
  const scale = perSecond / d.perSecond
  return { ...d, perSecond, burst: Math.ceil(d.burst * scale), graceMessages: Math.ceil(d.graceMessages * scale) }
}

/**
 * 'ok': within the author's rate. 'over': past it, by fewer messages than two honest nodes' counts may differ.
 * 'flood': past it by more: no honest node admits this message.
 */
export type RateVerdict = 'ok' | 'over' | 'flood'

export interface SenderRate {
  /**
   * Counts one message of `author` at `now` (ms, monotonic). `stalledMs`: how long this node could not handle
   * messages just before, whose backlog it may be handling now.
   */
  admit: (author: string, now: number, stalledMs?: number) => RateVerdict
  /** Authors tracked now (for tests: it stays bounded). */
  size: () => number
}

interface Bucket {
  tokens: number
  at: number
  /** Messages refused since the author went into debt; 0: not in debt. */
  refused: number
}

export function createSenderRate (options: Partial<SenderRateOptions> = {}): SenderRate {
  const o = { ...DEFAULT_SENDER_RATE, ...options }
  if (!(o.perSecond > 0) || !(o.burst >= 1) || !(o.debtSeconds >= 0) || !(o.graceMessages >= 0) || !(o.maxAuthors >= 1)) {
    throw new RangeError(`sender rate: needs perSecond > 0, burst >= 1, debtSeconds >= 0, graceMessages >= 0, maxAuthors >= 1, got ${JSON.stringify(o)}`)
  }
  const perMs = o.perSecond / 1000
  const floor = -o.perSecond * o.debtSeconds
  // Insertion order is recency order: every admit moves its author to the end.
  const buckets = new Map<string, Bucket>()

  const refill = (b: Bucket, now: number, stalledMs = 0): void => {
    // A clock that went back (it should not) refills nothing rather than draining.
    // What a stall allowed is spent on its backlog or lost with it: no author keeps a stall's worth in reserve.
    const cap = o.burst + Math.max(0, stalledMs) * perMs
    b.tokens = Math.min(cap, b.tokens + Math.max(0, now - b.at) * perMs)
    b.at = Math.max(b.at, now)
  }

  const evict = (now: number): void => {
    for (const [author, b] of buckets) {
      refill(b, now)
      // A full bucket says nothing a fresh one would not.
      if (b.tokens >= o.burst) buckets.delete(author)
    }
    for (const author of buckets.keys()) {
      if (buckets.size < o.maxAuthors) break
      buckets.delete(author)
    }
  }

  return {
    admit (author, now, stalledMs = 0) {
      let b = buckets.get(author)
      if (b === undefined) {
        b = { tokens: o.burst, at: now, refused: 0 }
        if (buckets.size >= o.maxAuthors) evict(now)
      } else {
        buckets.delete(author)
        refill(b, now, stalledMs)
      }
      buckets.set(author, b)
      if (b.tokens >= 1) {
        // Within the bucket, or the debt repaid.
        b.tokens -= 1
        b.refused = 0
        return 'ok'
      }
      // Into debt by a second's worth, and deeper by each message refused while in it: an honest author whose
      // backlog overran the bucket once (a pause this node did not see as one) is heard again within about a second
      // at its own pace; a flood digs down to the floor, and stays refused until quiet for the debt. (A first
      // overrun that set the floor at once kept an honest holder's leases out for a minute, every heartbeat renewing
      // the debt: the crash test's mesh went 30 s without a coordinator.)
      b.tokens = b.refused === 0 ? Math.max(floor, -o.perSecond) : Math.max(floor, b.tokens - 1)
      b.refused++
      return b.refused <= o.graceMessages ? 'over' : 'flood'
    },
    size: () => buckets.size
  }
}
