// Throughput against node count (1, 2, 4, 8 local nodes; wc on 256 MiB with
// --shared inputs) with parallel efficiency, drawn to .bench/scaling.svg, and
// the latency of a small job: wc on the lab's eight books through 3 nodes,
// submit to _SUCCESS, median of 10. Baselines (`mrp2p run`, tr|mawk) in the same run.
import { spawnSync } from 'node:child_process'
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { lineChart } from './chart.js'
import { BENCH_DIR, corpus, REPO_ROOT, SHARED_DATA } from './corpus.js'
import { median, timeEngine, timeMawk } from './engine-bench.js'
import { CLI, formedMesh, jobSeconds } from './jobs-bench.js'

const LATENCY_RUNS = 10
/** The CLI from its compiled modules, not the bundle bin/mrp2p.js picks for `submit`. */
const MODULES_CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')

/**
 * `npm run bench scaling -- --nodes 1,2,4,8,16 --slots 1` (or SCALING_NODES, SCALING_SLOTS): the node counts, and
 * task slots per node (default: each node's CPU count). On a machine with as many cores as the largest count, one
 * slot a node makes the efficiency a measure of the mesh, not of the cores shared.
 */
export function scalingOptions (args: string[], env: Record<string, string | undefined> = process.env): { nodes: number[], slots: number | undefined } {
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(name)
    return i >= 0 ? args[i + 1] : undefined
  }
  const nodesText = flag('--nodes') ?? env.SCALING_NODES ?? '1,2,4,8'
  const nodes = nodesText.split(',').map(Number)
  if (nodes.length === 0 || nodes.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) throw new Error(`bench scaling: --nodes must list node counts from 1 to 64, like 1,2,4,8 (got "${nodesText}")`)
  const slotsText = flag('--slots') ?? env.SCALING_SLOTS
  const slots = slotsText === undefined ? undefined : Number(slotsText)
  if (slots !== undefined && (!Number.isInteger(slots) || slots < 1 || slots > 1024)) throw new Error(`bench scaling: --slots must be a whole number from 1 to 1024 (got "${slotsText ?? ''}")`)
  return { nodes, slots }
}

export async function runScalingBench (args: string[] = []): Promise<Record<string, number>> {
  const { nodes: nodeCounts, slots } = scalingOptions(args)
  const input = await corpus(256 * 2 ** 20)
  const mb = statSync(input).size / 1e6
  const out: Record<string, number> = { corpusMB: mb, runMBps: mb / timeEngine('wc', input).seconds, mawkMBps: mb / timeMawk(input), slotsPerNode: slots ?? 0 }
  const points: Array<[number, number]> = []
  for (const nodes of nodeCounts) {
    const cluster = await formedMesh(nodes, undefined, slots)
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
    title: `wc on ${mb.toFixed(0)} MB, local nodes on one machine${slots === undefined ? '' : `, ${slots} slot${slots === 1 ? '' : 's'} each`}`,
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
  const wall = (entry: string, args: string[]): number => {
    rmSync(output, { recursive: true, force: true })
    const t = performance.now()
    const r = spawnSync(process.execPath, [entry, ...args, '--output', output, '-q'], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`${args[0]} failed: ${r.stderr}`)
    return (performance.now() - t) / 1000
  }
  const runWall: number[] = []
  for (let i = 0; i < 3; i++) runWall.push(wall(CLI, ['run', 'wc', '--input', ...books]))
  const cluster = await formedMesh(3)
  const submitWall: number[] = []
  const modulesWall: number[] = []
  const submitJob: number[] = []
  try {
    for (let i = 0; i < LATENCY_RUNS; i++) {
      const args = ['submit', 'wc', '--input', ...books, '--reduces', '3', '--bootstrap', cluster.nodes[i % 3].addr]
      // As a user runs it (bin/mrp2p.js: the bundled client), and from the compiled modules (the baseline), alternating.
      submitWall.push(wall(CLI, args))
      modulesWall.push(wall(MODULES_CLI, args))
      rmSync(output, { recursive: true, force: true })
      submitJob.push(jobSeconds(process.execPath, [CLI, ...args, '--output', output]))
    }
  } finally {
    await cluster.stop()
    rmSync(output, { recursive: true, force: true })
  }
  return {
    runs: LATENCY_RUNS,
    runWallMedianS: median(runWall),
    submitWallMedianS: median(submitWall),
    submitModulesWallMedianS: median(modulesWall),
    submitJobMedianS: median(submitJob),
    ratioBundledVsModules: median(submitWall) / median(modulesWall),
    submitWallVsRun: median(submitWall) / median(runWall)
  }
}
