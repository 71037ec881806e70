import { bumpAllowed, forgetHigherEpoch, newBumpRation, noteHigherEpoch, spendBump } from './bump.js'
import type { ElectionEffect, ElectionInput } from './election-step.js'
import { HolderLease } from './lease.js'
import { Membership } from './membership.js'
import type { ControlMessage, HeartbeatMessage } from './messages.js'
import { Quarantine, type Contradiction, type QuarantineStart } from './quarantine.js'
import { claimedEpoch, followedLease, ownLease, publicRole, type Candidate, type Coordinator, type FollowedLease, type Follower, type PendingClaim, type RoleState } from './role-state.js'
import { electionTiming, type ElectionTiming } from './timing.js'
import { resolveElectionConfig, type ElectionConfig, type ElectionView, type MemberInfo, type PeerIdString, type Role } from './types.js'
import { Voter } from './vote.js'

/** The kinds of contradiction, each with a quarantine streak of its own (ElectionNode.judge). */
const AGAINST_LEASE = 'against-lease'
const CLAIM = 'claim'
const UNLEASED_HOLDER = 'unleased-holder'

export interface ElectionNodeInit {
  self: PeerIdString
  config?: Partial<ElectionConfig>
  random: () => number
  info: MemberInfo
  /** The highest epoch persisted by an earlier run (from its epoch-observed effects). */
  initialEpoch?: number
}

/**
 * Membership, failure detection and quorum-backed lease election as one pure
 * state machine. Every input goes through {@link ElectionNode.step} and comes
 * back as effects; the role is a {@link RoleState} that only the `becomeX`
 * methods replace. Nothing here reads a clock or draws randomness except
 * through `now` and `init.random`, so a seeded simulator replays it exactly.
 *
 * `now` must come from a monotonic clock of this process (performance.now()
 * or similar, never wall time that NTP can step): all lease arithmetic is in
 * local durations and only the rate of the clock matters.
 */
export class ElectionNode {
  readonly self: PeerIdString
  readonly config: ElectionConfig
  private readonly timing: ElectionTiming
  private readonly random: () => number
  private info: MemberInfo
  private readonly members: Membership
  private readonly quarantine: Quarantine
  /**
   * The last ack each peer's heartbeat carried, and when we heard it: how a follower sees whether a majority still
   * renews the holder it follows, before it counts anyone as contradicting that holder.
   */
  private readonly acksHeard = new Map<PeerIdString, { to: PeerIdString, at: number }>()
  /**
   * Since when each peer has been saying it is coordinator without a lease reaching us (a holder renews every third
   * of a lease), while it goes on saying so.
   */
  private readonly unleasedSince = new Map<PeerIdString, number>()
  private readonly initialEpoch: number
  private voter: Voter

