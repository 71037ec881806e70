import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Command } from 'commander'
import { INFO_PROTOCOL } from '../protocol/ids.js'
import { InfoResponse } from '../protocol/info.js'
import { CancelResponse, JOB_PROTOCOLS } from '../protocol/job-messages.js'
import { sealCancel } from '../protocol/job-seal.js'
import { UserFacingError } from '../util/errors.js'
import { findJob } from './find-job.js'
import { resolveIdentity } from './identity-options.js'
import { addMeshClientOptions, addrsFromInfo, withMeshClient, type MeshClientFlags } from './mesh-client.js'

/** The job's record says it runs, but no coordinator holds it (its submitter and coordinator are both gone). */
export class JobNotRunningError extends UserFacingError {
  static readonly NAME = 'JobNotRunningError'
  override readonly name = JobNotRunningError.NAME
  readonly exitCode = 1
}

/** The coordinator would not let this identity cancel (its --submitters does not list it). */
export class CancelRefusedError extends UserFacingError {
  static readonly NAME = 'CancelRefusedError'
  override readonly name = CancelRefusedError.NAME
  readonly exitCode = 1
}

/** `mrp2p cancel ID`: asks the coordinator to end a running job everywhere. */
export function registerCancelCommand (program: Command): void {
  addMeshClientOptions(program
    .command('cancel')
    .description('end a running job everywhere: its attempts stop, its intermediate data goes, its submitter exits with "cancelled"')
    .argument('<id>', 'the job id, or a prefix of it that only one job has'))
    .option('--identity <file>', 'the submitter identity to ask as (mrp2p keygen --identity; env MRP2P_IDENTITY): a coordinator with --submitters lets only those it lists cancel')
    .action(async (id: string, flags: MeshClientFlags & { identity?: string }) => {
      const identity = resolveIdentity(flags.identity)
      const result = await withMeshClient('cancel', flags, async (client) => {
        const record = await findJob(client, id)
        if (record.state !== 'running') return { jobId: record.jobId, state: record.state, changed: false }
        const info = await client.call(INFO_PROTOCOL, {}, InfoResponse)
        if (info.coordinator === null) throw new JobNotRunningError(`no coordinator in the mesh now; job ${record.jobId} cannot be cancelled until one is elected`)
        const addrs = addrsFromInfo(info, info.coordinator) ?? []
        const seal = await sealCancel(record.jobId, identity ?? await generateKeyPair('Ed25519'))
        const answer = await client.call(JOB_PROTOCOLS.cancel, { jobId: record.jobId, seal }, CancelResponse, addrs.length > 0 ? addrs : undefined)
        if (answer.refused !== undefined) throw new CancelRefusedError(`cannot cancel job ${record.jobId}: ${answer.refused}`)
        if (!answer.known) throw new JobNotRunningError(`job ${record.jobId} is not held by the coordinator (its submitter is gone): nothing to cancel`)
        return { jobId: record.jobId, state: answer.state ?? 'cancelled', changed: answer.state === 'cancelled' }
      })
      if (flags.json === true) process.stdout.write(`${JSON.stringify(result)}\n`)
      else if (result.changed) process.stdout.write(`job ${result.jobId} cancelled\n`)
      else process.stdout.write(`job ${result.jobId} already ${result.state}; nothing changed\n`)
    })
}
