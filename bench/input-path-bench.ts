import { rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createClientLibp2p } from '../src/node/client-libp2p.js'
import { sendFileRange, writeJsonFrame } from '../src/protocol/bulk.js'
import { handleBulk } from '../src/protocol/bulk-rpc.js'
import { FetchSplitRequest, JOB_PROTOCOLS, type JobRef, type MapAssignment } from '../src/protocol/job-messages.js'
import { createLogger } from '../src/util/logger.js'
import { SubmitterClient } from '../src/worker/submitter-client.js'
import { bareStreamMBps } from './bare-stream.js'
import { BENCH_DIR, corpus } from './corpus.js'
import { median } from './engine-bench.js'

const ROUNDS = 3

/**
 * The submitter's input path alone (issue #18): a worker fetching a 256 MiB split from a submitter, file to file,
 * through the code both use (the submission's fetch-split answer, SubmitterClient.fetchSplit), against one bare
 * libp2p stream carrying as many bytes, in the same process and run. Rounds alternate; medians are compared.
 */
export async function runInputPathBench (): Promise<Record<string, number>> {
  const input = await corpus(256 * 2 ** 20)
  const bytes = statSync(input).size
  const log = createLogger('bench')
  const server = await createClientLibp2p({ version: 'bench', listen: ['/ip4/127.0.0.1/tcp/0'] })
  const client = await createClientLibp2p({ version: 'bench' })
  await server.start()
  await client.start()
  const target = join(BENCH_DIR, 'input-path-split')
  const fetched: number[] = []
  const bare: number[] = []
  try {
    // The submission's answer to fetch-split (src/submitter/submission.ts), for one split: the whole file.
    await handleBulk(server, {
      protocol: JOB_PROTOCOLS.fetchSplit,
      requestSchema: FetchSplitRequest,
      log,
      handle: async (_req, ctx) => {
        await writeJsonFrame(ctx.stream, { ok: true, bytes }, ctx)
        await sendFileRange(ctx.stream, input, 0, bytes, ctx)
      }
    })
    const worker = new SubmitterClient(client.peerId.toString(), client, log)
    const job = { jobId: 'bench', submitter: { peer: server.peerId.toString(), addrs: server.getMultiaddrs().map(String) } } as unknown as JobRef
    const task = { kind: 'map', jobId: 'bench', index: 0, attempt: 1, split: { document: input, index: 0, offset: 0, length: bytes, firstLine: 1 } } satisfies MapAssignment
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = performance.now()
      await worker.fetchSplit(job, task, target, AbortSignal.timeout(120_000))
      fetched.push(bytes / 1e6 / ((performance.now() - t0) / 1000))
      rmSync(target, { force: true })
      bare.push(await bareStreamMBps(bytes))
    }
  } finally {
    rmSync(target, { force: true })
    await client.stop()
    await server.stop()
  }
  const inputPathMBps = median(fetched)
  const bareMBps = median(bare)
  return { splitMB: bytes / 1e6, inputPathMBps, bareStreamMBps: bareMBps, ratioInputPathVsBareStream: inputPathMBps / bareMBps }
}
