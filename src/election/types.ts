import type { MemberInfo, Role } from './messages.js'

/**
 * Shapes shared by the pure election state machine and whatever drives it
 * (the gossip adapter in production, the simulator in tests). Nothing here
 * reads a clock: every time is a `now` in milliseconds handed in by the caller.
 */

/** A libp2p PeerId in its string form. Ordered by plain string comparison. */
export type PeerIdString = string

export interface ElectionConfig {
  /** How long a lease lasts, as the followers count it. */
  leaseMs: number
  /**
   * Bound on the relative clock-rate error between any two nodes: for any two
   * clocks, rate(a) / rate(b) <= 1 / (1 - driftBound). Clocks that each stay
   * within ±driftBound/2 of true time satisfy it.
   */
  driftBound: number
  heartbeatMs: number
  suspectAfterMs: number
  deadAfterMs: number
  /** Claim backoff per rank among live members (lower PeerId = lower rank). */
  backoffStepMs: number
  jitterMs: number
  /** A dead peer is dropped from the member table after this much silence. */
  forgetAfterMs: number
  /**
   * A peer whose claims, leases or coordinator heartbeats keep contradicting the lease a majority renews (or, with
   * no such lease, keep claiming or saying it is coordinator without a lease) for this long is quarantined: its
   * election messages are ignored (docs/election.md, "Quarantine"). Default: {@link QUARANTINE_AFTER_LEASES} leases.
   */
  quarantineAfterMs: number
  /** A peer's first quarantine; each repeat doubles it. 0 turns quarantine off. Default: {@link QUARANTINE_LEASES} leases. */
  quarantineMs: number
  /** The longest quarantine, and the good behaviour after which a peer's repeats are forgotten. Default: {@link QUARANTINE_MAX_LEASES} leases. */
  quarantineMaxMs: number
}

/**
 * The quarantine defaults, in leases of the node's own `leaseMs` (unless set, they follow it). An honest member
 * contradicts a renewed lease for about one lease at most (a claim runs that long before it is given up; the holder
 * of the smaller side of a heal lapses within one), plus message delays and the clocks' drift: one lease would leave
 * no margin for those, two leave one lease.
 */
export const QUARANTINE_AFTER_LEASES = 2
export const QUARANTINE_LEASES = 10
export const QUARANTINE_MAX_LEASES = 320

const DEFAULT_LEASE_MS = 3000

export const DEFAULT_ELECTION_CONFIG: ElectionConfig = Object.freeze({
  leaseMs: DEFAULT_LEASE_MS,
  driftBound: 0.05,
  heartbeatMs: 1000,
  suspectAfterMs: 3000,
  deadAfterMs: 6000,
  backoffStepMs: 200,
  jitterMs: 100,
  forgetAfterMs: 60_000,
  quarantineAfterMs: QUARANTINE_AFTER_LEASES * DEFAULT_LEASE_MS,
  quarantineMs: QUARANTINE_LEASES * DEFAULT_LEASE_MS,
  quarantineMaxMs: QUARANTINE_MAX_LEASES * DEFAULT_LEASE_MS
})

// What a member says of itself in every heartbeat, and a role as the wire names it: the schema's shapes.
export type { MemberInfo, Role }
export type Liveness = 'alive' | 'suspect' | 'dead'

export interface MemberView {
  peer: PeerIdString
  liveness: Liveness
  lastHeardAgoMs: number
  info: MemberInfo
  /** The role the peer reported in its last heartbeat. */
  role: Role
}

export interface ElectionView {
  self: PeerIdString
  role: Role
  leader: PeerIdString | undefined
  /** Epoch of the lease this node follows or holds (0 when none yet). */
  epoch: number
  highestEpoch: number
  /** Time since the lease was last renewed (by the holder's send time for a coordinator, receive time for a follower). */
  leaseAgeMs: number | undefined
  leaseValid: boolean
  /** Every known peer, self excluded, sorted by PeerId. */
  members: MemberView[]
  /**
   * Peers whose election messages this node ignores now, and for how much longer (sorted by PeerId). Always set by
   * ElectionNode; optional so that stand-ins for the election need not invent it.
   */
  quarantined?: Array<{ peer: PeerIdString, leftMs: number }>
}

/**
 * Fills in defaults and rejects a configuration under which the safety argument breaks. The quarantine durations
 * not given follow the lease given (a shorter lease quarantines for proportionally less).
 */
export function resolveElectionConfig (partial: Partial<ElectionConfig> = {}): ElectionConfig {
  const c: ElectionConfig = { ...DEFAULT_ELECTION_CONFIG }
  for (const [k, v] of Object.entries(partial) as Array<[keyof ElectionConfig, number | undefined]>) {
    if (v !== undefined) c[k] = v
  }
  if (partial.quarantineAfterMs === undefined) c.quarantineAfterMs = QUARANTINE_AFTER_LEASES * c.leaseMs
  if (partial.quarantineMs === undefined) c.quarantineMs = QUARANTINE_LEASES * c.leaseMs
  if (partial.quarantineMaxMs === undefined) c.quarantineMaxMs = Math.max(QUARANTINE_MAX_LEASES * c.leaseMs, c.quarantineMs)
  const positive: Array<keyof ElectionConfig> = ['leaseMs', 'heartbeatMs', 'suspectAfterMs', 'deadAfterMs', 'forgetAfterMs', 'quarantineAfterMs', 'quarantineMaxMs']
  for (const k of positive) {
    if (!Number.isFinite(c[k]) || c[k] <= 0) throw new RangeError(`election config: ${k} must be a positive number, got ${c[k]}`)
  }
  for (const k of ['backoffStepMs', 'jitterMs', 'quarantineMs'] as const) {
    if (!Number.isFinite(c[k]) || c[k] < 0) throw new RangeError(`election config: ${k} must be >= 0, got ${c[k]}`)
  }
  if (!(c.driftBound >= 0 && c.driftBound < 0.5)) throw new RangeError(`election config: driftBound must be in [0, 0.5), got ${c.driftBound}`)
  if (c.suspectAfterMs > c.deadAfterMs) throw new RangeError('election config: suspectAfterMs must not exceed deadAfterMs')
  if (c.deadAfterMs > c.forgetAfterMs) throw new RangeError('election config: deadAfterMs must not exceed forgetAfterMs')
  if (c.quarantineMs > c.quarantineMaxMs) throw new RangeError('election config: quarantineMs must not exceed quarantineMaxMs')
  return c
}
