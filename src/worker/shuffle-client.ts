import { linkSync, lstatSync, rmSync } from 'node:fs'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { receiveToFile } from '../protocol/bulk.js'
import { withBulkStream } from '../protocol/bulk-rpc.js'
import { BulkResponseHeader, JOB_PROTOCOLS, LocalRunResponse, type FetchRunRequest, type LocalRunRequest } from '../protocol/job-messages.js'
import type { InfoTasks } from '../protocol/info.js'
import { probeProof, probeSubject } from '../protocol/local-read-probe.js'
import { request, type StreamOpener } from '../protocol/reqresp.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { z } from 'zod'
import type { ReduceAssignment } from './attempt.js'
import { isRunPath, type IntermediateStore } from './intermediate-store.js'
import type { NodeProbe } from './node-probe.js'
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

/**
 * A reduce's inputs: their paths; what came over streams (as sent, and before compression); what was linked in place
 * (as stored, and before compression).
 */
export interface FetchedRuns { paths: string[], bytes: number, rawBytes: number, linkedBytes: number, linkedRawBytes: number }

/** Fetches at once per reduce: enough to hide one mapper's latency, few enough to leave the link to the others. */
export const FETCHES_AT_ONCE = 4

/** Mappers known to be on another host (or another user), kept so that their later runs do not ask again. */
const REMEMBERED_PEERS = 256

export interface ShuffleClientOptions {
  /** false: fetch every run over a stream, even from a mapper on this host (`join --no-local-shuffle`); default true. */
  inPlace?: boolean
  /** What proves this node's host to a mapper. */
  probes: NodeProbe
  /**
   * Copy runs instead of linking them (`join --sandbox`): a sandboxed reduce may write its own folder, and a link there
   * is the mapper's file.
   */
  copy?: boolean
  log: Logger
}

/**
 * The reduce side of the shuffle: pulls one partition of every map output, from the peer that made it (over
 * fetch-run), linked in place from a mapper on this host (job/local-run), or read where it is when this node holds
 * it, and counts what it fetched.
 */
export class ShuffleClient {
  private bytes = 0
  private rawBytes = 0
  private busyMs = 0
  private inPlaceRuns = 0
  private inPlaceBytes = 0
  /** Fetches running now, and since when any has: `busyMs` is the union of their times, not their sum. */
  private active = 0
  private since = 0
  private readonly elsewhere = new Set<string>()
  private readonly inPlace: boolean
  private readonly copy: boolean
  private readonly probes: NodeProbe
  private readonly log: Logger

  constructor (private readonly self: string, private readonly network: StreamOpener, private readonly store: IntermediateStore, opts: ShuffleClientOptions) {
    this.inPlace = opts.inPlace !== false
    this.copy = opts.copy === true
    this.probes = opts.probes
    this.log = opts.log
  }

  stats (): ShuffleStats {
    return { bytes: this.bytes, rawBytes: this.rawBytes, busyMs: this.busyMs + (this.active > 0 ? performance.now() - this.since : 0), inPlaceRuns: this.inPlaceRuns, inPlaceBytes: this.inPlaceBytes }
  }

  /**
   * The paths of partition `partition` of every source, in order (remote ones land in `work`), and what came
   * over the network for them: bytes as sent and before compression.
   */
  async fetchRuns (jobId: string, partition: number, sources: MapSource[], work: string, signal: AbortSignal): Promise<FetchedRuns> {
    const fetched: FetchedRuns = { paths: new Array(sources.length), bytes: 0, rawBytes: 0, linkedBytes: 0, linkedRawBytes: 0 }
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
    const linked = await this.linkInPlace(jobId, partition, src, path, signal)
    if (linked !== undefined) {
      fetched.linkedBytes += linked.bytes
      fetched.linkedRawBytes += linked.rawBytes
      return path
    }
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

  /**
   * Host-local reads, as Spark's `spark.shuffle.readHostLocalDisk`: a mapper that reads this node's probe (so runs on
   * this host, as this node's user) names its run's file, and the reduce links it into its own folder (copies it,
   * across file systems) instead of fetching it over a stream; returns the run's bytes. Undefined: fetch it. Another
   * host, an older mapper, a path not shaped like a run, a file gone or not the size said: each only means the stream.
   */
  private async linkInPlace (jobId: string, partition: number, src: MapSource, path: string, signal: AbortSignal): Promise<{ bytes: number, rawBytes: number } | undefined> {
    if (!this.inPlace || this.elsewhere.has(src.peer)) return undefined
    const probe = this.probes.get()
    if (probe === undefined) return undefined
    let answer: z.output<typeof LocalRunResponse>
    try {
      answer = await request(this.network, peerIdFromString(src.peer), JOB_PROTOCOLS.localRun,
        { jobId, mapIndex: src.mapIndex, partition, probe: probe.path } satisfies z.output<typeof LocalRunRequest>, LocalRunResponse,
        { signal, timeouts: { dialMs: 5_000, firstByteMs: 10_000, responseMs: 10_000 } })
    } catch (err) {
      // A mapper of an older version (or `--no-local-shuffle`) does not speak the protocol: not asked again. Any
      // other failure, the fetch meets too.
      if (signal.aborted) throw new TaskAbortedError('task abandoned')
      if (err instanceof Error && err.name === 'UnsupportedProtocolError') this.remember(src.peer)
      this.log.debug({ job: jobId, map: src.mapIndex, peer: src.peer, err: errorMessage(err) }, 'local-run check failed: fetching')
      return undefined
    }
    if (!answer.ok) {
      if (answer.elsewhere === true) this.remember(src.peer)
      this.log.debug({ job: jobId, map: src.mapIndex, peer: src.peer, reason: answer.reason }, 'map output not linked in place: fetching')
      return undefined
    }
    const proof = probeProof(probe.nonce, src.peer, this.self, probeSubject.localRun({ jobId, mapIndex: src.mapIndex, partition }))
    if (answer.proof !== proof || !isRunPath(answer.path, jobId, src.mapIndex, partition)) {
      this.remember(src.peer)
      this.log.warn({ job: jobId, map: src.mapIndex, peer: src.peer, path: answer.path }, 'a mapper named a run it could not have: fetching from it instead')
      return undefined
    }
    try {
      rmSync(path, { force: true })
      // A link named like a run is not one: link() follows it on some systems, and a copy always would.
      const source = lstatSync(answer.path)
      if (!source.isFile()) throw new Error('not a regular file')
      let copied = this.copy
      if (!copied) {
        try {
          linkSync(answer.path, path)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
          copied = true
        }
      }
      if (copied) await copyFile(answer.path, path)
      const got = lstatSync(path)
      if (!got.isFile()) throw new Error('not a regular file')
      if (!copied && (got.ino !== source.ino || got.dev !== source.dev)) throw new Error('the link is not the run')
      if (got.size !== answer.bytes) throw new Error(`holds ${got.size} bytes, not ${answer.bytes}`)
    } catch (err) {
      rmSync(path, { force: true })
      this.log.debug({ job: jobId, map: src.mapIndex, path: answer.path, err: errorMessage(err) }, 'map output could not be linked in place: fetching')
      return undefined
    }
    this.inPlaceRuns++
    this.inPlaceBytes += answer.bytes
    return { bytes: answer.bytes, rawBytes: answer.rawBytes ?? answer.bytes }
  }

  private remember (peer: string): void {
    if (this.elsewhere.size >= REMEMBERED_PEERS) this.elsewhere.delete(this.elsewhere.values().next().value as string)
    this.elsewhere.add(peer)
  }
}
