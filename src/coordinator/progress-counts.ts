import type { JobProgress } from './scheduler-types.js'

type MapOutputs = NonNullable<JobProgress['mapOutputs']>

/**
 * What a job's progress counts rather than states: failed attempts and what became of map outputs. A new
 * coordinator rebuilds a job from inventories and counts these from 0; whoever shows the whole job (the history
 * record, the submitter's progress line) adds what the coordinators before it had counted.
 */
export interface ProgressCounts { failedAttempts: number, mapOutputs: MapOutputs }

export const NO_COUNTS: Readonly<ProgressCounts> = Object.freeze({ failedAttempts: 0, mapOutputs: Object.freeze({ lostDown: 0, lostFetch: 0, kept: 0, copied: 0 }) })

/** The counts of `p` plus `before`. */
export function sumCounts (p: JobProgress, before: ProgressCounts = NO_COUNTS): ProgressCounts {
  const o = p.mapOutputs ?? NO_COUNTS.mapOutputs
  const b = before.mapOutputs
  return {
    failedAttempts: p.failedAttempts + before.failedAttempts,
    mapOutputs: { lostDown: o.lostDown + b.lostDown, lostFetch: o.lostFetch + b.lostFetch, kept: o.kept + b.kept, copied: o.copied + b.copied }
  }
}

/** `p` with `before` added to its counts (`mapOutputs` still only once one is nonzero, as the scheduler shows it). */
export function withCounts (p: JobProgress, before: ProgressCounts): JobProgress {
  const { failedAttempts, mapOutputs } = sumCounts(p, before)
  const { mapOutputs: _own, ...rest } = p
  const out: JobProgress = { ...rest, maps: { ...p.maps }, reduces: { ...p.reduces }, failedAttempts }
  if (Object.values(mapOutputs).some((v) => v > 0)) out.mapOutputs = mapOutputs
  return out
}
