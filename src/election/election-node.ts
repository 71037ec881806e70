import { HolderLease } from './lease.js'
import { Membership } from './membership.js'
import type { ClaimMessage, ControlMessage, HeartbeatMessage } from './messages.js'
import { resolveElectionConfig, type ElectionConfig, type ElectionView, type Liveness, type MemberInfo, type PeerIdString, type Role } from './types.js'
import { Voter } from './vote.js'

export type ElectionEffect =
  | { type: 'publish', message: ControlMessage }
  | { type: 'role-changed', role: Role, epoch: number, leader: PeerIdString | undefined }
  | { type: 'member-changed', peer: PeerIdString, liveness: Liveness }
  | { type: 'epoch-observed', epoch: number }

export interface ElectionNodeInit {
  self: PeerIdString
  config?: Partial<ElectionConfig>
  random: () => number
  info: MemberInfo
  /** The highest epoch persisted by an earlier run (from its epoch-observed effects). */
  initialEpoch?: number
}

/** A lease this follower acked: the promise it made and what it acks in its heartbeats. */
interface Followed {
  peer: PeerIdString
  epoch: number
  seq: number
  receivedAt: number
  expiry: number
}

/** How much longer than its own lease a node lets a peer's lease or claim run (see maxDurationMs). */
export const MAX_LEASE_FACTOR = 4

/**
 * A holder re-claims its lease at a higher epoch (a bump, see docs/election.md) at most this many leases after
 * the last bump of its tenure, the spacing doubling per bump up to MAX_BUMP_SPACING_LEASES: each bump makes the
 * job layer start over from the workers' inventories, so a member that keeps announcing higher epochs must not
 * be able to make it do that often.
 */
export const FIRST_BUMP_SPACING_LEASES = 2
export const MAX_BUMP_SPACING_LEASES = 4
/** After this many leases without word of a higher epoch, the spacing starts again from the first. */
export const BUMP_QUIET_LEASES = 8

type PendingClaim = Pick<ClaimMessage, 'from' | 'epoch' | 'seq' | 'durationMs'>

/**
 * Membership, failure detection and quorum-backed lease election as one pure
 * state machine. Inputs are messages and the caller's clock; outputs are
 * effects. Nothing here reads a clock or draws randomness except through
 * `now` arguments and `init.random`, so a seeded simulator replays it exactly.
 *
 * `now` must come from a monotonic clock of this process (performance.now()
 * or similar, never wall time that NTP can step): all lease arithmetic is in
 * local durations and only the rate of the clock matters.
 */
export class ElectionNode {
  readonly self: PeerIdString
  readonly config: ElectionConfig
  private readonly random: () => number
  private info: MemberInfo
  private readonly members: Membership
  private readonly initialEpoch: number
  private voter: Voter

  private highest: number
  private startedAt: number | undefined
  private stopped = false
  private lastNow = Number.NEGATIVE_INFINITY

  private role: Role = 'follower'
  /** Our outstanding claim (role candidate) or held lease (role coordinator). */
  private lease: HolderLease | undefined
  private claimSince = 0
  /** Epoch of the lease last held or followed, for views and heartbeats. */
  private leaseEpoch = 0
  private followed: Followed | undefined
  /**
   * Holders heard from (lease or coordinator heartbeat, any epoch), each until
   * one lease after we last heard it. Not a promise, but while any of them may
   * still be acting we neither claim nor grant: after a heal our promises may
   * belong to another side's holder, and this is what keeps a fresh quorum of
   * the merged view from forming under a holder whose quorum was the old view.
   */
  private readonly holdersSeen = new Map<PeerIdString, { until: number, epoch: number }>()
  /** Someone else is collecting grants: give them time before competing. */
  private busy: { peer: PeerIdString, until: number } | undefined
  private electionAt: number | undefined
  private claimQuietUntil = Number.POSITIVE_INFINITY
  private pending: PendingClaim | undefined
  /** The holder's re-claim of its lease at a higher epoch, while its current lease still runs. */
  private bump: HolderLease | undefined
  private bumpSince = 0
  /** The highest epoch heard from other peers while this node held a valid lease and so did not adopt it. */
  private heardHigher = 0
  private nextBumpAt = Number.NEGATIVE_INFINITY
  private bumpSpacingMs = 0
  private higherHeardAt = Number.NEGATIVE_INFINITY
  /** Since when heardHigher has been above our lease's epoch. */
  private higherSince = Number.NEGATIVE_INFINITY

