import { statSync } from 'node:fs'
import { join } from 'node:path'
import { BENCH_DIR, corpus } from './corpus.js'
import { timeCoreutils, timeMawk } from './engine-bench.js'
import { formedMesh, medianWcSeconds } from './jobs-bench.js'

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
  let seconds: number
  try {
    seconds = medianWcSeconds(cluster, input, join(BENCH_DIR, 'gib-out'), ['--shared'])
  } finally {
    await cluster.stop()
  }
  const nodes2SharedMBps = mb / seconds
  return {
    corpusMB: mb,
    mawkMBps,
    coreutilsMBps,
    nodes2SharedMBps,
    ratio2NodesVsMawk: nodes2SharedMBps / mawkMBps,
    ratio2NodesVsCoreutils: nodes2SharedMBps / coreutilsMBps
  }
}
