import { resolve } from 'node:path'
import type { Startable } from '@libp2p/interface'
import { sendFileRange, writeJsonFrame } from '../protocol/bulk.js'
import { handleBulk, type BulkHandlerRegistration } from '../protocol/bulk-rpc.js'
import { FetchRunRequest, JOB_PROTOCOLS, LocalRunRequest, type BulkResponseHeader, type LocalRunResponse } from '../protocol/job-messages.js'
import { probeProof, probeSubject, readProbe } from '../protocol/local-read-probe.js'
import { handleRequests, type HandlerRegistrar } from '../protocol/reqresp.js'
import type { Logger } from '../util/logger.js'
import type { z } from 'zod'
import type { IntermediateStore } from './intermediate-store.js'

type Header = z.output<typeof BulkResponseHeader>

export interface ShuffleServerOptions {
  /** This node's PeerId: what a local-run proof is bound to. */
  self: string
  /** false: answer no job/local-run, so reducers on this host fetch as from any other (`join --no-local-shuffle`). */
  inPlace?: boolean
}

/**
 * The map side of the shuffle: serves fetch-run, one partition of a finished map output held on this node, and
 * local-run, where that run lies, to a reducer on this host that proves it (shuffle-client.ts).
 */
export class ShuffleServer implements Startable {
  private registrations: BulkHandlerRegistration[] = []

  constructor (private readonly network: HandlerRegistrar, private readonly store: IntermediateStore, private readonly log: Logger, private readonly opts: ShuffleServerOptions) {}

  async start (): Promise<void> {
    this.registrations.push(await handleBulk(this.network, {
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
    }))
    if (this.opts.inPlace === false) return
    this.registrations.push(await handleRequests(this.network, {
      protocol: JOB_PROTOCOLS.localRun,
      requestSchema: LocalRunRequest,
      log: this.log,
      handle: (req, ctx): z.input<typeof LocalRunResponse> => {
        const nonce = readProbe(req.probe)
        if (nonce === undefined) return { ok: false, reason: 'probe not readable here: another host or another user', elsewhere: true }
        const run = this.store.runFile(req.jobId, req.mapIndex, req.partition)
        if (run === undefined) return { ok: false, reason: `no output of map ${req.mapIndex} of job ${req.jobId} here` }
        // Absolute: the reducer's working folder is not this node's (`join --data-dir` may be relative).
        const proof = probeProof(nonce, this.opts.self, ctx.remotePeer.toString(), probeSubject.localRun(req))
        return { ok: true, proof, path: resolve(run.path), bytes: run.bytes, rawBytes: this.store.runRawBytes(req.jobId, req.mapIndex, req.partition) }
      }
    }))
  }

  async stop (): Promise<void> {
    const registrations = this.registrations
    this.registrations = []
    for (const r of registrations) await r.unregister()
  }
}
