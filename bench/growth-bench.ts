import { rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { BENCH_DIR, corpus } from './corpus.js'
import { CLI, formedMesh, jobSeconds } from './jobs-bench.js'
import { peakRssMiB, records, sortOnce } from './sort-bench.js'

/** Input sizes, MiB (`GROWTH_BENCH_MIB=256,1024` for a shorter run). */
const SIZES_MIB = (process.env.GROWTH_BENCH_MIB ?? '256,1024,4096').split(',').map(Number)

/**
 * Issue #18's memory-as-work-grows: wc and the sort at each size, each on a fresh 3-node mesh as a user submits
 * them (no flags), reporting the job's time and the peak RSS (VmHWM) of the busiest node. Time should grow in
 * step with the input (seconds per GiB within 15 % of the smallest size's) and peak RSS stay flat (within 10 %).
 */
export async function runGrowthBench (): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const job of ['wc', 'sort'] as const) {
    const perGiB: number[] = []
    const rss: number[] = []
    for (const mib of SIZES_MIB) {
      const bytes = mib * 2 ** 20
      const input = job === 'wc' ? await corpus(bytes) : records(bytes)
      const run = typeof input === 'string' ? await wcOnce(input) : await sortOnce(input, [])
      const inputBytes = statSync(typeof input === 'string' ? input : input.path).size
      out[`${job}${mib}MiBSeconds`] = run.seconds
      out[`${job}${mib}MiBPeakRssMiB`] = run.peakRssMiB
      perGiB.push(run.seconds / (inputBytes / 2 ** 30))
      rss.push(run.peakRssMiB)
    }
    // 1.00 is perfectly linear time and flat memory; the targets are ≤ 1.15 and ≤ 1.10.
    out[`${job}SecondsPerGiBLargestVsSmallest`] = perGiB[perGiB.length - 1] / perGiB[0]
    out[`${job}PeakRssMaxVsMin`] = Math.max(...rss) / Math.min(...rss)
  }
  return out
}

/** wc over `input` on a fresh 3-node mesh: the job's own time and the busiest node's peak RSS. */
async function wcOnce (input: string): Promise<{ seconds: number, peakRssMiB: number }> {
  const cluster = await formedMesh(3)
  const output = join(BENCH_DIR, 'growth-out')
  try {
    rmSync(output, { recursive: true, force: true })
    const seconds = jobSeconds(process.execPath, [CLI, 'submit', 'wc', '--input', input, '--reduces', '2', '--output', output, '--bootstrap', cluster.nodes[0].addr])
    const rss = cluster.nodes.flatMap((n) => n.process.pid === undefined ? [] : [peakRssMiB(n.process.pid)])
    return { seconds, peakRssMiB: Math.max(...rss) }
  } finally {
    rmSync(output, { recursive: true, force: true })
    await cluster.stop()
  }
}
