// The scheduler under churn, in the seeded simulation (test/support/churn-sim.ts): the share of jobs that finish
// within a deadline, and how long they take, as workers live shorter: the default (reduces started early, a second
// copy of map outputs once workers die), and each mechanism alone or off. No processes: it runs in seconds anywhere.
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

/** Workers that die at their Nth map call, as the issue's scenario (6.824's workers die after 10 tasks). */
const LIFETIMES_MAPS = [4, 6, 10, 25]

/** Replicas unset: the default, a second copy once the mesh churns (SchedulerConfig.churnDeaths). */
const MODES: Record<string, { scheduler: ChurnOptions['scheduler'], replicas: number | undefined }> = {
  auto: { scheduler: {}, replicas: undefined },
  early: { scheduler: {}, replicas: 1 },
  late: { scheduler: { reduceSlowStart: 1 }, replicas: 1 },
  copies: { scheduler: {}, replicas: 2 },
  anywhere: { scheduler: { spreadReruns: false }, replicas: 1 }
}

interface Point { finished: number, meanS: number }

function measure (lifetime: { ms: number } | { maps: number }, mode: { scheduler: ChurnOptions['scheduler'], replicas: number | undefined }): Point {
  let finished = 0
  let total = 0
  for (let seed = 1; seed <= SEEDS; seed++) {
    const life = 'ms' in lifetime ? { lifetimeMs: lifetime.ms } : { lifetimeMaps: lifetime.maps }
    const rep = runChurn({ ...JOB, seed, ...life, deadlineMs: DEADLINE_MS, scheduler: mode.scheduler, replicas: mode.replicas })
    if (!rep.finished) continue
    finished++
    total += rep.endMs / 1_000
  }
  return { finished: finished / SEEDS, meanS: finished === 0 ? 0 : total / finished }
}

export async function runChurnSimBench (): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  const points: Record<string, Array<[number, Point]>> = Object.fromEntries(Object.keys(MODES).map((m) => [m, []]))
  for (const s of LIFETIMES_S) {
    for (const [mode, how] of Object.entries(MODES)) {
      const p = measure({ ms: s * 1_000 }, how)
      points[mode].push([s, p])
      out[`life${s}s_${mode}Finished`] = p.finished
      out[`life${s}s_${mode}MeanS`] = p.meanS
    }
  }
  for (const n of LIFETIMES_MAPS) {
    for (const mode of ['auto', 'early', 'late', 'copies'] as const) {
      const p = measure({ maps: n }, MODES[mode])
      out[`dieAt${n}_${mode}Finished`] = p.finished
      out[`dieAt${n}_${mode}MeanS`] = p.meanS
    }
  }
  writeFileSync(join(BENCH_DIR, 'churn.svg'), lineChart({
    title: `${JOB.maps} maps, ${JOB.reduces} reduces, ${JOB.alive} workers: finished within ${DEADLINE_MS / 1000} s (${SEEDS} seeds)`,
    xLabel: 'mean worker lifetime (s)',
    leftLabel: '% of jobs finished',
    rightLabel: 'mean time to finish (s), dashed',
    series: [
      { name: 'default: early reduces, copies once workers die', color: '#ff7f0e', axis: 'left', points: points.auto.map(([s, p]) => [s, 100 * p.finished]) },
      { name: 'reduces start early, keep what they pull; no copies', color: '#1f77b4', axis: 'left', points: points.early.map(([s, p]) => [s, 100 * p.finished]) },
      { name: 'reduces only after every map (before)', color: '#d62728', axis: 'left', points: points.late.map(([s, p]) => [s, 100 * p.finished]) },
      { name: 'early, and --intermediate-replicas 2', color: '#2ca02c', axis: 'left', points: points.copies.map(([s, p]) => [s, 100 * p.finished]) },
      { name: 'early, lost maps re-run anywhere (no placement rule)', color: '#9467bd', axis: 'left', points: points.anywhere.map(([s, p]) => [s, 100 * p.finished]) },
      { name: 'time, default (dashed)', color: '#ff7f0e', axis: 'right', points: points.auto.map(([s, p]) => [s, p.meanS]) },
      { name: 'time, early (dashed)', color: '#1f77b4', axis: 'right', points: points.early.map(([s, p]) => [s, p.meanS]) },
      { name: 'time, after maps (dashed)', color: '#d62728', axis: 'right', points: points.late.map(([s, p]) => [s, p.meanS]) },
      { name: 'time, replicas (dashed)', color: '#2ca02c', axis: 'right', points: points.copies.map(([s, p]) => [s, p.meanS]) }
    ]
  }))
  return out
}
