import type { Command } from 'commander'
import { findJob } from './find-job.js'
import { formatJob } from './job-format.js'
import { addMeshClientOptions, withMeshClient, type MeshClientFlags } from './mesh-client.js'

/** `mrp2p job ID`: one job's whole record, with a table of its tasks' attempts. */
export function registerJobCommand (program: Command): void {
  addMeshClientOptions(program
    .command('job')
    .description('show one job in full: its record and every attempt of every task')
    .argument('<id>', 'the job id, or a prefix of it that only one job has'))
    .action(async (id: string, flags: MeshClientFlags) => {
      const record = await withMeshClient('job', flags, async (client) => await findJob(client, id))
      process.stdout.write(flags.json === true ? `${JSON.stringify(record, null, 2)}\n` : formatJob(record, Date.now()))
    })
}