  private lastHeartbeatAt = Number.NEGATIVE_INFINITY
  private heartbeatWanted = false
  private lastNudgeAt = Number.NEGATIVE_INFINITY
  private nudgePending = false
  private reported: { role: Role, epoch: number, leader: PeerIdString | undefined } = { role: 'follower', epoch: 0, leader: undefined }

  constructor (init: ElectionNodeInit) {
    if (typeof init.self !== 'string' || init.self.length === 0) throw new TypeError('ElectionNode: self must be a PeerId string')
    const initialEpoch = init.initialEpoch ?? 0
    if (!Number.isSafeInteger(initialEpoch) || initialEpoch < 0) throw new RangeError(`ElectionNode: initialEpoch must be a non-negative integer, got ${initialEpoch}`)
    this.self = init.self
    this.config = resolveElectionConfig(init.config)
    this.random = init.random
    this.info = copyInfo(init.info)
    this.members = new Membership(this.self, this.config)
    this.initialEpoch = initialEpoch
    this.highest = initialEpoch
    this.leaseEpoch = 0
    this.reported = { role: 'follower', epoch: 0, leader: undefined }
    this.voter = new Voter(initialEpoch, Number.POSITIVE_INFINITY)
  }

  get highestEpoch (): number {
    return this.highest
  }

  start (now: number): ElectionEffect[] {
    const out: ElectionEffect[] = []
    if (this.startedAt !== undefined || this.stopped) return out
    now = this.clock(now)
    this.startedAt = now
    this.claimQuietUntil = now + this.joinQuietMs
    // We may have promised things before a crash that we no longer remember.
    this.voter = new Voter(this.initialEpoch, now + this.config.leaseMs)
    this.sendHeartbeat(now, out)
    return out
  }

  tick (now: number): ElectionEffect[] {
    const out: ElectionEffect[] = []
    if (!this.begin(now, out)) return out
    now = this.lastNow
    for (const c of this.members.refresh(now)) out.push({ type: 'member-changed', peer: c.peer, liveness: c.liveness })

    if (this.role === 'coordinator' && this.lease !== undefined) {
      this.lease.recount(this.self, this.members.voters(now))
      if (this.bump !== undefined) this.checkBump(now, out)
      if (!this.lease.isValid(now)) {
        this.stepDown(now, out)
      } else if (now - this.lease.lastSentAt >= (this.lease.newestCovered ? this.renewEveryMs : this.renewEveryMs / 2)) {
        // Renewals whose acks went missing are retried at twice the pace.
        this.announce(this.lease, now, out)
      }
      if (this.role === 'coordinator') this.tickBump(now, out)
    }
    if (this.role === 'candidate' && this.lease !== undefined) {
      this.checkClaim(now, out)
      if (this.role === 'candidate') {
        if (now - this.claimSince >= this.claimTimeoutMs) {
          this.abandon(now, out)
        } else if (now - this.lease.lastSentAt >= this.claimResendMs) {
          this.sendClaim(now, out)
        }
      }
    }
    if (this.pending !== undefined) this.tryGrant(this.pending, now, out)
    if (this.role === 'follower') this.maybeClaim(now, out)

    if (this.nudgePending || now - this.lastHeartbeatAt >= this.heartbeatDueMs(now) || (this.heartbeatWanted && now - this.lastHeartbeatAt >= this.minHeartbeatGapMs)) {
      this.sendHeartbeat(now, out)
    }
    this.reportRole(now, out)
    return out
  }

