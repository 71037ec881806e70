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
}

export const DEFAULT_ELECTION_CONFIG: ElectionConfig = Object.freeze({
  leaseMs: 3000,
  driftBound: 0.05,
  heartbeatMs: 1000,
  suspectAfterMs: 3000,
  deadAfterMs: 6000,
  backoffStepMs: 200,
  jitterMs: 100,
  forgetAfterMs: 60_000
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
}

/** Fills in defaults and rejects a configuration under which the safety argument breaks. */
export function resolveElectionConfig (partial: Partial<ElectionConfig> = {}): ElectionConfig {
  const c: ElectionConfig = { ...DEFAULT_ELECTION_CONFIG }
  for (const [k, v] of Object.entries(partial) as Array<[keyof ElectionConfig, number | undefined]>) {
    if (v !== undefined) c[k] = v
  }
  const positive: Array<keyof ElectionConfig> = ['leaseMs', 'heartbeatMs', 'suspectAfterMs', 'deadAfterMs', 'forgetAfterMs']
  for (const k of positive) {
    if (!Number.isFinite(c[k]) || c[k] <= 0) throw new RangeError(`election config: ${k} must be a positive number, got ${c[k]}`)
  }
  for (const k of ['backoffStepMs', 'jitterMs'] as const) {
    if (!Number.isFinite(c[k]) || c[k] < 0) throw new RangeError(`election config: ${k} must be >= 0, got ${c[k]}`)
  }
  if (!(c.driftBound >= 0 && c.driftBound < 0.5)) throw new RangeError(`election config: driftBound must be in [0, 0.5), got ${c.driftBound}`)
  if (c.suspectAfterMs > c.deadAfterMs) throw new RangeError('election config: suspectAfterMs must not exceed deadAfterMs')
  if (c.deadAfterMs > c.forgetAfterMs) throw new RangeError('election config: deadAfterMs must not exceed forgetAfterMs')
  return c
}
