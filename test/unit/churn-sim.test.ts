import { describe, expect, it } from 'vitest'
import { runChurn, type ChurnOptions } from '../support/churn-sim.js'

/**
 * The scheduler under churn (test/support/churn-sim.ts; the chart is `npm run bench churn-sim`, docs/churn.svg):
 * 100 maps and 50 reduces over 16 workers of 1 slot that live 8 s on average, a new one each second while fewer
 * live. Seeded, so every figure here is exact for the code as it is.
 */
const JOB: Omit<ChurnOptions, 'seed'> = { maps: 100, reduces: 50, alive: 16, arrivalMs: 1_000, slots: 1, lifetimeMs: 8_000, deadlineMs: 120_000 }
const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1)

function sweep (scheduler: ChurnOptions['scheduler'], replicas: number | undefined = 1): { finished: number, meanS: number, kept: number } {
  let finished = 0
  let total = 0
  let kept = 0
  for (const seed of SEEDS) {
    const r = runChurn({ ...JOB, seed, scheduler, replicas })
    kept += r.mapOutputs.kept
    if (!r.finished) continue
    finished++
    total += r.endMs / 1000
  }
  return { finished, meanS: total / Math.max(1, finished), kept }
}

describe('the scheduler under churn (simulated)', () => {
  it('reduces that start early and keep what they pull finish sooner than reduces that wait for every map', () => {
    const early = sweep({})
    const late = sweep({ reduceSlowStart: 1 })
    expect(early.finished).toBe(SEEDS.length)
    // Map outputs that died with their node but were not run again: every running reduce had them already.
    expect(early.kept).toBeGreaterThan(late.kept)
    expect(early.meanS).toBeLessThan(0.85 * late.meanS)
  })

  it('a second copy of each map output (--intermediate-replicas 2) finishes more jobs where workers live 5 s on average', () => {
    const finished = (replicas: number): number => SEEDS.filter((seed) => runChurn({ ...JOB, seed, lifetimeMs: 5_000, replicas }).finished).length
    expect(finished(2)).toBeGreaterThan(finished(1))
  })

  it('by default (no --intermediate-replicas) the coordinator copies map outputs once workers die: as many jobs finish at 5 s as with copies always on, more than with none', () => {
    const finished = (replicas: number | undefined): number => SEEDS.filter((seed) => runChurn({ ...JOB, seed, lifetimeMs: 5_000, replicas }).finished).length
    const auto = finished(undefined)
    expect(auto).toBeGreaterThan(finished(1))
    expect(auto).toBeGreaterThanOrEqual(finished(2) - 1)
  })

  it('on a calm mesh (workers outlive the job) every job finishes with each map run once and nothing copied', () => {
    for (const scheduler of [{}, { reduceSlowStart: 1 }]) {
      for (const seed of SEEDS.slice(0, 5)) {
        const r = runChurn({ ...JOB, seed, lifetimeMs: undefined, scheduler, replicas: undefined })
        expect(r.finished).toBe(true)
        expect(r.deaths).toBe(0)
        expect(r.mapRuns).toBe(JOB.maps)
        expect(r.mapOutputs.copied).toBe(0)
      }
    }
  })

  it('workers that die at their 4th map call leave no mesh of 16 able to hold 100 map outputs at once: the job does not finish', () => {
    const r = runChurn({ ...JOB, seed: 1, lifetimeMs: undefined, lifetimeMaps: 4, deadlineMs: 60_000 })
    expect(r.finished).toBe(false)
    expect(r.deaths).toBeGreaterThan(16)
    expect(r.mapOutputs.lostDown).toBeGreaterThan(0)
  })
})