  receive (message: ControlMessage, now: number): ElectionEffect[] {
    const out: ElectionEffect[] = []
    if (!this.begin(now, out)) return out
    now = this.lastNow
    const from = message.from
    if (from === this.self) return out
    // A goodbye is not a sign of life.
    const goodbye = message.type === 'leave' || (message.type === 'release' && message.leaving)
    const change = goodbye ? undefined : this.members.heard(from, now)
    if (change !== undefined) {
      out.push({ type: 'member-changed', peer: change.peer, liveness: change.liveness })
      // A peer we did not count as alive: tell it about us without waiting a full period.
      this.heartbeatWanted = true
    }

    // Bound to a live lease (held, or followed and acked), a node takes no epoch, claim, lease or holdership from
    // anyone but that holder: no message can depose a coordinator that a majority still renews (Raft's leader
    // stickiness). Two holders that meet after a partition heals settle by quorum instead: the one without a
    // majority of the joined mesh cannot renew and lapses within a lease. A holder hearing of a higher epoch than
    // its own re-claims its lease above it (a bump), so that the members which saw that epoch can follow it.
    const bound = this.boundTo(now)
    const foreign = bound !== undefined && from !== bound
    switch (message.type) {
      case 'heartbeat':
        this.members.report(from, message.info, message.role)
        if (foreign) {
          this.heardOf(message.highestEpoch, now)
          if (message.role === 'coordinator' && message.leader === from) this.noteHolder(from, message.epoch, now + this.config.leaseMs)
        } else {
          this.observeEpoch(message.highestEpoch, now, out)
          if (message.role === 'coordinator' && message.leader === from) this.onHolderAlive(from, message.epoch, now, out)
          // A candidate's highestEpoch is the epoch it claims: same split-vote rule as for its claim.
          if (message.role === 'candidate' && this.role === 'candidate' && this.lease?.epoch === message.highestEpoch && from < this.self) this.abandon(now, out)
        }
        if (message.role === 'follower') this.onRelease(from, message.highestEpoch, now, out)
        if (message.promise !== undefined && message.promise.to !== this.self) {
          // Someone else's quorum may rest on that promise: respect it as if it were ours.
          // No honest promise outlasts the longest lease we grant, so none is respected for longer.
          const leftMs = Math.min(message.promise.leftMs, this.maxDurationMs)
          this.noteHolder(message.promise.to, message.promise.epoch, now + leftMs / (1 - this.config.driftBound))
        }
        if (message.ack !== undefined && message.ack.to === this.self && this.lease?.epoch === message.ack.epoch) {
          this.lease.ack(from, message.ack.seq)
          if (this.role === 'candidate') this.checkClaim(now, out)
        }
        break
      case 'lease':
        // A lease longer than we would ever hold would bind our promise past any bound we can reason about (one
        // message could keep the mesh from electing for an hour): not followed, not even its epoch taken.
        if (message.durationMs > this.maxDurationMs) break
        if (foreign) {
          this.heardOf(message.epoch, now)
          this.noteHolder(from, message.epoch, now + this.config.leaseMs)
          break
        }
        this.observeEpoch(message.epoch, now, out)
        this.onLease(from, message.epoch, message.seq, message.durationMs, now, out)
        break
      case 'claim':
        if (message.durationMs > this.maxDurationMs) break
        if (foreign) {
          this.heardOf(message.epoch, now)
          break
        }
        // Our own holder re-claiming above its lease: its epoch is taken only with our grant, so that a bump we
        // must defer leaves us acking the lease it still holds.
        if (bound !== from) this.observeEpoch(message.epoch, now, out)
        this.onClaim(message, now, out)
        break
      case 'grant':
        if (foreign) this.heardOf(message.epoch, now)
        else this.observeEpoch(message.epoch, now, out)
        this.onRelease(from, message.epoch, now, out)
        if (message.to === this.self) {
          if (this.lease?.epoch === message.epoch) {
            this.lease.ack(from, message.seq)
            if (this.role === 'candidate') this.checkClaim(now, out)
          } else if (this.bump?.epoch === message.epoch) {
            this.bump.ack(from, message.seq)
            this.checkBump(now, out)
          }
        } else if (message.epoch >= this.highest) {
          this.noteBusy(message.to, now)
        }
        break
      case 'release':
        this.onRelease(from, message.epoch, now, out)
        if (message.leaving) this.onLeave(from, out)
        break
      case 'leave':
        this.onLeave(from, out)
        break
    }

    if (this.heartbeatWanted && now - this.lastHeartbeatAt >= this.minHeartbeatGapMs) this.sendHeartbeat(now, out)
    this.reportRole(now, out)
    return out
  }

