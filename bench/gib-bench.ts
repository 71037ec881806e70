import { rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { BENCH_DIR, corpus } from './corpus.js'
import { median, timeCoreutils, timeMawk } from './engine-bench.js'
import { CLI, formedMesh, jobSeconds } from './jobs-bench.js'

const ROUNDS = 3

/**
 * wc on a 1 GiB corpus through 2 local nodes (`--shared`, median of three jobs) against `tr | mawk` and
 * `tr | sort | uniq -c` on the same file in the same run (issue #7's throughput target).
 */
export async function runGibBench (): Promise<Record<string, number>> {
  const input = await corpus(2 ** 30)
  const mb = statSync(input).size / 1e6
  const mawkMBps = mb / timeMawk(input)
  const coreutilsMBps = mb / timeCoreutils(input)
  const cluster = await formedMesh(2)
  const times: number[] = []
  try {
    const output = join(BENCH_DIR, 'gib-out')
    for (let round = 0; round < ROUNDS; round++) {
      rmSync(output, { recursive: true, force: true })
      times.push(jobSeconds(process.execPath, [CLI, 'submit', 'wc', '--input', input, '--reduces', '2', '--output', output, '--bootstrap', cluster.nodes[0].addr, '--shared']))
    }
    rmSync(output, { recursive: true, force: true })
  } finally {
    await cluster.stop()
  }
  const nodes2SharedMBps = mb / median(times)
  return {
    corpusMB: mb,
    mawkMBps,
    coreutilsMBps,
    nodes2SharedMBps,
    ratio2NodesVsMawk: nodes2SharedMBps / mawkMBps,
    ratio2NodesVsCoreutils: nodes2SharedMBps / coreutilsMBps
  }
}
