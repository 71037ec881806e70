import type { Bump, BumpRation } from './bump.js'
import type { HolderLease } from './lease.js'
import type { ClaimMessage } from './messages.js'
import type { PeerIdString, Role } from './types.js'

/** A lease this node acked as a follower: the promise it made and what it acks in its heartbeats. */
export interface FollowedLease {
  peer: PeerIdString
  epoch: number
  seq: number
  receivedAt: number
  expiry: number
}

/** A claim refused for now (a promise still runs, a holder may still act), granted once that obstacle is gone. */
export type PendingClaim = Pick<ClaimMessage, 'from' | 'epoch' | 'seq' | 'durationMs'>

export interface Follower {
  role: 'follower'
  /**
   * The lease acked last. Kept once it has run out: the heartbeats go on acking it (the holder may still count it)
   * and the view shows its age.
   */
  followed: FollowedLease | undefined
  /** When this node claims if no holder turns up first; undefined while there is evidence of one. */
  electionAt: number | undefined
  pending: PendingClaim | undefined
}

export interface Candidate {
  role: 'candidate'
  /** The claim, numbered like a lease: grants are its acks, and a majority of them makes it the lease. */
  claim: HolderLease
  since: number
  /** The lease followed before claiming (run out, or there would be no claim), back in the view if the claim fails. */
  followed: FollowedLease | undefined
}

export interface Coordinator {
  role: 'coordinator'
  lease: HolderLease
  /** A re-claim of the lease above a higher epoch heard from others, while `lease` still runs. */
  bump: Bump | undefined
  ration: BumpRation
}

/** After stop: nothing is sent or taken any more, and the node reports itself as a follower of nobody. */
export interface Stopped {
  role: 'stopped'
}

/** What an election node is, with only the state that means something in that role. */
export type RoleState = Follower | Candidate | Coordinator | Stopped

/** The role as others see it (heartbeats, views, role-changed): a stopped node is a follower. */
export function publicRole (state: RoleState): Role {
  return state.role === 'stopped' ? 'follower' : state.role
}

/** The lease followed now or last, where the role keeps one. */
export function followedLease (state: RoleState): FollowedLease | undefined {
  return state.role === 'follower' || state.role === 'candidate' ? state.followed : undefined
}

/** The claim or lease this node itself collects acks for (not a bump). */
export function ownLease (state: RoleState): HolderLease | undefined {
  if (state.role === 'candidate') return state.claim
  if (state.role === 'coordinator') return state.lease
  return undefined
}

/** The highest epoch this node holds or claims: what a release must cover. */
export function claimedEpoch (state: Candidate | Coordinator): number {
  if (state.role === 'candidate') return state.claim.epoch
  return Math.max(state.lease.epoch, state.bump?.claim.epoch ?? 0)
}
