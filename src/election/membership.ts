import { FailureDetector, type FailureDetectorConfig, type LivenessChange } from './failure-detector.js'
import type { MemberInfo, MemberView, PeerIdString, Role } from './types.js'

/** What a peer has told us about itself. */
interface Reported {
  info: MemberInfo
  role: Role
}

const UNKNOWN_INFO: MemberInfo = Object.freeze({ addrs: [], slots: 0, running: 0, worker: false, version: '' }) as MemberInfo

/**
 * The member table as this node sees it. Dead peers are kept (until forgotten)
 * so that a heartbeat from one is recognised as a rejoin, but they count for
 * nothing: not in quorums, not in ranks.
 */
export class Membership {
  private readonly fd: FailureDetector
  private readonly reported = new Map<PeerIdString, Reported>()

  constructor (private readonly self: PeerIdString, config: FailureDetectorConfig) {
    this.fd = new FailureDetector(config)
  }

  heard (peer: PeerIdString, now: number): LivenessChange | undefined {
    if (peer === this.self) return undefined
    if (!this.reported.has(peer)) this.reported.set(peer, { info: UNKNOWN_INFO, role: 'follower' })
    return this.fd.heard(peer, now)
  }

  report (peer: PeerIdString, info: MemberInfo, role: Role): void {
    if (peer === this.self) return
    this.reported.set(peer, { info, role })
  }

  left (peer: PeerIdString): LivenessChange | undefined {
    return this.fd.left(peer)
  }

  /** Shifts every peer's silence by `ms`: time during which we could not listen. */
  credit (ms: number): void {
    this.fd.credit(ms)
  }

  refresh (now: number): LivenessChange[] {
    const { changes, forgotten } = this.fd.refresh(now)
    for (const p of forgotten) this.reported.delete(p)
    return changes
  }

  /**
   * Quorum size: a strict majority of the peers not known dead, self included.
   * Suspects count, because a peer that is only slow may still be granting to
   * someone else; only after deadAfterMs of silence is it left out.
   */
  majority (now: number): number {
    return Math.floor(this.voters(now).length / 2) + 1
  }

  /** Self and every peer that is alive or suspect. */
  voters (now: number): PeerIdString[] {
    const out = [this.self]
    for (const p of this.fd.peers()) {
      if (this.fd.liveness(p, now) !== 'dead') out.push(p)
    }
    return out
  }

  /** How many alive peers sort before self: the claim backoff slot. */
  rank (now: number): number {
    let r = 0
    for (const p of this.fd.peers()) {
      if (p < this.self && this.fd.liveness(p, now) === 'alive') r++
    }
    return r
  }

  isAlive (peer: PeerIdString, now: number): boolean {
    return this.fd.liveness(peer, now) === 'alive'
  }

  views (now: number): MemberView[] {
    const out: MemberView[] = []
    for (const peer of this.fd.peers()) {
      const r = this.reported.get(peer)
      const liveness = this.fd.liveness(peer, now)
      const lastHeard = this.fd.lastHeard(peer)
      if (r === undefined || liveness === undefined || lastHeard === undefined) continue
      out.push({ peer, liveness, lastHeardAgoMs: Math.max(0, now - lastHeard), info: r.info, role: r.role })
    }
    return out.sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0))
  }
}