  /**
   * Connectivity changed (a peer connected or subscribed to the control
   * topic): send a heartbeat now rather than at the next period, so that two
   * sides of a healed partition learn of each other's leases within one
   * message delay. Not part of the original API; safe to never call.
   */
  nudge (now: number): ElectionEffect[] {
    const out: ElectionEffect[] = []
    if (!this.begin(now, out)) return out
    now = this.lastNow
    // A heartbeat sent before the change may not have reached the new peers, so
    // the normal spacing does not apply; bursts of nudges still coalesce.
    if (now - this.lastNudgeAt >= this.minHeartbeatGapMs) {
      this.lastNudgeAt = now
      this.sendHeartbeat(now, out)
    } else {
      // Coalesced, but never later than the next tick.
      this.nudgePending = true
    }
    return out
  }

  setInfo (info: MemberInfo): void {
    this.info = copyInfo(info)
  }

  stop (now: number): ElectionEffect[] {
    const out: ElectionEffect[] = []
    if (this.stopped || this.startedAt === undefined) {
      this.stopped = true
      return out
    }
    now = this.clock(now)
    if (this.role !== 'follower' && this.lease !== undefined) {
      this.publish(out, { type: 'release', v: 1, from: this.self, epoch: this.claimedEpoch, leaving: true })
    } else {
      this.publish(out, { type: 'leave', v: 1, from: this.self })
    }
    this.role = 'follower'
    this.lease = undefined
    this.bump = undefined
    this.followed = undefined
    this.stopped = true
    this.reportRole(now, out)
    return out
  }

  isCoordinator (now: number): boolean {
    return !this.stopped && this.role === 'coordinator' && this.lease !== undefined && this.lease.isValid(now)
  }

  view (now: number): ElectionView {
    const coordinator = this.isCoordinator(now)
    let leaseAgeMs: number | undefined
    let leaseValid = false
    if (this.role === 'coordinator' && this.lease !== undefined) {
      const covered = this.lease.coveredSentAt
      leaseAgeMs = covered === undefined ? undefined : Math.max(0, now - covered)
      leaseValid = coordinator
    } else if (this.followed !== undefined) {
      leaseAgeMs = Math.max(0, now - this.followed.receivedAt)
      leaseValid = now < this.followed.expiry
    }
    return {
      self: this.self,
      role: this.stopped ? 'follower' : this.role,
      leader: this.leaderAt(now),
      epoch: this.leaseEpoch,
      highestEpoch: this.highest,
      leaseAgeMs,
      leaseValid,
      members: this.members.views(now)
    }
  }

  // ---- derived timing --------------------------------------------------

  /**
   * The longest lease or claim this node helps: MAX_LEASE_FACTOR × its own lease. Nodes configured alike never come
   * near it; a peer asking for more (misconfigured, or hostile) is ignored rather than promised an unbounded time.
   */
  private get maxDurationMs (): number {
    return MAX_LEASE_FACTOR * this.config.leaseMs
  }

  private get renewEveryMs (): number {
    return this.config.leaseMs / 3
  }

  /** Long enough for every voter's promise to the previous holder to run out. */
  private get claimTimeoutMs (): number {
    return this.config.leaseMs
  }

  private get claimResendMs (): number {
    return this.config.heartbeatMs / 2
  }

  /**
   * While we follow a live lease each renewal triggers our heartbeat (it
   * carries the ack), so the timer only backs that up; otherwise a plain period.
   */
  private heartbeatDueMs (now: number): number {
    const following = this.role === 'follower' && this.followed !== undefined && now < this.followed.expiry
    return following ? this.config.heartbeatMs * 1.25 : this.config.heartbeatMs
  }

  private get minHeartbeatGapMs (): number {
    return this.config.heartbeatMs / 10
  }

  /**
   * A fresh node cannot tell "no one else exists" from "not heard yet" until a
   * peer would have been declared dead, so it does not claim before then.
   */
  private get joinQuietMs (): number {
    return Math.max(this.config.deadAfterMs, this.config.leaseMs)
  }

  // ---- inputs ----------------------------------------------------------

  /** `holder` may be acting under a lease of `epoch` until `until` (our clock). */
  private noteHolder (holder: PeerIdString, epoch: number, until: number): void {
    if (holder === this.self) return
    const prev = this.holdersSeen.get(holder)
    if (prev === undefined || prev.until < until || prev.epoch < epoch) {
      this.holdersSeen.set(holder, { until: Math.max(until, prev?.until ?? until), epoch: Math.max(epoch, prev?.epoch ?? epoch) })
    }
  }

