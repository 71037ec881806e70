import { mkdirSync, renameSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Startable } from '@libp2p/interface'
import type { z } from 'zod'
import { JOB_PROTOCOLS, ReplicateRequest, type ReplicateResponse } from '../protocol/job-messages.js'
import type { RegisteredHandler } from '../protocol/reqresp.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { IntermediateStore } from './intermediate-store.js'
import type { FetchedRuns, ShuffleClient } from './shuffle-client.js'
import type { CoordinatorRef, WorkerRpc } from './worker-components.js'

export interface ReplicaIntakeParts {
  rpc: WorkerRpc
  coordinator: () => CoordinatorRef | undefined
  store: IntermediateStore
  shuffle: ShuffleClient
  log: Logger
}

/**
 * The worker's end of `job/replicate` (`submit --intermediate-replicas`): on the order of the coordinator it
 * follows, pulls every partition of a finished map output from its mapper, as a reducer would, and publishes
 * it in its own store under the same name. Reducers are then sent here once the mapper is gone, and the copy
 * is in this node's inventory for a new coordinator.
 */
export class ReplicaIntake implements Startable {
  private handler: RegisteredHandler | undefined
  private lifetime = new AbortController()
  /** Copies made and failed here since start (`status --json` tasks.copies). */
  readonly copies = { made: 0, failed: 0 }

  constructor (private readonly parts: ReplicaIntakeParts) {}

  async start (): Promise<void> {
    this.lifetime = new AbortController()
    this.handler = await this.parts.rpc.serve(JOB_PROTOCOLS.replicate, ReplicateRequest, async (req, from, signal) => await this.onReplicate(req, from, signal))
  }

  async stop (): Promise<void> {
    this.lifetime.abort()
    await this.handler?.unregister()
    this.handler = undefined
  }

  private async onReplicate (req: z.output<typeof ReplicateRequest>, from: string, signal: AbortSignal | undefined): Promise<z.input<typeof ReplicateResponse>> {
    const { store, shuffle, log } = this.parts
    const lead = this.parts.coordinator()
    if (lead === undefined || lead.peer !== from || lead.epoch !== req.epoch) return { ok: false, reason: 'not the coordinator this node follows' }
    if (store.runFile(req.jobId, req.mapIndex, 0) !== undefined) return { ok: true }
    const both = signal === undefined ? this.lifetime.signal : AbortSignal.any([signal, this.lifetime.signal])
    const work = store.workDir(req.jobId, 'map', req.mapIndex, `copy-${req.epoch}`)
    try {
      const runs = store.runPaths(work, req.reduces)
      const partitionBytes: number[] = []
      const partitionRawBytes: number[] = []
      for (let p = 0; p < req.reduces; p++) {
        // One folder per partition: the shuffle names what it receives after the map, not the partition.
        const dir = join(work, `p${p}`)
        mkdirSync(dir)
        const got: FetchedRuns = { paths: [], bytes: 0, rawBytes: 0, linkedBytes: 0, linkedRawBytes: 0 }
        renameSync(await shuffle.fetchOne(req.jobId, p, { mapIndex: req.mapIndex, peer: req.from }, dir, both, got), runs[p])
        partitionBytes.push(statSync(runs[p]).size)
        partitionRawBytes.push(got.rawBytes + got.linkedRawBytes)
      }
      store.commitMapOutput(work, { jobId: req.jobId, mapIndex: req.mapIndex, attempt: `copy-${req.epoch}`, partitionBytes, partitionRawBytes })
      this.copies.made++
      return { ok: true }
    } catch (err) {
      this.copies.failed++
      log.info({ job: req.jobId, map: req.mapIndex, from: req.from, err: errorMessage(err) }, 'could not copy a map output')
      return { ok: false, reason: errorMessage(err).slice(0, 500) }
    } finally {
      store.removeWorkDir(work)
    }
  }
}
