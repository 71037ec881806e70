import type { Command } from 'commander'
import { HISTORY_PROTOCOLS, HistoryListResponse, JobStateSchema } from '../protocol/history-messages.js'
import { InvalidArgumentError } from '../util/errors.js'
import { parseIntArg } from './arg-parsers.js'
import { formatJobs } from './job-format.js'
import { addMeshClientOptions, withMeshClient, type MeshClientFlags } from './mesh-client.js'

interface JobsFlags extends MeshClientFlags {
  state?: string
  limit?: string
}

/** `mrp2p jobs`: the mesh's jobs, newest first, from the history of the node asked. */
export function registerJobsCommand (program: Command): void {
  addMeshClientOptions(program
    .command('jobs')
    .description('list the mesh\'s jobs, newest first')
    .option('--state <state>', `only jobs in this state (${JobStateSchema.options.join(', ')})`)
    .option('--limit <n>', 'at most this many', '50'))
    .action(async (flags: JobsFlags) => {
      const state = flags.state === undefined ? undefined : JobStateSchema.safeParse(flags.state)
      if (state !== undefined && !state.success) throw new InvalidArgumentError(`--state must be one of ${JobStateSchema.options.join(', ')}, got ${JSON.stringify(flags.state)}`)
      const limit = parseIntArg(flags.limit ?? '50', '--limit', 1, 100_000)
      const res = await withMeshClient('jobs', flags, async (client) => await client.call(HISTORY_PROTOCOLS.list, { state: state?.data, limit }, HistoryListResponse))
      process.stdout.write(flags.json === true ? `${JSON.stringify(res.jobs, null, 2)}\n` : formatJobs(res.jobs, Date.now()))
    })
}
