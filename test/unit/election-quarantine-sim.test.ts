import { describe, expect, it } from 'vitest'
import { FIRST_BUMP_SPACING_LEASES } from '../../src/election/bump.js'
import { DEFAULT_ELECTION_CONFIG, QUARANTINE_AFTER_LEASES, QUARANTINE_LEASES } from '../../src/election/types.js'
import { runHostileScenario, SimViolation, type HostileScenarioSummary } from '../support/sim-network.js'

/**
 * Quarantine in the seeded simulator (docs/election.md, "Quarantine"): 4 or 5 honest nodes elect, then a hostile
 * member (test/support/sim-network.ts, HostileMember: a claim above the highest epoch it has heard every 100 ms, a
 * coordinator heartbeat every second, all in its own name, never a lease) joins and keeps at it for 60 leases.
 * Delays 1..2-250 ms, loss 0-10 %, clocks within the drift bound, as in test/unit/election-sim.test.ts, whose
 * checks (one coordinator per component, failover, epochs never back) run throughout.
 *
 * The base seed is fixed; MRP2P_SIM_SEED explores others, MRP2P_QSIM_RUNS scales the runs.
 */

const RUNS = Number(process.env.MRP2P_QSIM_RUNS ?? 12)
const BASE = process.env.MRP2P_SIM_SEED !== undefined ? Number(process.env.MRP2P_SIM_SEED) : 20261219
const { leaseMs: L, deadAfterMs } = DEFAULT_ELECTION_CONFIG
const AFTER = QUARANTINE_AFTER_LEASES * L
const PERIOD = QUARANTINE_LEASES * L
/**
 * How long after an honest fault (crash, restart, pause, partition, heal) the faults alone may still start new
 * leases: a minority side elects once the others count as dead, and a holder bumps its lease above epochs a healed
 * side brings back, 2 and then 4 leases apart.
 */
const EXPLAINED_MS = deadAfterMs + 4 * L
/** Under (a), the first quarantine and the first bump spacing after it: all the coordinator's epoch changes come in it. */
const EARLY_MS = AFTER + (FIRST_BUMP_SPACING_LEASES + 1) * L

function honestQuarantines (s: HostileScenarioSummary): number {
  return s.stats.quarantines.filter(q => !q.hostile).length
}

/** Leases begun more than EXPLAINED_MS after the latest honest fault (or after the hostile member started). */
function unexplained (s: HostileScenarioSummary): number[] {
  return s.leases.filter(l => {
    const before = s.faults.filter(f => f.at <= l.at).map(f => f.at)
    return l.at - Math.max(s.hostileAt, ...before) > EXPLAINED_MS
  }).map(l => l.at)
}

