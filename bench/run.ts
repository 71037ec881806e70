// `npm run bench [suite...]`: each suite measures against a baseline in the same
// run and reports ratios. Figures are also written to .bench/results.json.
import '../src/util/polyfills.js'
import { writeFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { BENCH_DIR } from './corpus.js'
import { runEngineBench } from './engine-bench.js'
import { runFailoverBench } from './failover-bench.js'
import { runJobsBench } from './jobs-bench.js'
import { runMeshBench } from './mesh-bench.js'
import { runLatencyBench, runScalingBench } from './scaling-bench.js'

type Suite = () => Promise<Record<string, number>>

const suites: Record<string, Suite> = {
  engine: runEngineBench,
  mesh: runMeshBench,
  jobs: runJobsBench,
  failover: runFailoverBench,
  scaling: runScalingBench,
  latency: runLatencyBench
}

const wanted = process.argv.slice(2)
const unknown = wanted.filter((w) => !(w in suites))
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown suite ${unknown.join(', ')} (suites: ${Object.keys(suites).join(', ')})\n`)
  process.exit(2)
}

const results: Record<string, Record<string, number>> = {}
for (const name of wanted.length > 0 ? wanted : Object.keys(suites)) {
  process.stdout.write(`\n## ${name}\n`)
  const r = await suites[name]()
  results[name] = r
  for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(28)} ${Number.isInteger(v) ? v : v.toFixed(2)}\n`)
}
await mkdir(BENCH_DIR, { recursive: true })
writeFileSync(join(BENCH_DIR, 'results.json'), JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2) + '\n')