  private onHolderAlive (holder: PeerIdString, epoch: number, now: number, out: ElectionEffect[]): void {
    this.noteHolder(holder, epoch, now + this.config.leaseMs)
    if (epoch < this.highest) return
    if (this.role === 'coordinator' && this.lease !== undefined && this.lease.epoch === epoch) {
      // Two holders of one epoch can only meet after a partition heals: lower PeerId wins.
      if (holder < this.self) this.stepDown(now, out)
      else this.heartbeatWanted = true
    }
    if (this.role === 'candidate' && this.lease !== undefined && this.lease.epoch <= epoch) this.abandon(now, out)
    if (this.role !== 'coordinator') this.electionAt = undefined
  }

  private onLease (holder: PeerIdString, epoch: number, seq: number, durationMs: number, now: number, out: ElectionEffect[]): void {
    if (epoch < this.highest) return
    this.onHolderAlive(holder, epoch, now, out)
    if (this.role !== 'follower') return
    if (!this.voter.canAck(holder, epoch, this.highest, now)) return
    const until = now + Math.max(this.config.leaseMs, durationMs)
    this.voter.ack(holder, epoch, now, Math.max(this.config.leaseMs, durationMs))
    const prev = this.followed
    const newer = prev === undefined || prev.peer !== holder || prev.epoch !== epoch || seq > prev.seq
    this.followed = {
      peer: holder,
      epoch,
      seq: newer ? seq : prev.seq,
      receivedAt: now,
      expiry: until
    }
    this.leaseEpoch = epoch
    if (this.pending !== undefined && this.pending.epoch <= epoch) this.pending = undefined
    // The ack rides on our heartbeat; send it now unless we just sent one.
    if (now - this.lastHeartbeatAt >= this.config.heartbeatMs / 2) this.sendHeartbeat(now, out)
    else this.heartbeatWanted = true
  }

  private onClaim (claim: ClaimMessage, now: number, out: ElectionEffect[]): void {
    if (claim.epoch < this.highest) return
    if (this.role === 'coordinator') return
    if (this.role === 'candidate' && this.lease !== undefined) {
      // Two claimants in one epoch split the votes; the lower PeerId keeps going.
      if (claim.from > this.self) return
      this.abandon(now, out)
    }
    this.noteBusy(claim.from, now)
    this.tryGrant(claim, now, out)
  }

  /**
   * `peer` no longer holds or seeks any epoch up to `upTo`: its explicit
   * release, or implied by a grant it gave or a follower heartbeat carrying
   * highestEpoch >= upTo (a node claims only highest + 1, so once it is a
   * follower that has seen `upTo` it can never again pursue an epoch <= upTo;
   * this is what makes a lost release harmless).
   */
  private onRelease (peer: PeerIdString, upTo: number, now: number, out: ElectionEffect[]): void {
    const hadVoteOrPromise = this.voter.released(peer, upTo)
    if (this.followed?.peer === peer && this.followed.epoch <= upTo) this.followed.expiry = Math.min(this.followed.expiry, now)
    const seen = this.holdersSeen.get(peer)
    if (seen !== undefined && seen.epoch <= upTo) this.holdersSeen.delete(peer)
    if (this.busy?.peer === peer) this.busy = undefined
    if (this.pending?.from === peer && this.pending.epoch <= upTo) this.pending = undefined
    if (hadVoteOrPromise && this.pending !== undefined) this.tryGrant(this.pending, now, out)
  }

  private onLeave (peer: PeerIdString, out: ElectionEffect[]): void {
    const c = this.members.left(peer)
    if (c !== undefined) out.push({ type: 'member-changed', peer: c.peer, liveness: c.liveness })
    this.holdersSeen.delete(peer)
    if (this.busy?.peer === peer) this.busy = undefined
  }

  private noteBusy (claimant: PeerIdString, now: number): void {
    if (claimant === this.self) return
    const until = now + this.claimTimeoutMs
    if (this.busy === undefined || this.busy.until < until) this.busy = { peer: claimant, until }
    this.electionAt = undefined
  }

