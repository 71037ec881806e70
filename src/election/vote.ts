import type { PeerIdString } from './types.js'

/** "I will not help anyone but `to` to a lease before `until` (my clock)." */
export interface VotePromise {
  to: PeerIdString
  epoch: number
  until: number
}

export type GrantDecision = 'grant' | 'defer' | 'refuse'

/**
 * The voter's side of the quorum lease: what this node has promised and to
 * whom. Each promise lasts exactly one lease from the moment it is made, so the
 * newest promise always outlives every earlier one and one record is enough.
 *
 * Rules (the safety argument is in docs/election.md):
 * - grant a claim only in an epoch >= every epoch seen, at most one claimant
 *   per epoch, and never while a promise to someone else is still running;
 * - ack a lease (which only exists once a quorum granted it) in an epoch >=
 *   every epoch seen, unless a running promise in that same epoch belongs to
 *   someone else.
 */
export class Voter {
  /** Highest epoch granted in, and to whom (undefined: that claimant released it, so it is free again). */
  private vote: { epoch: number, for: PeerIdString | undefined } | undefined
  private current: VotePromise | undefined

  /**
   * @param unknownUpTo a restarted node may have voted in any epoch up to the
   *   one it persisted and cannot remember for whom, so it votes only above it
   * @param quietUntil nor does it remember its promises, so it grants nothing
   *   until one lease after it started
   */
  constructor (private readonly unknownUpTo: number, private readonly quietUntil: number) {}

  get promise (): VotePromise | undefined {
    return this.current
  }

  /** A promise to someone other than `peer` still running at `now`. */
  promisedOther (peer: PeerIdString, now: number): boolean {
    return this.current !== undefined && this.current.to !== peer && now < this.current.until
  }

  canGrant (claimant: PeerIdString, epoch: number, highestEpoch: number, now: number): GrantDecision {
    if (epoch <= this.unknownUpTo || epoch < highestEpoch) return 'refuse'
    const v = this.vote
    if (v !== undefined && epoch < v.epoch) return 'refuse'
    // That claimant may still release the epoch: keep the request.
    if (v !== undefined && epoch === v.epoch && v.for !== undefined && v.for !== claimant) return 'defer'
    if (now < this.quietUntil) return 'defer'
    if (this.promisedOther(claimant, now)) return 'defer'
    return 'grant'
  }

  grant (claimant: PeerIdString, epoch: number, now: number, durationMs: number): void {
    this.vote = { epoch, for: claimant }
    this.current = { to: claimant, epoch, until: now + durationMs }
  }

  canAck (holder: PeerIdString, epoch: number, highestEpoch: number, now: number): boolean {
    if (epoch < highestEpoch) return false
    const p = this.current
    return !(p !== undefined && p.to !== holder && p.epoch >= epoch && now < p.until)
  }

  ack (holder: PeerIdString, epoch: number, now: number, durationMs: number): void {
    this.current = { to: holder, epoch, until: now + durationMs }
  }

  /**
   * `peer` will never again use any epoch <= `upTo`: its grants and our promise
   * to it are void. Returns whether that freed anything.
   */
  released (peer: PeerIdString, upTo: number): boolean {
    let freed = false
    if (this.current?.to === peer && this.current.epoch <= upTo) {
      this.current = undefined
      freed = true
    }
    if (this.vote !== undefined && this.vote.for === peer && this.vote.epoch <= upTo) {
      this.vote = { epoch: this.vote.epoch, for: undefined }
      freed = true
    }
    return freed
  }
}
