// The scheduler under churn, in the seeded simulation (test/support/churn-sim.ts): the share of jobs that finish
// within a deadline, and how long they take, as workers live shorter, with reduces started early (the default)
// and without (reduces only after every map, as before). No processes: it runs in seconds anywhere.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runChurn, type ChurnOptions } from '../test/support/churn-sim.js'
import { lineChart } from './chart.js'
import { BENCH_DIR } from './corpus.js'

/** The many-failures job: 100 maps, 50 reduces, 16 workers of 1 slot, one arriving per second while fewer live. */
const JOB = { maps: 100, reduces: 50, alive: 16, arrivalMs: 1_000, slots: 1 }
const DEADLINE_MS = 120_000
const SEEDS = 40
/** Mean worker lifetimes (s): exponential, as sessions of volunteers' machines are often modelled. */
const LIFETIMES_S = [3, 5, 8, 12, 20, 40]

const MODES = {
  early: { scheduler: {}, replicas: 1 },
  late: { scheduler: { reduceSlowStart: 1 }, replicas: 1 },
  copies: { scheduler: {}, replicas: 2 },
  anywhere: { scheduler: { spreadReruns: false }, replicas: 1 }
} as const

interface Point { finished: number, meanS: number }

function measure (lifetimeS: number, mode: { scheduler: ChurnOptions['scheduler'], replicas: number }): Point {
  let finished = 0
  let total = 0
  for (let seed = 1; seed <= SEEDS; seed++) {
    const rep = runChurn({ ...JOB, seed, lifetimeMs: lifetimeS * 1_000, deadlineMs: DEADLINE_MS, scheduler: mode.scheduler, replicas: mode.replicas })
    if (!rep.finished) continue
    finished++
    total += rep.endMs / 1_000
  }
  return { finished: finished / SEEDS, meanS: finished === 0 ? 0 : total / finished }
}

export async function runChurnSimBench (): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  const points: Record<keyof typeof MODES, Array<[number, Point]>> = { early: [], late: [], copies: [], anywhere: [] }
  for (const s of LIFETIMES_S) {
    for (const mode of Object.keys(MODES) as Array<keyof typeof MODES>) {
      const p = measure(s, MODES[mode])
      points[mode].push([s, p])
      out[`life${s}s_${mode}Finished`] = p.finished
      out[`life${s}s_${mode}MeanS`] = p.meanS
    }
  }
  writeFileSync(join(BENCH_DIR, 'churn.svg'), lineChart({
    title: `${JOB.maps} maps, ${JOB.reduces} reduces, ${JOB.alive} workers: finished within ${DEADLINE_MS / 1000} s (${SEEDS} seeds)`,
    xLabel: 'mean worker lifetime (s)',
    leftLabel: '% of jobs finished',
    rightLabel: 'mean time to finish (s), dashed',
    series: [
      { name: 'reduces start early, keep what they pull (default)', color: '#1f77b4', axis: 'left', points: points.early.map(([s, p]) => [s, 100 * p.finished]) },
      { name: 'reduces only after every map (before)', color: '#d62728', axis: 'left', points: points.late.map(([s, p]) => [s, 100 * p.finished]) },
      { name: 'early, and --intermediate-replicas 2', color: '#2ca02c', axis: 'left', points: points.copies.map(([s, p]) => [s, 100 * p.finished]) },
      { name: 'early, lost maps re-run anywhere (no placement rule)', color: '#9467bd', axis: 'left', points: points.anywhere.map(([s, p]) => [s, 100 * p.finished]) },
      { name: 'time, early (dashed)', color: '#1f77b4', axis: 'right', points: points.early.map(([s, p]) => [s, p.meanS]) },
      { name: 'time, after maps (dashed)', color: '#d62728', axis: 'right', points: points.late.map(([s, p]) => [s, p.meanS]) },
      { name: 'time, replicas (dashed)', color: '#2ca02c', axis: 'right', points: points.copies.map(([s, p]) => [s, p.meanS]) }
    ]
  }))
  return out
}