describe('election quarantine, simulated', () => {
  it(`(a) loss only, no honest failure: over 60 leases the honest coordinator never changes, its epoch only in the first ${EARLY_MS / L} leases, and no honest node is quarantined (${RUNS} runs, base seed ${BASE})`, () => {
    const figures = { runs: 0, epochChanges: 0, hostileQuarantines: 0, honestQuarantines: 0, firstQuarantineMs: [] as number[] }
    for (let i = 0; i < RUNS; i++) {
      const s = runHostileScenario((BASE + i) >>> 0)
      const where = `seed ${s.seed} (honest ${s.honest}, maxDelay ${s.maxDelayMs}, loss ${s.loss})`
      figures.runs++
      // One honest coordinator at every 100 ms sample, always the same node.
      expect({ where, none: s.samples.none, several: s.samples.several, holders: s.samples.holders.length }).toEqual({ where, none: 0, several: 0, holders: 1 })
      // Its epoch changes twice at most, early: the bump above the hostile member's epochs before it is quarantined,
      // and maybe one more for a follower that took those epochs before it quarantined the member (its lease had
      // lapsed under loss). Never after that.
      expect(s.leases.length, where).toBeLessThanOrEqual(2)
      for (const l of s.leases) expect(l.at - s.hostileAt, where).toBeLessThan(EARLY_MS)
      figures.epochChanges += s.leases.length
      // Every honest node quarantines it, first after AFTER of contradictions, then again at once for twice as long.
      const honest = new Set(s.stats.quarantines.map(q => q.by))
      expect(honest.size, where).toBe(s.honest)
      for (const by of honest) {
        const qs = s.stats.quarantines.filter(q => q.by === by)
        expect(qs.every(q => q.hostile), where).toBe(true)
        const first = qs[0].at - s.hostileAt
        figures.firstQuarantineMs.push(first)
        expect(first, where).toBeGreaterThanOrEqual(AFTER * (1 - DEFAULT_ELECTION_CONFIG.driftBound))
        expect(first, where).toBeLessThanOrEqual(AFTER + 1000)
        expect(qs.map(q => q.forMs), where).toEqual(qs.map((_, k) => PERIOD * 2 ** k))
      }
      figures.hostileQuarantines += s.stats.quarantines.length - honestQuarantines(s)
      figures.honestQuarantines += honestQuarantines(s)
    }
    expect(figures.honestQuarantines).toBe(0)
    console.log(`quarantine sim (a): ${figures.runs} runs of 60 leases; 0 changes of coordinator, ${figures.epochChanges} of its epoch; ` +
      `${figures.hostileQuarantines} quarantines of the hostile member (the first after ${Math.min(...figures.firstQuarantineMs).toFixed(0)}..${Math.max(...figures.firstQuarantineMs).toFixed(0)} ms), ${figures.honestQuarantines} of honest nodes`)
  })

  it(`(b) with crashes, restarts and pauses of honest nodes, partitions and heals: safety, failover and a settled coordinator hold, the hostile member is quarantined everywhere, no honest node anywhere, and leases that no honest fault explains are a quarantine period apart (${2 * RUNS} runs)`, () => {
    const figures = { runs: 0, faults: 0, leases: 0, unexplained: 0, hostileQuarantines: 0, honestQuarantines: 0 }
    for (let i = 0; i < 2 * RUNS; i++) {
      const s = runHostileScenario((BASE + 1000 + i) >>> 0, { faults: true })
      const where = `seed ${s.seed} (honest ${s.honest}, maxDelay ${s.maxDelayMs}, loss ${s.loss})`
      figures.runs++
      figures.faults += s.faults.length
      figures.leases += s.leases.length
      const byNode = new Set(s.stats.quarantines.filter(q => q.hostile).map(q => q.by))
      expect(byNode.size, where).toBe(s.honest)
      expect(honestQuarantines(s), where).toBe(0)
      const u = unexplained(s)
      for (let k = 1; k < u.length; k++) expect(u[k] - u[k - 1], where).toBeGreaterThanOrEqual(PERIOD)
      figures.unexplained += u.length
      figures.hostileQuarantines += s.stats.quarantines.length - honestQuarantines(s)
      figures.honestQuarantines += honestQuarantines(s)
    }
    console.log(`quarantine sim (b): ${figures.runs} runs, ${figures.faults} honest faults, ${figures.leases} leases begun ` +
      `(${figures.unexplained} more than ${EXPLAINED_MS} ms after the latest fault); ${figures.hostileQuarantines} quarantines of the hostile member, ${figures.honestQuarantines} of honest nodes`)
  })

  it('has teeth: with quarantine off, the coordinator bumps its epoch every few leases under (a), and (b) loses its coordinator for good', () => {
    const off = { quarantineMs: 0 }
    for (let i = 0; i < 3; i++) {
      const s = runHostileScenario((BASE + i) >>> 0, { config: off })
      expect(s.samples.holders).toHaveLength(1)
      expect(s.leases.length).toBeGreaterThan(10)
    }
    let violation: string | undefined
    for (let i = 0; i < 5 && violation === undefined; i++) {
      try {
        runHostileScenario((BASE + 1000 + i) >>> 0, { faults: true, config: off })
      } catch (err) {
        if (!(err instanceof SimViolation)) throw err
        violation = err.message
      }
    }
    expect(violation).toMatch(/no new coordinator within|samples unsettled/)
  })
})