  /** Higher epochs are adopted at once, and a holder or claimant of a lower one gives up at once. */
  private observeEpoch (epoch: number, now: number, out: ElectionEffect[]): void {
    if (epoch <= this.highest) return
    this.highest = epoch
    out.push({ type: 'epoch-observed', epoch })
    if (this.lease !== undefined && this.lease.epoch < epoch) {
      if (this.role === 'coordinator') this.stepDown(now, out)
      else if (this.role === 'candidate') this.abandon(now, out)
    }
  }

  // ---- voting ----------------------------------------------------------

  private tryGrant (claim: PendingClaim, now: number, out: ElectionEffect[]): void {
    if (this.role !== 'follower' || claim.from === this.self) return
    let d = this.voter.canGrant(claim.from, claim.epoch, this.highest, now)
    // The holder we follow re-claiming above its own lease adds no second holder: others we know of do not matter.
    if (d === 'grant' && this.boundTo(now) !== claim.from && this.seenOtherHolder(claim.from, now)) d = 'defer'
    if (d === 'grant') {
      this.observeEpoch(claim.epoch, now, out)
      this.voter.grant(claim.from, claim.epoch, now, Math.max(this.config.leaseMs, claim.durationMs))
      this.pending = undefined
      this.publish(out, { type: 'grant', v: 1, from: this.self, to: claim.from, epoch: claim.epoch, seq: claim.seq })
    } else if (d === 'defer') {
      const p = this.pending
      if (p === undefined || claim.epoch > p.epoch || (claim.epoch === p.epoch && claim.from === p.from)) {
        this.pending = { from: claim.from, epoch: claim.epoch, seq: claim.seq, durationMs: claim.durationMs }
      }
    } else if (this.pending?.from === claim.from && this.pending.epoch === claim.epoch) {
      this.pending = undefined
    }
  }

  // ---- claiming --------------------------------------------------------

  private maybeClaim (now: number, out: ElectionEffect[]): void {
    if (this.startedAt === undefined || now < this.claimQuietUntil || this.hasLeaderEvidence(now)) {
      this.electionAt = undefined
      return
    }
    // Lower PeerIds go first; the others normally see that claim before their own slot comes.
    this.electionAt ??= now + this.members.rank(now) * this.config.backoffStepMs + this.random() * this.config.jitterMs
    if (now >= this.electionAt) this.claim(now, out)
  }

  private hasLeaderEvidence (now: number): boolean {
    return (this.followed !== undefined && now < this.followed.expiry) ||
      this.seenOtherHolder(this.self, now) ||
      (this.busy !== undefined && now < this.busy.until) ||
      this.voter.promisedOther(this.self, now)
  }

  private seenOtherHolder (peer: PeerIdString, now: number): boolean {
    for (const [h, { until }] of this.holdersSeen) {
      if (until <= now) this.holdersSeen.delete(h)
      else if (h !== peer) return true
    }
    return false
  }

  private claim (now: number, out: ElectionEffect[]): void {
    const epoch = this.highest + 1
    this.observeEpoch(epoch, now, out)
    this.electionAt = undefined
    this.pending = undefined
    this.voter.grant(this.self, epoch, now, this.config.leaseMs)
    this.lease = new HolderLease(epoch, this.config.leaseMs, this.config.driftBound)
    this.claimSince = now
    this.role = 'candidate'
    this.sendClaim(now, out)
    this.checkClaim(now, out)
  }

  private sendClaim (now: number, out: ElectionEffect[]): void {
    if (this.lease !== undefined) this.publishClaim(this.lease, now, out)
  }

  /** A claim of `lease`'s epoch, numbered as the lease's next send: grants to it count as acks. */
  private publishClaim (lease: HolderLease, now: number, out: ElectionEffect[]): void {
    this.publish(out, { type: 'claim', v: 1, from: this.self, epoch: lease.epoch, seq: lease.send(now), durationMs: this.config.leaseMs })
  }

  /** A lease announcement or renewal; followers' promises start from it. */
  private announce (lease: HolderLease, now: number, out: ElectionEffect[]): void {
    this.publish(out, { type: 'lease', v: 1, from: this.self, epoch: lease.epoch, seq: lease.send(now), durationMs: this.config.leaseMs })
  }

