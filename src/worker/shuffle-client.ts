import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { receiveToFile } from '../protocol/bulk.js'
import { withBulkStream } from '../protocol/bulk-rpc.js'
import { BulkResponseHeader, JOB_PROTOCOLS, type FetchRunRequest } from '../protocol/job-messages.js'
import type { InfoTasks } from '../protocol/info.js'
import type { StreamOpener } from '../protocol/reqresp.js'
import { errorMessage } from '../util/errors.js'
import type { z } from 'zod'
import type { ReduceAssignment } from './attempt.js'
import type { IntermediateStore } from './intermediate-store.js'
import { TaskAbortedError } from './task-pool.js'

/** Where a reduce finds one map output: the peer that holds it. */
export type MapSource = ReduceAssignment['sources'][number]

/** A reduce's input could not be had; reported as a fetch failure, so the coordinator runs that map again. */
export class FetchError extends Error {
  static readonly NAME = 'FetchError'
  override readonly name = FetchError.NAME
  constructor (readonly mapIndex: number, readonly peer: string, message: string) {
    super(message)
  }
}

/** Remote fetches of map output: bytes in (as sent, and before compression), and how long any fetch ran. */
/** The shuffle counters of `status` (InfoTasks), every one of them present: this node counts them all. */
export type ShuffleStats = Required<NonNullable<InfoTasks['shuffle']>>

export interface FetchedRuns { paths: string[], bytes: number, rawBytes: number }

/** Fetches at once per reduce: enough to hide one mapper's latency, few enough to leave the link to the others. */
export const FETCHES_AT_ONCE = 4

/**
 * The reduce side of the shuffle: pulls one partition of every map output, from the peer that made it (over
 * fetch-run) or in place when this node holds it, and counts what it fetched.
 */
export class ShuffleClient {
  private bytes = 0
  private rawBytes = 0
  private busyMs = 0
  /** Fetches running now, and since when any has: `busyMs` is the union of their times, not their sum. */
  private active = 0
  private since = 0

  constructor (private readonly self: string, private readonly network: StreamOpener, private readonly store: IntermediateStore) {}

  stats (): ShuffleStats {
    return { bytes: this.bytes, rawBytes: this.rawBytes, busyMs: this.busyMs + (this.active > 0 ? performance.now() - this.since : 0) }
  }

  /**
   * The paths of partition `partition` of every source, in order (remote ones land in `work`), and what came
   * over the network for them: bytes as sent and before compression.
   */
  async fetchRuns (jobId: string, partition: number, sources: MapSource[], work: string, signal: AbortSignal): Promise<FetchedRuns> {
    const fetched: FetchedRuns = { paths: new Array(sources.length), bytes: 0, rawBytes: 0 }
    let next = 0
    const fetchSome = async (): Promise<void> => {
      while (next < sources.length) {
        const i = next++
        fetched.paths[i] = await this.fetchRun(jobId, partition, sources[i], work, signal, fetched)
      }
    }
    await Promise.all(Array.from({ length: Math.min(FETCHES_AT_ONCE, sources.length) }, fetchSome))
    return fetched
  }

  /** Partition `partition` of one source, as fetchRuns does it; what came over the network is added to `into`. */
  async fetchOne (jobId: string, partition: number, src: MapSource, work: string, signal: AbortSignal, into: FetchedRuns): Promise<string> {
    return await this.fetchRun(jobId, partition, src, work, signal, into)
  }

  private async fetchRun (jobId: string, partition: number, src: MapSource, work: string, signal: AbortSignal, fetched: FetchedRuns): Promise<string> {
    if (src.peer === this.self) {
      const local = this.store.runFile(jobId, src.mapIndex, partition)
      if (local === undefined) throw new FetchError(src.mapIndex, src.peer, `map ${src.mapIndex} output is no longer here`)
      return local.path
    }
    const path = join(work, `in-${src.mapIndex}`)
    if (this.active++ === 0) this.since = performance.now()
    try {
      await withBulkStream(this.network, peerIdFromString(src.peer), JOB_PROTOCOLS.fetchRun, { jobId, mapIndex: src.mapIndex, partition } satisfies z.output<typeof FetchRunRequest>, { signal, dialMs: 5_000 }, async ({ reader }) => {
        const head = await reader.json(BulkResponseHeader, { signal })
        if (!head.ok) throw new Error(head.error)
        await receiveToFile(reader, path, head.bytes, { signal })
        this.bytes += head.bytes
        this.rawBytes += head.rawBytes ?? head.bytes
        fetched.bytes += head.bytes
        fetched.rawBytes += head.rawBytes ?? head.bytes
      })
    } catch (err) {
      if (signal.aborted) throw new TaskAbortedError('task abandoned')
      throw new FetchError(src.mapIndex, src.peer, `cannot fetch map ${src.mapIndex} output from ${src.peer}: ${errorMessage(err)}`)
    } finally {
      if (--this.active === 0) this.busyMs += performance.now() - this.since
    }
    return path
  }
}
