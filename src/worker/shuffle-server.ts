import type { Startable } from '@libp2p/interface'
import { sendFileRange, writeJsonFrame } from '../protocol/bulk.js'
import { handleBulk, type BulkHandlerRegistration } from '../protocol/bulk-rpc.js'
import { FetchRunRequest, JOB_PROTOCOLS, type BulkResponseHeader } from '../protocol/job-messages.js'
import type { HandlerRegistrar } from '../protocol/reqresp.js'
import type { Logger } from '../util/logger.js'
import type { z } from 'zod'
import type { IntermediateStore } from './intermediate-store.js'

type Header = z.output<typeof BulkResponseHeader>

/** The map side of the shuffle: serves fetch-run, one partition of a finished map output held on this node. */
export class ShuffleServer implements Startable {
  private registration: BulkHandlerRegistration | undefined

  constructor (private readonly network: HandlerRegistrar, private readonly store: IntermediateStore, private readonly log: Logger) {}

  async start (): Promise<void> {
    this.registration = await handleBulk(this.network, {
      protocol: JOB_PROTOCOLS.fetchRun,
      requestSchema: FetchRunRequest,
      log: this.log,
      handle: async (req, ctx) => {
        const run = this.store.runFile(req.jobId, req.mapIndex, req.partition)
        if (run === undefined) {
          await writeJsonFrame(ctx.stream, { ok: false, error: `no output of map ${req.mapIndex} of job ${req.jobId} here` } satisfies Header, ctx)
          return
        }
        await writeJsonFrame(ctx.stream, { ok: true, bytes: run.bytes, rawBytes: this.store.runRawBytes(req.jobId, req.mapIndex, req.partition) } satisfies Header, ctx)
        await sendFileRange(ctx.stream, run.path, 0, run.bytes, ctx)
      }
    })
  }

  async stop (): Promise<void> {
    await this.registration?.unregister()
    this.registration = undefined
  }
}
