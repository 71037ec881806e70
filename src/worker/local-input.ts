import { multiaddr } from '@multiformats/multiaddr'
import { JOB_PROTOCOLS, LocalReadResponse, type JobRef, type LocalReadRequest, type MapAssignment } from '../protocol/job-messages.js'
import { request, type StreamOpener } from '../protocol/reqresp.js'
import { errorMessage } from '../util/errors.js'
import { fileIdentity, sameIdentity } from '../util/same-file.js'
import type { Logger } from '../util/logger.js'
import { probeProof, probeSubject } from '../protocol/local-read-probe.js'
import type { NodeProbe } from './node-probe.js'
import type { z } from 'zod'

/** Jobs whose submitter is known to be elsewhere, kept so that their later maps do not ask again. */
const REMEMBERED_JOBS = 256

/**
 * Short-circuit reads, as HDFS has them: a map whose submitter runs on this host, as this node's user, reads its
 * split from the submitter's file in place instead of fetching it over a stream. Each split is checked: the
 * submitter must read this worker's probe (the same host and user), and the file must still be the one it
 * planned the job on (device, inode, size, modification time). Any check that fails means: fetch it.
 */
export class LocalInputs {
  private readonly elsewhere = new Set<string>()

  constructor (private readonly self: string, private readonly network: StreamOpener, private readonly probes: NodeProbe, private readonly log: Logger, private readonly enabled = true) {}

  /** The file to read the split from in place, or undefined: fetch it from the submitter. */
  async inPlace (job: JobRef, task: MapAssignment, signal: AbortSignal): Promise<string | undefined> {
    if (!this.enabled || this.elsewhere.has(job.jobId)) return undefined
    const probe = this.probes.get()
    if (probe === undefined) return undefined
    let answer: z.output<typeof LocalReadResponse>
    try {
      answer = await request(this.network, job.submitter.addrs.map((a) => multiaddr(a)), JOB_PROTOCOLS.localRead,
        { jobId: job.jobId, index: task.split.index, probe: probe.path } satisfies z.output<typeof LocalReadRequest>, LocalReadResponse,
        { signal, timeouts: { dialMs: 5_000, firstByteMs: 3_000, responseMs: 3_000 } })
    } catch (err) {
      // A submitter of an older version does not speak the protocol; any other failure, the fetch will meet too.
      signal.throwIfAborted()
      this.log.debug({ job: job.jobId, split: task.split.index, err: errorMessage(err) }, 'local-read check failed: fetching')
      return undefined
    }
    if (!answer.ok || answer.proof !== probeProof(probe.nonce, job.submitter.peer, this.self, probeSubject.localRead({ jobId: job.jobId, index: task.split.index }))) {
      this.remember(job.jobId)
      this.log.debug({ job: job.jobId, reason: answer.ok ? 'wrong proof of the nonce' : answer.reason }, 'submitter not on this host: fetching its inputs')
      return undefined
    }
    const now = fileIdentity(answer.path)
    if (now === undefined || !sameIdentity(now, answer.file)) {
      this.log.info({ job: job.jobId, split: task.split.index, path: answer.path }, 'input changed since submit (or unreadable here): fetching')
      return undefined
    }
    return answer.path
  }

  private remember (jobId: string): void {
    if (this.elsewhere.size >= REMEMBERED_JOBS) this.elsewhere.delete(this.elsewhere.values().next().value as string)
    this.elsewhere.add(jobId)
  }
}