  private checkClaim (now: number, out: ElectionEffect[]): void {
    const lease = this.lease
    if (this.role !== 'candidate' || lease === undefined) return
    lease.recount(this.self, this.members.voters(now))
    if (!lease.isValid(now)) return
    this.role = 'coordinator'
    this.leaseEpoch = lease.epoch
    this.nextBumpAt = Number.NEGATIVE_INFINITY
    this.bumpSpacingMs = 0
    this.heardHigher = 0
    this.higherHeardAt = Number.NEGATIVE_INFINITY
    this.followed = undefined
    this.busy = undefined
    this.pending = undefined
    // Announce at once: followers' promises start from this message.
    this.announce(lease, now, out)
    this.heartbeatWanted = true
  }

  // ---- stickiness and bumps ---------------------------------------------

  /** The highest epoch this node holds or claims: what a release must cover. */
  private get claimedEpoch (): number {
    return Math.max(this.lease?.epoch ?? 0, this.bump?.epoch ?? 0)
  }

  /** The holder this node is bound to now: itself while it holds a valid lease, or the holder whose lease it follows. */
  private boundTo (now: number): PeerIdString | undefined {
    if (this.role === 'coordinator') return this.isCoordinator(now) ? this.self : undefined
    if (this.role === 'follower' && this.followed !== undefined && now < this.followed.expiry) return this.followed.peer
    return undefined
  }

  /**
   * A higher epoch from a peer we did not take it from (we are bound). Only a holder keeps it: the members that
   * announce it will not follow a lower epoch (after a heal, a side that elected more often), so it re-claims its
   * own lease above it rather than leave them without a coordinator. Followers learn it once they are unbound.
   */
  private heardOf (epoch: number, now: number): void {
    if (this.role !== 'coordinator' || this.lease === undefined || epoch <= this.lease.epoch) return
    // A spell of bumps ends when no higher epoch has been heard for a while: the next heal is news again.
    if (now - this.higherHeardAt >= BUMP_QUIET_LEASES * this.config.leaseMs) {
      this.bumpSpacingMs = 0
      this.nextBumpAt = Number.NEGATIVE_INFINITY
    }
    this.higherHeardAt = now
    if (this.heardHigher <= this.lease.epoch) this.higherSince = now
    if (epoch > this.heardHigher) this.heardHigher = epoch
  }

  /** Starts, re-sends or gives up a bump: the holder's claim of a higher epoch while its lease runs on. */
  private tickBump (now: number, out: ElectionEffect[]): void {
    const lease = this.lease
    if (lease === undefined) return
    if (this.bump !== undefined) {
      // Given up quietly: a release would also free the promises behind the lease we still hold.
      if (now - this.bumpSince >= this.claimTimeoutMs) this.bump = undefined
      else if (now - this.bump.lastSentAt >= this.claimResendMs) this.sendBumpClaim(now, out)
      return
    }
    // Only while a majority of the current view renews us: a holder that has lost it (the smaller side of a heal)
    // would only lift its last followers above the epoch of the holder they should now follow. And not at once:
    // within a heartbeat period the holder has heard from every member of the joined mesh, so its view is whole.
    if (this.heardHigher <= lease.epoch || now < this.nextBumpAt || now - this.higherSince < this.config.heartbeatMs) return
    if (!lease.backedNow(this.self, this.members.voters(now))) return
    const epoch = Math.max(this.highest, this.heardHigher) + 1
    this.heardHigher = 0
    this.bumpSpacingMs = this.bumpSpacingMs === 0
      ? FIRST_BUMP_SPACING_LEASES * this.config.leaseMs
      : Math.min(2 * this.bumpSpacingMs, MAX_BUMP_SPACING_LEASES * this.config.leaseMs)
    this.nextBumpAt = now + this.bumpSpacingMs
    this.voter.grant(this.self, epoch, now, this.config.leaseMs)
    this.bump = new HolderLease(epoch, this.config.leaseMs, this.config.driftBound)
    this.bumpSince = now
    this.sendBumpClaim(now, out)
    this.checkBump(now, out)
  }

  private sendBumpClaim (now: number, out: ElectionEffect[]): void {
    if (this.bump !== undefined) this.publishClaim(this.bump, now, out)
  }

  /** A bump granted by a majority becomes the lease, announced at once like a fresh one. */
  private checkBump (now: number, out: ElectionEffect[]): void {
    const bump = this.bump
    if (this.role !== 'coordinator' || bump === undefined) return
    bump.recount(this.self, this.members.voters(now))
    if (!bump.isValid(now)) return
    this.bump = undefined
    this.lease = bump
    this.leaseEpoch = bump.epoch
    this.observeEpoch(bump.epoch, now, out)
    this.announce(bump, now, out)
    this.heartbeatWanted = true
  }

