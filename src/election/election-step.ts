import type { ControlMessage } from './messages.js'
import type { Liveness, MemberInfo, PeerIdString, Role } from './types.js'

/**
 * Everything that can happen to an election node: the one alphabet of
 * `ElectionNode.step`. Every input that involves time carries the caller's
 * `now` (a monotonic clock, in ms); nothing inside reads a clock.
 */
export type ElectionInput =
  /** Begin: heartbeat at once, and hold back claims until a silent peer would count as dead. Implied by the first tick, receive or nudge. */
  | { type: 'start', now: number }
  /** The periodic timer, about every 100 ms. */
  | { type: 'tick', now: number }
  /** A decoded control message whose `from` the transport has authenticated. */
  | { type: 'receive', message: ControlMessage, now: number }
  /** Connectivity changed (a peer connected or joined the topic): heartbeat now rather than at the next period. */
  | { type: 'nudge', now: number }
  /** What this node says about itself in its heartbeats from now on. */
  | { type: 'set-info', info: MemberInfo }
  /** Shutting down: a holder or candidate releases, anyone else leaves; no input after it has an effect. */
  | { type: 'stop', now: number }

/** What a step asks of its driver, in the order it must be applied. */
export type ElectionEffect =
  | { type: 'publish', message: ControlMessage }
  | { type: 'role-changed', role: Role, epoch: number, leader: PeerIdString | undefined }
  | { type: 'member-changed', peer: PeerIdString, liveness: Liveness }
  /** Persist it (fsync) before publishing anything that follows it in the same batch. */
  | { type: 'epoch-observed', epoch: number }
  /**
   * `peer` kept contradicting the lease a majority renews: its election messages are ignored for `forMs`, its
   * `repeat`-th quarantine in a row (docs/election.md, "Quarantine"). It stays a member, alive as long as it speaks.
   */
  | { type: 'peer-quarantined', peer: PeerIdString, forMs: number, repeat: number }
