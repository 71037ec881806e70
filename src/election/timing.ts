import type { ElectionConfig } from './types.js'

/** How much longer than its own lease a node lets a peer's lease or claim run (see maxDurationMs). */
export const MAX_LEASE_FACTOR = 4

/** The durations an election node derives from its configuration (docs/election.md, "Derived"). */
export interface ElectionTiming {
  /**
   * The longest lease or claim this node helps: MAX_LEASE_FACTOR × its own lease. Nodes configured alike never come
   * near it; a peer asking for more (misconfigured, or hostile) is ignored rather than promised an unbounded time.
   */
  maxDurationMs: number
  renewEveryMs: number
  /** Long enough for every voter's promise to the previous holder to run out. */
  claimTimeoutMs: number
  claimResendMs: number
  /**
   * While a node follows a live lease each renewal triggers its heartbeat (it carries the ack), so the timer only
   * backs that up; otherwise a plain period.
   */
  followingHeartbeatMs: number
  minHeartbeatGapMs: number
  /**
   * A fresh node cannot tell "no one else exists" from "not heard yet" until a peer would have been declared dead,
   * so it does not claim before then.
   */
  joinQuietMs: number
}

/** Derives the timing once per node, so that every rule reads the same numbers. */
export function electionTiming (config: ElectionConfig): ElectionTiming {
  return {
    maxDurationMs: MAX_LEASE_FACTOR * config.leaseMs,
    renewEveryMs: config.leaseMs / 3,
    claimTimeoutMs: config.leaseMs,
    claimResendMs: config.heartbeatMs / 2,
    followingHeartbeatMs: config.heartbeatMs * 1.25,
    minHeartbeatGapMs: config.heartbeatMs / 10,
    joinQuietMs: Math.max(config.deadAfterMs, config.leaseMs)
  }
}
