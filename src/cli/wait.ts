import type { Command } from 'commander'
import type { Multiaddr } from '@multiformats/multiaddr'
import { HISTORY_PROTOCOLS, HistoryGetResponse, type JobRecord } from '../protocol/history-messages.js'
import { INFO_PROTOCOL } from '../protocol/ids.js'
import { InfoResponse } from '../protocol/info.js'
import { UserFacingError } from '../util/errors.js'
import { sleep } from '../util/sleep.js'
import { findJob } from './find-job.js'
import { addMeshClientOptions, memberAddrs, withMeshClient, type MeshClientFlags } from './mesh-client.js'

/** `wait`'s exit codes: a script tells the three ends apart (2 is commander's, for a usage error). */
export const WAIT_EXIT = { succeeded: 0, failed: 1, cancelled: 3 } as const

/** The job failed: `wait` exits 1. */
export class WaitedJobFailedError extends UserFacingError {
  static readonly NAME = 'WaitedJobFailedError'
  override readonly name = WaitedJobFailedError.NAME
  readonly exitCode = WAIT_EXIT.failed
}

/** The job was cancelled: `wait` exits 3. */
export class WaitedJobCancelledError extends UserFacingError {
  static readonly NAME = 'WaitedJobCancelledError'
  override readonly name = WaitedJobCancelledError.NAME
  readonly exitCode = WAIT_EXIT.cancelled
}

const POLL_MS = 500

/**
 * `mrp2p wait ID`: blocks until the job ends, reading its record (every member keeps one) from the node asked or,
 * when that one goes away, from another member. Exit 0 succeeded, 1 failed, 3 cancelled.
 */
export function registerWaitCommand (program: Command): void {
  addMeshClientOptions(program
    .command('wait')
    .description('wait until a job ends (a detached one too): exit 0 when it succeeded, 1 when it failed, 3 when it was cancelled')
    .argument('<id>', 'the job id, or a prefix of it that only one job has'))
    .action(async (id: string, flags: MeshClientFlags) => {
      const record = await withMeshClient('wait', flags, async (client) => {
        const first = await findJob(client, id)
        const info = await client.call(INFO_PROTOCOL, {}, InfoResponse)
        const targets: Array<Multiaddr[] | undefined> = [undefined, ...info.members.filter((m) => m.liveness !== 'dead').map((m) => memberAddrs(m.peerId, m.addrs))]
        let record: JobRecord = first
        let at = 0
        while (record.state === 'running') {
          await sleep(POLL_MS)
          // The node asked may die while the job runs: the next member answers with its copy of the record.
          for (let tried = 0; tried < targets.length; tried++) {
            try {
              const res = await client.call(HISTORY_PROTOCOLS.get, { ids: [first.jobId] }, HistoryGetResponse, targets[at])
              if (res.records[0] !== undefined) record = res.records[0]
              break
            } catch {
              at = (at + 1) % targets.length
            }
          }
        }
        return record
      })
      const seconds = record.startedAt !== undefined && record.endedAt !== undefined ? ` in ${((record.endedAt - record.startedAt) / 1000).toFixed(1)} s` : ''
      if (flags.json === true) process.stdout.write(`${JSON.stringify({ jobId: record.jobId, state: record.state, failure: record.failure })}\n`)
      if (record.state === 'cancelled') throw new WaitedJobCancelledError(`job ${record.jobId} was cancelled: ${record.failure?.message ?? 'by a user'}`)
      if (record.state === 'failed') throw new WaitedJobFailedError(`job ${record.jobId} failed: ${record.failure?.message ?? 'no reason recorded'} (mrp2p job ${record.jobId} shows its tasks)`)
      if (flags.json !== true) process.stdout.write(`job ${record.jobId} succeeded${seconds}${record.detached === undefined ? '' : ` → dataset ${record.detached.output}`}\n`)
    })
}
