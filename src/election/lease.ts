import type { PeerIdString } from './types.js'

/**
 * The claimant's / holder's side of a quorum-backed lease.
 *
 * Each claim and each renewal is a numbered send. A peer that grants or acks
 * send `seq` (received at its time r >= the send time) promises not to help
 * anyone else to a lease until r + duration on its own clock. So once a
 * majority has acked send k, the holder may act until
 *   sentAt(k) + duration × (1 − driftBound)
 * on its own clock, which ends no later than the earliest of those promises in
 * true time as long as clock rates differ by at most the drift bound. Acks are
 * cumulative: acking k' >= k implies a promise that outlives the one for k.
 */
export class HolderLease {
  private nextSeq = 0
  private readonly sentAt = new Map<number, number>()
  private readonly acked = new Map<PeerIdString, number>()
  private until = Number.NEGATIVE_INFINITY
  private coveredSeq = -1
  private lastSent = Number.NEGATIVE_INFINITY

  constructor (
    readonly epoch: number,
    readonly durationMs: number,
    private readonly driftBound: number
  ) {}

  /** Records a new send and returns its seq. */
  send (now: number): number {
    const seq = this.nextSeq++
    this.sentAt.set(seq, now)
    this.lastSent = now
    return seq
  }

  /** Records `peer`'s cumulative ack; ignores seqs never sent (junk or another incarnation). */
  ack (peer: PeerIdString, seq: number): void {
    if (seq >= this.nextSeq) return
    const prev = this.acked.get(peer)
    if (prev === undefined || seq > prev) this.acked.set(peer, seq)
  }

  /**
   * Recounts against the current voters (self included; self has acked every
   * send) and returns the holder-side end of the lease. The end only ever moves
   * forward: promises already made stay made whatever the view does later.
   */
  recount (self: PeerIdString, voters: readonly PeerIdString[]): number {
    if (this.nextSeq === 0) return this.until
    const seqs: number[] = []
    for (const v of voters) {
      const a = v === self ? this.nextSeq - 1 : this.acked.get(v)
      if (a !== undefined) seqs.push(a)
    }
    const need = Math.floor(voters.length / 2) + 1
    if (seqs.length < need) return this.until
    seqs.sort((a, b) => b - a)
    const k = seqs[need - 1]
    if (k > this.coveredSeq) this.coveredSeq = k
    const sent = this.sentAt.get(k)
    if (sent !== undefined) {
      const end = sent + this.durationMs * (1 - this.driftBound)
      if (end > this.until) this.until = end
      // Sends before k can never extend the lease past what k gave.
      for (const s of this.sentAt.keys()) if (s < k) this.sentAt.delete(s)
    }
    return this.until
  }

  /**
   * Whether a majority of `voters` as they are now (self included) has acked one of the two newest sends. Unlike
   * the lease's end, which never moves back, this answers for the current view: a holder whose view has just grown
   * by the other side of a healed partition learns here that it no longer speaks for a majority.
   */
  backedNow (self: PeerIdString, voters: readonly PeerIdString[]): boolean {
    if (this.nextSeq === 0) return false
    const recent = this.nextSeq - 2
    let n = 0
    for (const v of voters) if (v === self || (this.acked.get(v) ?? -1) >= recent) n++
    return n >= Math.floor(voters.length / 2) + 1
  }

  /** Whether a quorum has acked the newest send. */
  get newestCovered (): boolean {
    return this.coveredSeq === this.nextSeq - 1
  }

  get validUntil (): number {
    return this.until
  }

  get lastSentAt (): number {
    return this.lastSent
  }

  /** Send time of the newest send a quorum has covered, for leaseAgeMs. */
  get coveredSentAt (): number | undefined {
    return this.until === Number.NEGATIVE_INFINITY ? undefined : this.until - this.durationMs * (1 - this.driftBound)
  }

  isValid (now: number): boolean {
    return now < this.until
  }
}