  private state: RoleState = { role: 'follower', followed: undefined, electionAt: undefined, pending: undefined }
  private highest: number
  private startedAt: number | undefined
  private lastNow = Number.NEGATIVE_INFINITY
  /** Epoch of the lease last held or followed, for views and heartbeats. */
  private leaseEpoch = 0
  /**
   * Holders heard from (lease or coordinator heartbeat, any epoch), each until
   * one lease after we last heard it. Not a promise, but while any of them may
   * still be acting we neither claim nor grant: after a heal our promises may
   * belong to another side's holder, and this is what keeps a fresh quorum of
   * the merged view from forming under a holder whose quorum was the old view.
   */
  private readonly holdersSeen = new Map<PeerIdString, { until: number, epoch: number }>()
  /** Someone else is collecting grants: give them time before competing. Kept across roles: a claim may end first. */
  private busy: { peer: PeerIdString, until: number } | undefined
  private claimQuietUntil = Number.POSITIVE_INFINITY

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
    this.timing = electionTiming(this.config)
    this.random = init.random
    this.info = copyInfo(init.info)
    this.members = new Membership(this.self, this.config)
    this.quarantine = new Quarantine({
      afterMs: this.config.quarantineAfterMs,
      gapMs: this.config.leaseMs,
      baseMs: this.config.quarantineMs,
      maxMs: this.config.quarantineMaxMs
    })
    this.initialEpoch = initialEpoch
    this.highest = initialEpoch
    this.voter = new Voter(initialEpoch, Number.POSITIVE_INFINITY)
  }

  get highestEpoch (): number {
    return this.highest
  }

  /** The one entry for inputs: applies `input` and returns the effects, to be applied in order. */
  step (input: ElectionInput): ElectionEffect[] {
    const out: ElectionEffect[] = []
    switch (input.type) {
      case 'start':
        this.onStart(input.now, out)
        break
      case 'tick':
        if (this.begin(input.now, out)) this.onTick(this.lastNow, out)
        break
      case 'receive':
        if (this.begin(input.now, out)) this.onMessage(input.message, this.lastNow, out)
        break
      case 'nudge':
        if (this.begin(input.now, out)) this.onNudge(this.lastNow, out)
        break
      case 'set-info':
        this.info = copyInfo(input.info)
        break
      case 'stop':
        this.onStop(input.now, out)
        break
    }
    return out
  }

  // Shorthands for one input each, as etcd's RawNode.Tick or Campaign are for its Step: every one goes through step().

  start (now: number): ElectionEffect[] {
    return this.step({ type: 'start', now })
  }

  tick (now: number): ElectionEffect[] {
    return this.step({ type: 'tick', now })
  }

  receive (message: ControlMessage, now: number): ElectionEffect[] {
    return this.step({ type: 'receive', message, now })
  }

  /**
   * Connectivity changed (a peer connected or subscribed to the control
   * topic): send a heartbeat now rather than at the next period, so that two
   * sides of a healed partition learn of each other's leases within one
   * message delay.
   */
  nudge (now: number): ElectionEffect[] {
    return this.step({ type: 'nudge', now })
  }

  setInfo (info: MemberInfo): void {
    this.step({ type: 'set-info', info })
  }

  stop (now: number): ElectionEffect[] {
    return this.step({ type: 'stop', now })
  }

  isCoordinator (now: number): boolean {
    return this.state.role === 'coordinator' && this.state.lease.isValid(now)
  }

  view (now: number): ElectionView {
    const coordinator = this.isCoordinator(now)
    const state = this.state
    const followed = followedLease(state)
    let leaseAgeMs: number | undefined
    let leaseValid = false
    if (state.role === 'coordinator') {
      const covered = state.lease.coveredSentAt
      leaseAgeMs = covered === undefined ? undefined : Math.max(0, now - covered)
      leaseValid = coordinator
    } else if (followed !== undefined) {
      leaseAgeMs = Math.max(0, now - followed.receivedAt)
      leaseValid = now < followed.expiry
    }
    return {
      self: this.self,
      role: publicRole(state),
      leader: this.leaderAt(now),
      epoch: this.leaseEpoch,
      highestEpoch: this.highest,
      leaseAgeMs,
      leaseValid,
      members: this.members.views(now),
      quarantined: this.quarantine.list(now)
    }
  }

  // ---- role changes: the only writers of `state` ------------------------

  private become (next: RoleState): void {
    this.state = next
  }

  private becomeFollower (followed: FollowedLease | undefined): void {
    this.become({ role: 'follower', followed, electionAt: undefined, pending: undefined })
  }

  /** Claims `highest + 1`, voting for itself. */
  private becomeCandidate (from: Follower, now: number, out: ElectionEffect[]): void {
    const epoch = this.highest + 1
    this.observeEpoch(epoch, now, out)
    this.voter.grant(this.self, epoch, now, this.config.leaseMs)
    const claim = new HolderLease(epoch, this.config.leaseMs, this.config.driftBound)
    this.become({ role: 'candidate', claim, since: now, followed: from.followed })
    this.publishClaim(claim, now, out)
    this.checkClaim(now, out)
  }

  /** A claim granted by a majority: its lease, announced at once, since followers' promises start from that message. */
  private becomeCoordinator (from: Candidate, now: number, out: ElectionEffect[]): void {
    this.become({ role: 'coordinator', lease: from.claim, bump: undefined, ration: newBumpRation() })
    this.leaseEpoch = from.claim.epoch
    this.busy = undefined
    this.announce(from.claim, now, out)
    this.heartbeatWanted = true
  }

  /** A candidate without a majority in time, or outvoted: says so, so that its voters are free again. */
  private abandon (from: Candidate, out: ElectionEffect[]): void {
    this.publish(out, { type: 'release', v: 1, from: this.self, epoch: from.claim.epoch, leaving: false })
    this.voter.released(this.self, from.claim.epoch)
    this.becomeFollower(from.followed)
  }

  private stepDown (from: Coordinator, out: ElectionEffect[]): void {
    // Followers may grant someone else at once instead of waiting out their promise to us (or to our bump).
    const epoch = claimedEpoch(from)
    this.publish(out, { type: 'release', v: 1, from: this.self, epoch, leaving: false })
    this.voter.released(this.self, epoch)
    this.becomeFollower(undefined)
    this.heartbeatWanted = true
  }

  private becomeStopped (): void {
    this.become({ role: 'stopped' })
  }

  // ---- inputs ------------------------------------------------------------

  private onStart (now: number, out: ElectionEffect[]): void {
    if (this.startedAt !== undefined || this.state.role === 'stopped') return
    now = this.clock(now)
    this.startedAt = now
    this.claimQuietUntil = now + this.timing.joinQuietMs
    // We may have promised things before a crash that we no longer remember.
    this.voter = new Voter(this.initialEpoch, now + this.config.leaseMs)
    this.sendHeartbeat(now, out)
  }

  private onTick (now: number, out: ElectionEffect[]): void {
    for (const c of this.members.refresh(now)) out.push({ type: 'member-changed', peer: c.peer, liveness: c.liveness })
    this.quarantine.prune(now)
    for (const [peer, a] of this.acksHeard) if (now - a.at >= this.config.leaseMs) this.acksHeard.delete(peer)
    for (const peer of this.unleasedSince.keys()) if (!this.members.isAlive(peer, now)) this.unleasedSince.delete(peer)

    if (this.state.role === 'coordinator') this.tickHolder(this.state, now, out)
    if (this.state.role === 'candidate') this.tickClaim(this.state, now, out)
    if (this.state.role === 'follower') {
      const pending = this.state.pending
      if (pending !== undefined) this.tryGrant(pending, now, out)
      this.maybeClaim(this.state, now, out)
    }

    const t = this.timing
    if (this.nudgePending || now - this.lastHeartbeatAt >= this.heartbeatDueMs(now) || (this.heartbeatWanted && now - this.lastHeartbeatAt >= t.minHeartbeatGapMs)) {
      this.sendHeartbeat(now, out)
    }
    this.reportRole(now, out)
  }

  private tickHolder (holder: Coordinator, now: number, out: ElectionEffect[]): void {
    holder.lease.recount(this.self, this.members.voters(now))
    if (holder.bump !== undefined) this.checkBump(holder, now, out)
    // checkBump may have made the bump the lease.
    const lease = holder.lease
    if (!lease.isValid(now)) {
      this.stepDown(holder, out)
      return
    }
    // Renewals whose acks went missing are retried at twice the pace.
    if (now - lease.lastSentAt >= (lease.newestCovered ? this.timing.renewEveryMs : this.timing.renewEveryMs / 2)) this.announce(lease, now, out)
    this.tickBump(holder, now, out)
  }

  private tickClaim (candidate: Candidate, now: number, out: ElectionEffect[]): void {
    this.checkClaim(now, out)
    if (this.state !== candidate) return
    if (now - candidate.since >= this.timing.claimTimeoutMs) this.abandon(candidate, out)
    else if (now - candidate.claim.lastSentAt >= this.timing.claimResendMs) this.publishClaim(candidate.claim, now, out)
  }

  private onMessage (message: ControlMessage, now: number, out: ElectionEffect[]): void {
    const from = message.from
    if (from === this.self) return
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
    if (message.type === 'lease') this.unleasedSince.delete(from)
    else if (message.type === 'heartbeat' && message.role === 'coordinator' && message.leader === from && !this.unleasedSince.has(from)) this.unleasedSince.set(from, now)
    if (from !== bound) this.judge(message, () => bound !== undefined && this.renewedByMajority(bound, now), now, out)
    if (this.quarantine.has(from, now)) {
      // As if its election messages were lost, which the election tolerates anyway: it takes nothing from them, not
      // even an epoch, and it stays a voter (nodes may disagree about who is quarantined; a majority counted over
      // different denominators could elect two). It is heard and reported as before, so it stays alive in the
      // membership and the job layer may keep giving it tasks.
      if (message.type === 'heartbeat') this.members.report(from, message.info, message.role)
      else if (goodbye) this.onLeave(from, out)
    } else {
      this.dispatch(message, bound, foreign, now, out)
    }

    if (this.heartbeatWanted && now - this.lastHeartbeatAt >= this.timing.minHeartbeatGapMs) this.sendHeartbeat(now, out)
    this.reportRole(now, out)
  }

  private dispatch (message: ControlMessage, bound: PeerIdString | undefined, foreign: boolean, now: number, out: ElectionEffect[]): void {
    const from = message.from
    switch (message.type) {
      case 'heartbeat':
        this.onHeartbeat(message, foreign, now, out)
        break
      case 'lease':
        // A lease longer than we would ever hold would bind our promise past any bound we can reason about (one
        // message could keep the mesh from electing for an hour): not followed, not even its epoch taken.
        if (message.durationMs > this.timing.maxDurationMs) break
        if (foreign) {
          this.heardOf(message.epoch, now)
          this.noteHolder(from, message.epoch, now + this.config.leaseMs)
          break
        }
        this.observeEpoch(message.epoch, now, out)
        this.onLease(from, message.epoch, message.seq, message.durationMs, now, out)
        break
      case 'claim':
        if (message.durationMs > this.timing.maxDurationMs) break
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
        if (message.to === this.self) this.onGrant(from, message.epoch, message.seq, now, out)
        else if (message.epoch >= this.highest) this.noteBusy(message.to, now)
        break
      case 'release':
        this.onRelease(from, message.epoch, now, out)
        if (message.leaving) this.onLeave(from, out)
        break
      case 'leave':
        this.onLeave(from, out)
        break
    }
  }

  private onHeartbeat (message: HeartbeatMessage, foreign: boolean, now: number, out: ElectionEffect[]): void {
    const from = message.from
    this.members.report(from, message.info, message.role)
    if (message.ack !== undefined) this.acksHeard.set(from, { to: message.ack.to, at: now })
    if (foreign) {
      this.heardOf(message.highestEpoch, now)
      if (message.role === 'coordinator' && message.leader === from) this.noteHolder(from, message.epoch, now + this.config.leaseMs)
    } else {
      this.observeEpoch(message.highestEpoch, now, out)
      if (message.role === 'coordinator' && message.leader === from) this.onHolderAlive(from, message.epoch, now, out)
      // A candidate's highestEpoch is the epoch it claims: same split-vote rule as for its claim.
      const state = this.state
      if (message.role === 'candidate' && state.role === 'candidate' && state.claim.epoch === message.highestEpoch && from < this.self) this.abandon(state, out)
    }
    if (message.role === 'follower') this.onRelease(from, message.highestEpoch, now, out)
    if (message.promise !== undefined && message.promise.to !== this.self) {
      // Someone else's quorum may rest on that promise: respect it as if it were ours.
      // No honest promise outlasts the longest lease we grant, so none is respected for longer.
      const leftMs = Math.min(message.promise.leftMs, this.timing.maxDurationMs)
      this.noteHolder(message.promise.to, message.promise.epoch, now + leftMs / (1 - this.config.driftBound))
    }
    const lease = ownLease(this.state)
    if (message.ack !== undefined && message.ack.to === this.self && lease?.epoch === message.ack.epoch) {
      lease.ack(from, message.ack.seq)
      this.checkClaim(now, out)
    }
  }

  /** A grant to us: an ack of our claim, or of our bump. */
  private onGrant (from: PeerIdString, epoch: number, seq: number, now: number, out: ElectionEffect[]): void {
    const state = this.state
    const lease = ownLease(state)
    if (lease?.epoch === epoch) {
      lease.ack(from, seq)
      this.checkClaim(now, out)
    } else if (state.role === 'coordinator' && state.bump?.claim.epoch === epoch) {
      state.bump.claim.ack(from, seq)
      this.checkBump(state, now, out)
    }
  }

  private onNudge (now: number, out: ElectionEffect[]): void {
    // A heartbeat sent before the change may not have reached the new peers, so
    // the normal spacing does not apply; bursts of nudges still coalesce.
    if (now - this.lastNudgeAt >= this.timing.minHeartbeatGapMs) {
      this.lastNudgeAt = now
      this.sendHeartbeat(now, out)
    } else {
      // Coalesced, but never later than the next tick.
      this.nudgePending = true
    }
  }

  private onStop (now: number, out: ElectionEffect[]): void {
    const state = this.state
    if (state.role === 'stopped') return
    if (this.startedAt === undefined) {
      this.becomeStopped()
      return
    }
    now = this.clock(now)
    if (state.role === 'candidate' || state.role === 'coordinator') {
      this.publish(out, { type: 'release', v: 1, from: this.self, epoch: claimedEpoch(state), leaving: true })
    } else {
      this.publish(out, { type: 'leave', v: 1, from: this.self })
    }
    this.becomeStopped()
    this.reportRole(now, out)
  }

  // ---- what others say ---------------------------------------------------

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
    const state = this.state
    if (state.role === 'coordinator' && state.lease.epoch === epoch) {
      // Two holders of one epoch can only meet after a partition heals: lower PeerId wins.
      if (holder < this.self) this.stepDown(state, out)
      else this.heartbeatWanted = true
    } else if (state.role === 'candidate' && state.claim.epoch <= epoch) {
      this.abandon(state, out)
    }
    if (this.state.role === 'follower') this.state.electionAt = undefined
  }

  private onLease (holder: PeerIdString, epoch: number, seq: number, durationMs: number, now: number, out: ElectionEffect[]): void {
    if (epoch < this.highest) return
    this.onHolderAlive(holder, epoch, now, out)
    const state = this.state
    if (state.role !== 'follower') return
    if (!this.voter.canAck(holder, epoch, this.highest, now)) return
    const promisedMs = Math.max(this.config.leaseMs, durationMs)
    this.voter.ack(holder, epoch, now, promisedMs)
    const prev = state.followed
    const newer = prev === undefined || prev.peer !== holder || prev.epoch !== epoch || seq > prev.seq
    state.followed = { peer: holder, epoch, seq: newer ? seq : prev.seq, receivedAt: now, expiry: now + promisedMs }
    this.leaseEpoch = epoch
    if (state.pending !== undefined && state.pending.epoch <= epoch) state.pending = undefined
    // The ack rides on our heartbeat; send it now unless we just sent one.
    if (now - this.lastHeartbeatAt >= this.config.heartbeatMs / 2) this.sendHeartbeat(now, out)
    else this.heartbeatWanted = true
  }

  private onClaim (claim: PendingClaim, now: number, out: ElectionEffect[]): void {
    if (claim.epoch < this.highest) return
    const state = this.state
    if (state.role === 'coordinator') return
    if (state.role === 'candidate') {
      // Two claimants in one epoch split the votes; the lower PeerId keeps going.
      if (claim.from > this.self) return
      this.abandon(state, out)
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
    const followed = followedLease(this.state)
    if (followed?.peer === peer && followed.epoch <= upTo) followed.expiry = Math.min(followed.expiry, now)
    const seen = this.holdersSeen.get(peer)
    if (seen !== undefined && seen.epoch <= upTo) this.holdersSeen.delete(peer)
    if (this.busy?.peer === peer) this.busy = undefined
    const state = this.state
    if (state.role !== 'follower') return
    if (state.pending?.from === peer && state.pending.epoch <= upTo) state.pending = undefined
    if (hadVoteOrPromise && state.pending !== undefined) this.tryGrant(state.pending, now, out)
  }

  private onLeave (peer: PeerIdString, out: ElectionEffect[]): void {
    const c = this.members.left(peer)
    if (c !== undefined) out.push({ type: 'member-changed', peer: c.peer, liveness: c.liveness })
    this.holdersSeen.delete(peer)
    if (this.busy?.peer === peer) this.busy = undefined
  }

  private noteBusy (claimant: PeerIdString, now: number): void {
    if (claimant === this.self) return
    const until = now + this.timing.claimTimeoutMs
    if (this.busy === undefined || this.busy.until < until) this.busy = { peer: claimant, until }
    if (this.state.role === 'follower') this.state.electionAt = undefined
  }

  /** Higher epochs are adopted at once, and a holder or claimant of a lower one gives up at once. */
  private observeEpoch (epoch: number, now: number, out: ElectionEffect[]): void {
    if (epoch <= this.highest) return
    this.highest = epoch
    out.push({ type: 'epoch-observed', epoch })
    const state = this.state
    if (state.role === 'coordinator' && state.lease.epoch < epoch) this.stepDown(state, out)
    else if (state.role === 'candidate' && state.claim.epoch < epoch) this.abandon(state, out)
  }

  // ---- voting --------------------------------------------------------------

  private tryGrant (claim: PendingClaim, now: number, out: ElectionEffect[]): void {
    const state = this.state
    if (state.role !== 'follower' || claim.from === this.self) return
    let d = this.voter.canGrant(claim.from, claim.epoch, this.highest, now)
    // The holder we follow re-claiming above its own lease adds no second holder: others we know of do not matter.
    if (d === 'grant' && this.boundTo(now) !== claim.from && this.seenOtherHolder(claim.from, now)) d = 'defer'
    if (d === 'grant') {
      this.observeEpoch(claim.epoch, now, out)
      this.voter.grant(claim.from, claim.epoch, now, Math.max(this.config.leaseMs, claim.durationMs))
      state.pending = undefined
      this.publish(out, { type: 'grant', v: 1, from: this.self, to: claim.from, epoch: claim.epoch, seq: claim.seq })
    } else if (d === 'defer') {
      const p = state.pending
      if (p === undefined || claim.epoch > p.epoch || (claim.epoch === p.epoch && claim.from === p.from)) {
        state.pending = { from: claim.from, epoch: claim.epoch, seq: claim.seq, durationMs: claim.durationMs }
      }
    } else if (state.pending?.from === claim.from && state.pending.epoch === claim.epoch) {
      state.pending = undefined
    }
  }

  // ---- claiming ------------------------------------------------------------

  private maybeClaim (follower: Follower, now: number, out: ElectionEffect[]): void {
    if (this.startedAt === undefined || now < this.claimQuietUntil || this.hasLeaderEvidence(follower, now)) {
      follower.electionAt = undefined
      return
    }
    // Lower PeerIds go first; the others normally see that claim before their own slot comes.
    follower.electionAt ??= now + this.members.rank(now) * this.config.backoffStepMs + this.random() * this.config.jitterMs
    if (now >= follower.electionAt) this.becomeCandidate(follower, now, out)
  }

  private hasLeaderEvidence (follower: Follower, now: number): boolean {
    return (follower.followed !== undefined && now < follower.followed.expiry) ||
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

  /** A claim of `lease`'s epoch, numbered as the lease's next send: grants to it count as acks. */
  private publishClaim (lease: HolderLease, now: number, out: ElectionEffect[]): void {
    this.publish(out, { type: 'claim', v: 1, from: this.self, epoch: lease.epoch, seq: lease.send(now), durationMs: this.config.leaseMs })
  }

  /** A lease announcement or renewal; followers' promises start from it. */
  private announce (lease: HolderLease, now: number, out: ElectionEffect[]): void {
    this.publish(out, { type: 'lease', v: 1, from: this.self, epoch: lease.epoch, seq: lease.send(now), durationMs: this.config.leaseMs })
  }

  /** A candidate whose grants now make a majority becomes coordinator. */
  private checkClaim (now: number, out: ElectionEffect[]): void {
    const state = this.state
    if (state.role !== 'candidate') return
    state.claim.recount(this.self, this.members.voters(now))
    if (state.claim.isValid(now)) this.becomeCoordinator(state, now, out)
  }

  // ---- stickiness and bumps -------------------------------------------------

  /** The holder this node is bound to now: itself while it holds a valid lease, or the holder whose lease it follows. */
  private boundTo (now: number): PeerIdString | undefined {
    const state = this.state
    if (state.role === 'coordinator') return state.lease.isValid(now) ? this.self : undefined
    if (state.role === 'follower' && state.followed !== undefined && now < state.followed.expiry) return state.followed.peer
    return undefined
  }

  /**
   * Whether, as far as this node can see, a majority of its current view still renews the lease of `holder`, to
   * which it is bound: its own (acked by a majority of the current voters) or the one it follows (renewed within
   * half a lease, and acks to that holder heard in the voters' heartbeats within a lease). Only then do others'
   * claims and leases contradict it: the followers of the smaller side of a healed partition stay bound to their
   * holder until its lease runs out, and must not hold the other side's holder, the one that stays, against it.
   */
  private renewedByMajority (holder: PeerIdString, now: number): boolean {
    const voters = this.members.voters(now)
    const need = Math.floor(voters.length / 2) + 1
    const state = this.state
    if (holder === this.self) return state.role === 'coordinator' && state.lease.backedNow(this.self, voters)
    // Renewals come every third of a lease: without one for half a lease, our holder may be cut off from us, and
    // the acks we heard for it are from before.
    const followed = followedLease(state)
    if (followed === undefined || now - followed.receivedAt >= this.config.leaseMs / 2) return false
    let n = 0
    for (const v of voters) {
      const a = this.acksHeard.get(v)
      if (v === this.self || v === holder || (a !== undefined && a.to === holder && now - a.at < this.config.leaseMs)) n++
    }
    return n >= need
  }

  /**
   * Counts `message` for or against its sender's quarantine (docs/election.md, "Quarantine"); the sender is not the
   * holder we are bound to. `isAnchored`: whether we are bound to a lease that a majority renews, as far as we can
   * see now.
   *
   * Anchored, a claim, a lease or a coordinator heartbeat contradicts that lease. An honest member does that for
   * about a lease at most (a claimant whose view of the lease lapsed early, the holder of the smaller side of a
   * heal), so only a streak twice as long quarantines.
   *
   * Not anchored there is nothing to contradict, yet a member that claims and says it is coordinator without end
   * then holds every vote and keeps everyone from claiming, for ever: once the holder crashed, for a node that
   * restarted, in a mesh that has just started. So a claim of one epoch that goes on longer than an honest claimant
   * keeps one up (a lease), and a coordinator heartbeat from a peer that has said so for a lease without a lease
   * reaching us, count too. Each kind starts a streak of its own, and every contradiction continues all of the peer's streaks (one that
   * keeps at it does not stop when our lease does, or starts). A lease, release, grant or follower heartbeat from
   * the same peer while we are not anchored, which it would send if it were honest, ends its streaks.
   */
  private judge (message: ControlMessage, isAnchored: () => boolean, now: number, out: ElectionEffect[]): void {
    const from = message.from
    if (this.quarantine.has(from, now)) return
    const saysCoordinator = message.type === 'heartbeat' && message.role === 'coordinator' && message.leader === from
    // Most messages are followers' heartbeats, which matter only to a streak: spare counting the majority for them.
    if (!(message.type === 'claim' || message.type === 'lease' || saysCoordinator) && !this.quarantine.suspects(from)) return
    const anchored = isAnchored()
    if (anchored) {
      if (message.type === 'claim' || message.type === 'lease' || saysCoordinator) this.contradicted(from, now, { kind: AGAINST_LEASE }, out)
    } else if (message.type === 'claim') {
      // One streak per epoch: an honest claimant gives an epoch up after a lease, and may claim the next one at once
      // (its release to us lost). On probation, a claim quarantines again at once: no vote while a streak builds up.
      this.contradicted(from, now, { kind: CLAIM, key: message.epoch }, out)
    } else if (saysCoordinator && now - (this.unleasedSince.get(from) ?? now) >= this.config.leaseMs) {
      // No probation: a holder wrongly quarantined (its leases to us all lost) says it is coordinator again as soon
      // as it is heard, and only its next lease can show it honest.
      this.contradicted(from, now, { kind: UNLEASED_HOLDER, probation: false }, out)
    } else if (message.type === 'lease' || message.type === 'release' || message.type === 'grant' || (message.type === 'heartbeat' && message.role === 'follower')) {
      this.quarantine.clear(from)
    }
  }

  private contradicted (from: PeerIdString, now: number, what: Contradiction, out: ElectionEffect[]): void {
    const q = this.quarantine.contradiction(from, now, what)
    if (q !== undefined) this.quarantined(q, out)
  }

  /**
   * `peer` is quarantined from now: what it said before counts for nothing either, where that is only about
   * progress (a claim we would wait for, a higher epoch a holder would bump above). Promises made to it stand, and
   * a holder it claimed to be is still respected until that note runs out: if it was honest after all, that is what
   * keeps its lease from overlapping another.
   */
  private quarantined ({ peer, forMs, repeat }: QuarantineStart, out: ElectionEffect[]): void {
    this.acksHeard.delete(peer)
    if (this.busy?.peer === peer) this.busy = undefined
    const state = this.state
    if (state.role === 'follower' && state.pending?.from === peer) state.pending = undefined
    // Honest members above our epoch repeat it in every heartbeat; the quarantined one's word alone must not bump.
    if (state.role === 'coordinator') forgetHigherEpoch(state.ration)
    out.push({ type: 'peer-quarantined', peer, forMs, repeat })
  }

  /**
   * A higher epoch from a peer we did not take it from (we are bound). Only a holder keeps it: the members that
   * announce it will not follow a lower epoch (after a heal, a side that elected more often), so it re-claims its
   * own lease above it rather than leave them without a coordinator. Followers learn it once they are unbound.
   */
  private heardOf (epoch: number, now: number): void {
    const state = this.state
    if (state.role !== 'coordinator' || epoch <= state.lease.epoch) return
    noteHigherEpoch(state.ration, state.lease.epoch, epoch, now, this.config.leaseMs)
  }

  /** Starts, re-sends or gives up a bump: the holder's claim of a higher epoch while its lease runs on. */
  private tickBump (holder: Coordinator, now: number, out: ElectionEffect[]): void {
    const bump = holder.bump
    if (bump !== undefined) {
      // Given up quietly: a release would also free the promises behind the lease we still hold.
      if (now - bump.since >= this.timing.claimTimeoutMs) holder.bump = undefined
      else if (now - bump.claim.lastSentAt >= this.timing.claimResendMs) this.publishClaim(bump.claim, now, out)
      return
    }
    if (!bumpAllowed(holder.ration, holder.lease.epoch, now, this.config.heartbeatMs)) return
    // Only while a majority of the current view renews us: a holder that has lost it (the smaller side of a heal)
    // would only lift its last followers above the epoch of the holder they should now follow.
    if (!holder.lease.backedNow(this.self, this.members.voters(now))) return
    const epoch = Math.max(this.highest, spendBump(holder.ration, now, this.config.leaseMs)) + 1
    this.voter.grant(this.self, epoch, now, this.config.leaseMs)
    const claim = new HolderLease(epoch, this.config.leaseMs, this.config.driftBound)
    holder.bump = { claim, since: now }
    this.publishClaim(claim, now, out)
    this.checkBump(holder, now, out)
  }

  /** A bump granted by a majority becomes the lease, announced at once like a fresh one. */
  private checkBump (holder: Coordinator, now: number, out: ElectionEffect[]): void {
    const bump = holder.bump
    if (this.state !== holder || bump === undefined) return
    bump.claim.recount(this.self, this.members.voters(now))
    if (!bump.claim.isValid(now)) return
    holder.bump = undefined
    holder.lease = bump.claim
    this.leaseEpoch = bump.claim.epoch
    this.observeEpoch(bump.claim.epoch, now, out)
    this.announce(bump.claim, now, out)
    this.heartbeatWanted = true
  }

  // ---- output ----------------------------------------------------------------

  private sendHeartbeat (now: number, out: ElectionEffect[]): void {
    const state = this.state
    const f = state.role === 'follower' ? state.followed : undefined
    const m: HeartbeatMessage = {
      type: 'heartbeat',
      v: 1,
      from: this.self,
      info: copyInfo(this.info),
      role: publicRole(state),
      leader: this.leaderAt(now),
      epoch: this.leaseEpoch,
      highestEpoch: this.highest
    }
    if (f !== undefined) m.ack = { to: f.peer, epoch: f.epoch, seq: f.seq }
    const p = this.voter.promise
    if (p !== undefined && p.to !== this.self && now < p.until) m.promise = { to: p.to, epoch: p.epoch, leftMs: Math.ceil(p.until - now) }
    this.lastHeartbeatAt = now
    this.heartbeatWanted = false
    this.nudgePending = false
    this.publish(out, m)
  }

  private heartbeatDueMs (now: number): number {
    const state = this.state
    const following = state.role === 'follower' && state.followed !== undefined && now < state.followed.expiry
    return following ? this.timing.followingHeartbeatMs : this.config.heartbeatMs
  }

  private leaderAt (now: number): PeerIdString | undefined {
    const state = this.state
    if (state.role === 'stopped') return undefined
    if (state.role === 'coordinator') return this.isCoordinator(now) ? this.self : undefined
    const followed = followedLease(state)
    if (followed !== undefined && now < followed.expiry) return followed.peer
    return undefined
  }

  private reportRole (now: number, out: ElectionEffect[]): void {
    const role = publicRole(this.state)
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

  /** Common entry of the inputs that take time: auto-start, ignore after stop, keep local time monotonic. */
  private begin (now: number, out: ElectionEffect[]): boolean {
    if (this.state.role === 'stopped') return false
    if (this.startedAt === undefined) this.onStart(now, out)
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
