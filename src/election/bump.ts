import type { HolderLease } from './lease.js'

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

/** The holder's re-claim of its lease at a higher epoch, while its current lease still runs. */
export interface Bump {
  claim: HolderLease
  since: number
}

/** What a holder has heard above its epoch, and how far its next bump is rationed off. One per tenure. */
export interface BumpRation {
  /** The highest epoch heard from other peers while this node held a valid lease and so did not adopt it. */
  heardHigher: number
  higherHeardAt: number
  /** Since when heardHigher has been above the lease's epoch. */
  higherSince: number
  nextBumpAt: number
  spacingMs: number
}

/** A new tenure's ration: nothing heard above its epoch yet, no spacing to wait out. */
export function newBumpRation (): BumpRation {
  return {
    heardHigher: 0,
    higherHeardAt: Number.NEGATIVE_INFINITY,
    higherSince: Number.NEGATIVE_INFINITY,
    nextBumpAt: Number.NEGATIVE_INFINITY,
    spacingMs: 0
  }
}

/** Notes `epoch`, heard above the holder's lease of `leaseEpoch`, from a peer it did not take it from. */
export function noteHigherEpoch (r: BumpRation, leaseEpoch: number, epoch: number, now: number, leaseMs: number): void {
  // A spell of bumps ends when no higher epoch has been heard for a while: the next heal is news again.
  if (now - r.higherHeardAt >= BUMP_QUIET_LEASES * leaseMs) {
    r.spacingMs = 0
    r.nextBumpAt = Number.NEGATIVE_INFINITY
  }
  r.higherHeardAt = now
  if (r.heardHigher <= leaseEpoch) r.higherSince = now
  if (epoch > r.heardHigher) r.heardHigher = epoch
}

/**
 * Forgets the higher epochs heard so far (their sender was found out: quarantine.ts). Honest members above the
 * lease's epoch say so again in their next heartbeat, and are then waited for as if heard for the first time.
 */
export function forgetHigherEpoch (r: BumpRation): void {
  r.heardHigher = 0
}

/**
 * Whether the ration allows a bump now: a higher epoch heard, the spacing past, and not at once: within a heartbeat
 * period the holder has heard from every member of a joined mesh, so its view is whole.
 */
export function bumpAllowed (r: BumpRation, leaseEpoch: number, now: number, heartbeatMs: number): boolean {
  return r.heardHigher > leaseEpoch && now >= r.nextBumpAt && now - r.higherSince >= heartbeatMs
}

/** Spends the ration on a bump starting now; returns the highest epoch heard, which the bump must exceed. */
export function spendBump (r: BumpRation, now: number, leaseMs: number): number {
  const heard = r.heardHigher
  r.heardHigher = 0
  r.spacingMs = r.spacingMs === 0
    ? FIRST_BUMP_SPACING_LEASES * leaseMs
    : Math.min(2 * r.spacingMs, MAX_BUMP_SPACING_LEASES * leaseMs)
  r.nextBumpAt = now + r.spacingMs
  return heard
}
