import type { Liveness, PeerIdString } from './types.js'

export interface FailureDetectorConfig {
  suspectAfterMs: number
  deadAfterMs: number
  forgetAfterMs: number
}

export interface LivenessChange {
  peer: PeerIdString
  liveness: Liveness
}

interface Entry {
  lastHeard: number
  /** Said goodbye: dead at once, until it speaks again. */
  left: boolean
  /** The liveness last reported, so that each transition is reported once. */
  reported: Liveness
}

/**
 * Timeout failure detector. Liveness is a pure function of the silence, so a
 * caller that asks between ticks gets the same answer a tick would give; the
 * `reported` state only exists to turn that function into change events.
 */
export class FailureDetector {
  private readonly entries = new Map<PeerIdString, Entry>()

  constructor (private readonly config: FailureDetectorConfig) {}

  /** Any message from `peer` counts. Returns the change if the peer was unknown or not alive. */
  heard (peer: PeerIdString, now: number): LivenessChange | undefined {
    const e = this.entries.get(peer)
    if (e === undefined) {
      this.entries.set(peer, { lastHeard: now, left: false, reported: 'alive' })
      return { peer, liveness: 'alive' }
    }
    // Messages can be handed in slightly out of order; never move time back.
    e.lastHeard = Math.max(e.lastHeard, now)
    e.left = false
    if (e.reported === 'alive') return undefined
    e.reported = 'alive'
    return { peer, liveness: 'alive' }
  }

  /** The peer announced it is leaving. */
  left (peer: PeerIdString): LivenessChange | undefined {
    const e = this.entries.get(peer)
    if (e === undefined) return undefined
    e.left = true
    if (e.reported === 'dead') return undefined
    e.reported = 'dead'
    return { peer, liveness: 'dead' }
  }

  /** Treats `ms` of silence as not having happened (we were not running to hear). */
  credit (ms: number): void {
    for (const e of this.entries.values()) e.lastHeard += ms
  }

  liveness (peer: PeerIdString, now: number): Liveness | undefined {
    const e = this.entries.get(peer)
    return e === undefined ? undefined : this.classify(e, now)
  }

  lastHeard (peer: PeerIdString): number | undefined {
    return this.entries.get(peer)?.lastHeard
  }

  has (peer: PeerIdString): boolean {
    return this.entries.has(peer)
  }

  peers (): IterableIterator<PeerIdString> {
    return this.entries.keys()
  }

  /** Reports transitions since the last call and forgets long-dead peers. */
  refresh (now: number): { changes: LivenessChange[], forgotten: PeerIdString[] } {
    const changes: LivenessChange[] = []
    const forgotten: PeerIdString[] = []
    for (const [peer, e] of this.entries) {
      const l = this.classify(e, now)
      if (l !== e.reported) {
        e.reported = l
        changes.push({ peer, liveness: l })
      }
      if (l === 'dead' && now - e.lastHeard >= this.config.forgetAfterMs) forgotten.push(peer)
    }
    for (const peer of forgotten) this.entries.delete(peer)
    return { changes, forgotten }
  }

  private classify (e: Entry, now: number): Liveness {
    if (e.left) return 'dead'
    const silent = now - e.lastHeard
    if (silent >= this.config.deadAfterMs) return 'dead'
    if (silent >= this.config.suspectAfterMs) return 'suspect'
    return 'alive'
  }
}
