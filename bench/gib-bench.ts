import { statSync } from 'node:fs'
import { join } from 'node:path'
import type { Cluster } from '../src/harness/cluster.js'
import { BENCH_DIR, corpus } from './corpus.js'
import { median, timeCoreutils, timeMawk } from './engine-bench.js'
import { formedMesh, medianWc } from './jobs-bench.js'

/**
 * wc on a 1 GiB corpus through 2 local nodes against `tr | mawk` and `tr | sort | uniq -c` on the same file in
 * the same run: as a user submits it (no flags, wall clock of `submit`: the splits are read in place, the
 * submitter is on the nodes' host), with `--shared` (the job's own time, issue #7's figure), and with the nodes'
 * local reads off (`MRP2P_LOCAL_READS=0`: every byte through the submitter, as from another host).
 */
export async function runGibBench (): Promise<Record<string, number>> {
  const input = await corpus(2 ** 30)
  const mb = statSync(input).size / 1e6
  // A median: one mawk sample on this machine has read 25 % slow.
  const mawkMBps = mb / median([timeMawk(input), timeMawk(input), timeMawk(input)])
  const coreutilsMBps = mb / timeCoreutils(input)
  const out = join(BENCH_DIR, 'gib-out')
  const onMesh = async <T>(env: Record<string, string>, measure: (c: Cluster) => T): Promise<T> => {
    const cluster = await formedMesh(2, undefined, undefined, env)
    try {
      return measure(cluster)
    } finally {
      await cluster.stop()
    }
  }
  const { defaultWall, shared } = await onMesh({}, (c) => ({ defaultWall: medianWc(c, input, out).wallSeconds, shared: medianWc(c, input, out, ['--shared']).jobSeconds }))
  const fetchedWall = await onMesh({ MRP2P_LOCAL_READS: '0' }, (c) => medianWc(c, input, out).wallSeconds)
  const nodes2DefaultMBps = mb / defaultWall
  const nodes2SharedMBps = mb / shared
  const nodes2FetchedMBps = mb / fetchedWall
  return {
    corpusMB: mb,
    mawkMBps,
    coreutilsMBps,
    nodes2DefaultMBps,
    ratio2NodesDefaultVsMawk: nodes2DefaultMBps / mawkMBps,
    nodes2FetchedMBps,
    ratio2NodesFetchedVsMawk: nodes2FetchedMBps / mawkMBps,
    nodes2SharedMBps,
    ratio2NodesVsMawk: nodes2SharedMBps / mawkMBps,
    ratio2NodesVsCoreutils: nodes2SharedMBps / coreutilsMBps
  }
}
