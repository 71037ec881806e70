import { describe, expect, it } from 'vitest'
import { type Profile, type SimCounts, runScenario } from '../support/scheduler-sim.js'

/**
 * Seeded scenarios around the scheduler (see test/support/scheduler-sim.ts for
 * the world and the invariants it checks at every step). A failure message
 * starts with the seed and the profile, and names the env vars that replay
 * just that scenario.
 */
const SCENARIOS: Record<Profile, number> = { clean: 300, stragglers: 300, faults: 1500 }

const onlySeed = process.env.SCHED_SIM_SEED === undefined ? undefined : Number(process.env.SCHED_SIM_SEED)
const onlyProfile = process.env.SCHED_SIM_PROFILE as Profile | undefined

function runAll (profile: Profile): SimCounts {
  const seeds = onlySeed !== undefined ? [onlySeed] : Array.from({ length: SCENARIOS[profile] }, (_, i) => i + 1)
  let total: SimCounts | undefined
  for (const seed of seeds) {
    const { counts } = runScenario(seed, profile)
    if (total === undefined) total = { ...counts }
    else for (const k of Object.keys(counts) as Array<keyof SimCounts>) total[k] += counts[k]
  }
  return total as SimCounts
}

const profiles = (['clean', 'stragglers', 'faults'] as const).filter((p) => onlyProfile === undefined || p === onlyProfile)

describe('scheduler simulation', () => {
  it.runIf(profiles.includes('clean'))('clean: every task runs exactly once and every job succeeds', () => {
    const c = runAll('clean')
    expect(c.backups).toBe(0)
    expect(c.failed + c.cancelled).toBe(0)
    expect(c.succeeded).toBeGreaterThan(0)
  })

  it.runIf(profiles.includes('stragglers'))('stragglers: backups fire for slow tasks only, at most one beside the original', () => {
    const c = runAll('stragglers')
    expect(c.failed + c.cancelled).toBe(0)
    if (onlySeed === undefined) expect(c.backups).toBeGreaterThan(20)
  })

  it.runIf(profiles.includes('faults'))('faults: crashes, restarts, false suspicions, failovers, user/worker/fetch failures, refusals, duplicates, cancels', () => {
    const c = runAll('faults')
    console.log(`scheduler sim, faults profile: ${JSON.stringify(c)}`)
    if (onlySeed !== undefined) return
    // Each kind of trouble must actually have happened, or the invariants proved little.
    for (const k of ['backups', 'crashes', 'diskFaults', 'lateAbandons', 'refusals', 'fastRestarts', 'copies', 'suspicions', 'failovers', 'userFailures', 'workerFailures', 'fetchFailures', 'duplicates', 'cancels', 'succeeded', 'failed', 'cancelled'] as const) {
      expect(c[k], k).toBeGreaterThan(5)
    }
  })
})
