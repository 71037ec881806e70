// `npm run bench [suite...]`: each suite measures against a baseline in the same
// run and reports ratios. Figures are also written to .bench/results.json.
import '../src/util/polyfills.js'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { BENCH_DIR } from './corpus.js'
import { runChurnSimBench } from './churn-sim-bench.js'
import { runBlockExchangeBench } from './block-exchange-bench.js'
import { runDashboardBench } from './dashboard-bench.js'
import { runDatasetsBench } from './datasets-bench.js'
import { runEngineBench } from './engine-bench.js'
import { runFailoverBench } from './failover-bench.js'
import { runGibBench } from './gib-bench.js'
import { runGrowthBench } from './growth-bench.js'
import { runInputPathBench } from './input-path-bench.js'
import { runJobsBench } from './jobs-bench.js'
import { runManyFailuresBench } from './many-failures-bench.js'
import { runMeshBench } from './mesh-bench.js'
import { runNatBench } from './nat-bench.js'
import { runSortBench } from './sort-bench.js'
import { runStreamingBench } from './streaming-bench.js'
import { runLatencyBench, runScalingBench } from './scaling-bench.js'

/** A suite gets the command line's options (`npm run bench scaling -- --nodes 1,2,4`). */
type Suite = (options: string[]) => Promise<Record<string, number>>

const suites: Record<string, Suite> = {
  engine: runEngineBench,
  mesh: runMeshBench,
  jobs: runJobsBench,
  gib: runGibBench,
  input: runInputPathBench,
  growth: runGrowthBench,
  sort: runSortBench,
  failover: runFailoverBench,
  scaling: runScalingBench,
  latency: runLatencyBench,
  dashboard: runDashboardBench,
  streaming: runStreamingBench,
  'churn-sim': runChurnSimBench,
  'many-failures': runManyFailuresBench,
  nat: runNatBench,
  datasets: runDatasetsBench,
  'block-exchange': runBlockExchangeBench
}

// Suite names, then options (words from the first that starts with --) for the suites that take any.
const args = process.argv.slice(2)
const firstOption = args.findIndex((a) => a.startsWith('--'))
const wanted = firstOption < 0 ? args : args.slice(0, firstOption)
const options = firstOption < 0 ? [] : args.slice(firstOption)
const unknown = wanted.filter((w) => !(w in suites))
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown suite ${unknown.join(', ')} (suites: ${Object.keys(suites).join(', ')})\n`)
  process.exit(2)
}

// Figures of every suite ever run here, newest per suite: a change is compared with the last run of each.
const file = join(BENCH_DIR, 'results.json')
interface Saved { at: string, node: string, results: Record<string, Record<string, number>> }
let previous: Saved | undefined
try {
  previous = JSON.parse(readFileSync(file, 'utf8')) as Saved
} catch {
  previous = undefined
}
const results: Record<string, Record<string, number>> = { ...previous?.results }
const rows: string[][] = [['suite', 'figure', 'value', 'last run', 'change']]
const fmt = (v: number | undefined | null): string => v === undefined || v === null ? '' : Number.isInteger(v) ? String(v) : v.toFixed(2)
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  process.stderr.write(`running ${name}…\n`)
  const r = await suites[name](options)
  for (const [k, v] of Object.entries(r)) {
    const last = previous?.results[name]?.[k]
    rows.push([name, k, fmt(v), fmt(last), last === undefined || last === 0 ? '' : `${(v / last).toFixed(2)}×`])
  }
  results[name] = r
  await mkdir(BENCH_DIR, { recursive: true })
  writeFileSync(file, JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2) + '\n')
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
process.stdout.write(rows.map((r) => r.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n')
process.stdout.write(`figures: ${file}${existsSync(join(BENCH_DIR, 'scaling.svg')) ? `; chart: ${join(BENCH_DIR, 'scaling.svg')}` : ''}\n`)
