import { resolve } from 'node:path'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { receiveBytes, receiveToFile, sendFileRange } from '../protocol/bulk.js'
import { withBulkStream } from '../protocol/bulk-rpc.js'
import {
  BulkResponseHeader, CommitResponse, JOB_PROTOCOLS, LocalCommitResponse, type CommitBlocksRequest, type CommitRequest, type FetchCodeRequest, type FetchSplitRequest, type JobRef, type LocalCommitRequest
} from '../protocol/job-messages.js'
import { request, type StreamOpener } from '../protocol/reqresp.js'
import type { BlockRef } from '../protocol/dataset-messages.js'
import { probeProof, probeSubject, readProbe } from '../protocol/local-read-probe.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { z } from 'zod'
import type { MapAssignment, ReduceAssignment } from './attempt.js'

function submitterAddrs (job: JobRef): Multiaddr[] {
  return job.submitter.addrs.map((a) => multiaddr(a))
}

/**
 * A worker's calls to a job's submitter, which serves the job's code and inputs and takes its output: all
 * bulk streams, dialled by the addresses the job carries (the submitter is no mesh member).
 */
export class SubmitterClient {
  /** `inPlace: false`: always stream parts, even to a submitter on this host (`--no-local-reads`). */
  constructor (private readonly self: string, private readonly network: StreamOpener, private readonly log: Logger, private readonly inPlace = true) {}

  /**
   * The job's bundled code, or with `file` one of a streaming job's files (its size as the spec says, refused
   * before anything is held when the submitter says otherwise); the caller checks it against the hash.
   */
  async fetchCode (job: JobRef, signal: AbortSignal, file?: { hash: string, bytes: number }): Promise<Uint8Array> {
    const hash = file?.hash ?? job.codeHash
    return await withBulkStream(this.network, submitterAddrs(job), JOB_PROTOCOLS.fetchCode, { hash } satisfies z.output<typeof FetchCodeRequest>, { signal }, async ({ reader }) => {
      const head = await reader.json(BulkResponseHeader, { signal })
      if (!head.ok) throw new Error(`submitter refused the job ${file === undefined ? 'code' : 'file'}: ${head.error}`)
      if (file !== undefined && head.bytes !== file.bytes) throw new Error(`submitter sent ${head.bytes} bytes for a job file of ${file.bytes}`)
      return await receiveBytes(reader, head.bytes, { signal })
    })
  }

  /** A map's split, into `file`. */
  async fetchSplit (job: JobRef, task: MapAssignment, file: string, signal: AbortSignal): Promise<void> {
    await withBulkStream(this.network, submitterAddrs(job), JOB_PROTOCOLS.fetchSplit, { jobId: job.jobId, index: task.split.index } satisfies z.output<typeof FetchSplitRequest>, { signal }, async ({ reader }) => {
      const head = await reader.json(BulkResponseHeader, { signal })
      if (!head.ok) throw new Error(`submitter refused split ${task.split.index}: ${head.error}`)
      if (head.bytes !== task.split.length) throw new Error(`submitter sent ${head.bytes} bytes for a split of ${task.split.length}`)
      await receiveToFile(reader, file, head.bytes, { signal })
    })
  }

  /** Tells the submitter where a reduce's part stored in the mesh is; it keeps the first commit of each partition. */
  async commitBlocks (job: JobRef, task: ReduceAssignment, epoch: number, part: { size: number, blocks: BlockRef[] }, signal: AbortSignal): Promise<void> {
    const body: z.output<typeof CommitBlocksRequest> = { jobId: job.jobId, partition: task.index, epoch, attempt: task.attempt, ...part }
    const answer = await request(this.network, submitterAddrs(job), JOB_PROTOCOLS.commitBlocks, body, CommitResponse, { signal, maxFrameBytes: 64 * 2 ** 20 })
    if (!answer.accepted) this.log.info({ job: job.jobId, partition: task.index, reason: answer.reason }, 'submitter kept another commit of this part')
  }

  /**
   * Hands a reduce's part to the submitter, which keeps the first complete commit of each partition: in place when
   * the submitter is on this host as this node's user (it takes the file from `path`), else streamed. Returns the
   * bytes streamed: 0 when taken in place.
   */
  async commitPart (job: JobRef, task: ReduceAssignment, epoch: number, path: string, bytes: number, signal: AbortSignal): Promise<number> {
    if (await this.commitInPlace(job, task, epoch, path, bytes, signal)) return 0
    await this.streamPart(job, task, epoch, path, bytes, signal)
    return bytes
  }

  /**
   * Short-circuit writes, the mirror of short-circuit reads: this node reads the submitter's probe (so it runs
   * on the submitter's host, as its user) and names its part's path. False: stream it instead (another host, an
   * older submitter, a file the submitter could not take).
   */
  private async commitInPlace (job: JobRef, task: ReduceAssignment, epoch: number, path: string, bytes: number, signal: AbortSignal): Promise<boolean> {
    const probe = job.submitter.commitProbe
    if (!this.inPlace || probe === undefined) return false
    const nonce = readProbe(probe)
    if (nonce === undefined) return false
    // Absolute: the submitter's working folder is not this node's (`join --data-dir` may be relative).
    const body: z.output<typeof LocalCommitRequest> = { jobId: job.jobId, partition: task.index, epoch, attempt: task.attempt, bytes, path: resolve(path), proof: probeProof(nonce, this.self, job.submitter.peer, probeSubject.localCommit({ jobId: job.jobId, partition: task.index })) }
    let answer: z.output<typeof LocalCommitResponse>
    try {
      answer = await request(this.network, submitterAddrs(job), JOB_PROTOCOLS.localCommit, body, LocalCommitResponse, { signal })
    } catch (err) {
      signal.throwIfAborted()
      this.log.debug({ job: job.jobId, partition: task.index, err: errorMessage(err) }, 'in-place commit failed: streaming the part')
      return false
    }
    if (!answer.inPlace) {
      this.log.info({ job: job.jobId, partition: task.index, reason: answer.reason }, 'submitter did not take the part in place: streaming it')
      return false
    }
    if (!answer.accepted) this.log.info({ job: job.jobId, partition: task.index, reason: answer.reason }, 'submitter kept another commit of this part')
    return true
  }

  private async streamPart (job: JobRef, task: ReduceAssignment, epoch: number, path: string, bytes: number, signal: AbortSignal): Promise<void> {
    await withBulkStream(this.network, submitterAddrs(job), JOB_PROTOCOLS.commit, { jobId: job.jobId, partition: task.index, epoch, attempt: task.attempt, bytes } satisfies z.output<typeof CommitRequest>, { signal }, async ({ stream, reader }) => {
      await sendFileRange(stream, path, 0, bytes, { signal })
      const answer = await reader.json(CommitResponse, { signal })
      if (!answer.accepted) this.log.info({ job: job.jobId, partition: task.index, reason: answer.reason }, 'submitter kept another commit of this part')
    })
  }
}
