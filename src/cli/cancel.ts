import type { Command } from 'commander'
import { INFO_PROTOCOL } from '../protocol/ids.js'
import { InfoResponse } from '../protocol/info.js'
import { CancelResponse, JOB_PROTOCOLS } from '../protocol/job-messages.js'
import { UserFacingError } from '../util/errors.js'
import { findJob } from './find-job.js'
import { addMeshClientOptions, addrsFromInfo, withMeshClient, type MeshClientFlags } from './mesh-client.js'

/** The job's record says it runs, but no coordinator holds it (its submitter and coordinator are both gone). */
export class JobNotRunningError extends UserFacingError {
  static readonly NAME = 'JobNotRunningError'
  override readonly name = JobNotRunningError.NAME
  readonly exitCode = 1
}

/** `mrp2p cancel ID`: asks the coordinator to end a running job everywhere. */
export function registerCancelCommand (program: Command): void {
  addMeshClientOptions(program
    .command('cancel')
    .description('end a running job everywhere: its attempts stop, its intermediate data goes, its submitter exits with "cancelled"')
    .argument('<id>', 'the job id, or a prefix of it that only one job has'))
    .action(async (id: string, flags: MeshClientFlags) => {
      const result = await withMeshClient('cancel', flags, async (client) => {
        const record = await findJob(client, id)
        if (record.state !== 'running') return { jobId: record.jobId, state: record.state, changed: false }
        const info = await client.call(INFO_PROTOCOL, {}, InfoResponse)
        if (info.coordinator === null) throw new JobNotRunningError(`no coordinator in the mesh now; job ${record.jobId} cannot be cancelled until one is elected`)
        const addrs = addrsFromInfo(info, info.coordinator) ?? []
        const answer = await client.call(JOB_PROTOCOLS.cancel, { jobId: record.jobId }, CancelResponse, addrs.length > 0 ? addrs : undefined)
        if (!answer.known) throw new JobNotRunningError(`job ${record.jobId} is not held by the coordinator (its submitter is gone): nothing to cancel`)
        return { jobId: record.jobId, state: answer.state ?? 'cancelled', changed: answer.state === 'cancelled' }
      })
      if (flags.json === true) process.stdout.write(`${JSON.stringify(result)}\n`)
      else if (result.changed) process.stdout.write(`job ${result.jobId} cancelled\n`)
      else process.stdout.write(`job ${result.jobId} already ${result.state}; nothing changed\n`)
    })
}
