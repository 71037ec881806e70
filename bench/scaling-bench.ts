// Throughput against node count (1, 2, 4, 8 local nodes; wc on 256 MiB with
// --shared inputs) with parallel efficiency, drawn to .bench/scaling.svg, and
// the latency of a small job: wc on the lab's eight books through 3 nodes,
// submit to _SUCCESS, median of 10. Baselines (`mrp2p run`, tr|mawk) in the same run.
import { spawnSync } from 'node:child_process'
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { lineChart } from './chart.js'
import { BENCH_DIR, corpus, SHARED_DATA } from './corpus.js'
import { median, timeEngine, timeMawk } from './engine-bench.js'
import { CLI, formedMesh, jobSeconds } from './jobs-bench.js'

const NODE_COUNTS = (process.env.SCALING_NODES ?? '1,2,4,8').split(',').map(Number)
const LATENCY_RUNS = 10

export async function runScalingBench (): Promise<Record<string, number>> {
  const input = await corpus(256 * 2 ** 20)
  const mb = statSync(input).size / 1e6
  const out: Record<string, number> = { corpusMB: mb, runMBps: mb / timeEngine('wc', input).seconds, mawkMBps: mb / timeMawk(input) }
  const points: Array<[number, number]> = []
  for (const nodes of NODE_COUNTS) {
    const cluster = await formedMesh(nodes)
    try {
      const output = join(BENCH_DIR, `scaling-out-${nodes}`)
      rmSync(output, { recursive: true, force: true })
      const secs = jobSeconds(process.execPath, [CLI, 'submit', 'wc', '--input', input, '--reduces', '2', '--output', output, '--bootstrap', cluster.nodes[0].addr, '--shared'])
      rmSync(output, { recursive: true, force: true })
      out[`nodes${nodes}MBps`] = mb / secs
      points.push([nodes, mb / secs])
    } finally {
      await cluster.stop()
    }
  }
  const base = points.find(([n]) => n === 1)?.[1] ?? points[0][1]
  for (const [n, mbps] of points) out[`nodes${n}Efficiency`] = mbps / (n * base)
  writeFileSync(join(BENCH_DIR, 'scaling.svg'), lineChart({
    title: `wc on ${mb.toFixed(0)} MB, local nodes on one machine`,
    xLabel: 'nodes',
    leftLabel: 'MB/s',
    rightLabel: 'parallel efficiency',
    series: [
      { name: 'throughput (MB/s)', color: '#1f77b4', axis: 'left', points },
      { name: 'efficiency (dashed, right axis)', color: '#d62728', axis: 'right', points: points.map(([n, v]) => [n, v / (n * base)]) },
      { name: `mrp2p run, 1 process (${out.runMBps.toFixed(0)} MB/s)`, color: '#7f7f7f', axis: 'left', points: points.map(([n]) => [n, out.runMBps]) }
    ]
  }))
  return out
}

export async function runLatencyBench (): Promise<Record<string, number>> {
  const books = readdirSync(SHARED_DATA).filter((f) => /^pg-.*\.txt$/.test(f)).map((f) => join(SHARED_DATA, f))
  const output = join(BENCH_DIR, 'latency-out')
  const wall = (args: string[]): number => {
    rmSync(output, { recursive: true, force: true })
    const t = performance.now()
    const r = spawnSync(process.execPath, [CLI, ...args, '--output', output, '-q'], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`${args[0]} failed: ${r.stderr}`)
    return (performance.now() - t) / 1000
  }
  const runWall: number[] = []
  for (let i = 0; i < 3; i++) runWall.push(wall(['run', 'wc', '--input', ...books]))
  const cluster = await formedMesh(3)
  const submitWall: number[] = []
  const submitJob: number[] = []
  try {
    for (let i = 0; i < LATENCY_RUNS; i++) {
      submitWall.push(wall(['submit', 'wc', '--input', ...books, '--reduces', '3', '--bootstrap', cluster.nodes[i % 3].addr]))
      rmSync(output, { recursive: true, force: true })
      submitJob.push(jobSeconds(process.execPath, [CLI, 'submit', 'wc', '--input', ...books, '--reduces', '3', '--output', output, '--bootstrap', cluster.nodes[i % 3].addr]))
    }
  } finally {
    await cluster.stop()
    rmSync(output, { recursive: true, force: true })
  }
  return {
    runs: LATENCY_RUNS,
    runWallMedianS: median(runWall),
    submitWallMedianS: median(submitWall),
    submitJobMedianS: median(submitJob),
    submitWallVsRun: median(submitWall) / median(runWall)
  }
}