  private abandon (now: number, out: ElectionEffect[]): void {
    if (this.role !== 'candidate' || this.lease === undefined) return
    this.publish(out, { type: 'release', v: 1, from: this.self, epoch: this.lease.epoch, leaving: false })
    this.role = 'follower'
    this.voter.released(this.self, this.lease.epoch)
    this.lease = undefined
    this.electionAt = undefined
  }

  private stepDown (now: number, out: ElectionEffect[]): void {
    if (this.role !== 'coordinator' || this.lease === undefined) return
    // Followers may grant someone else at once instead of waiting out their promise to us (or to our bump).
    const epoch = this.claimedEpoch
    this.publish(out, { type: 'release', v: 1, from: this.self, epoch, leaving: false })
    this.role = 'follower'
    this.voter.released(this.self, epoch)
    this.lease = undefined
    this.bump = undefined
    this.heardHigher = 0
    this.electionAt = undefined
    this.heartbeatWanted = true
  }

  // ---- output ----------------------------------------------------------

  private sendHeartbeat (now: number, out: ElectionEffect[]): void {
    const f = this.followed
    const ack = this.role === 'follower' && f !== undefined ? { to: f.peer, epoch: f.epoch, seq: f.seq } : undefined
    const m: HeartbeatMessage = {
      type: 'heartbeat',
      v: 1,
      from: this.self,
      info: copyInfo(this.info),
      role: this.role,
      leader: this.leaderAt(now),
      epoch: this.leaseEpoch,
      highestEpoch: this.highest
    }
    if (ack !== undefined) m.ack = ack
    const p = this.voter.promise
    if (p !== undefined && p.to !== this.self && now < p.until) m.promise = { to: p.to, epoch: p.epoch, leftMs: Math.ceil(p.until - now) }
    this.lastHeartbeatAt = now
    this.heartbeatWanted = false
    this.nudgePending = false
    this.publish(out, m)
  }

  private leaderAt (now: number): PeerIdString | undefined {
    if (this.stopped) return undefined
    if (this.role === 'coordinator') return this.isCoordinator(now) ? this.self : undefined
    if (this.followed !== undefined && now < this.followed.expiry) return this.followed.peer
    return undefined
  }

  private reportRole (now: number, out: ElectionEffect[]): void {
    const role: Role = this.stopped ? 'follower' : this.role
    const leader = this.leaderAt(now)
    const epoch = this.leaseEpoch
    const r = this.reported
    if (r.role === role && r.epoch === epoch && r.leader === leader) return
    this.reported = { role, epoch, leader }
    out.push({ type: 'role-changed', role, epoch, leader })
  }

  private publish (out: ElectionEffect[], message: ControlMessage): void {
    out.push({ type: 'publish', message })
  }

  /** Common entry: auto-start, ignore after stop, keep local time monotonic. */
  private begin (now: number, out: ElectionEffect[]): boolean {
    if (this.stopped) return false
    if (this.startedAt === undefined) out.push(...this.start(now))
    const gap = now - this.lastNow
    this.clock(now)
    if (gap > this.config.heartbeatMs) this.stalled(gap)
    return true
  }

  /**
   * We were not running (GC pause, suspended VM, blocked event loop). The
   * silence was ours, not our peers': do not count it against them, or a node
   * that wakes up before reading its socket would find everyone dead and elect
   * itself alone. Leases and promises are not touched: they are about real
   * time, which did pass. And hold back claims until we have had a chance to
   * hear the current holder.
   */
  private stalled (gap: number): void {
    this.members.credit(gap)
    this.claimQuietUntil = Math.max(this.claimQuietUntil, this.lastNow + this.config.leaseMs)
  }

  private clock (now: number): number {
    if (!Number.isFinite(now)) throw new RangeError(`ElectionNode: now must be a finite number, got ${now}`)
    if (now > this.lastNow) this.lastNow = now
    return this.lastNow
  }
}

function copyInfo (info: MemberInfo): MemberInfo {
  return { addrs: [...info.addrs], slots: info.slots, running: info.running, worker: info.worker, version: info.version }
}
