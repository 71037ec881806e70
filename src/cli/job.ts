import type { Command } from 'commander'
import { INFO_PROTOCOL } from '../protocol/ids.js'
import { InfoResponse } from '../protocol/info.js'
import type { JobRecord } from '../protocol/history-messages.js'
import { LOGS_PROTOCOL, LogsResponse } from '../protocol/log-messages.js'
import { errorMessage } from '../util/errors.js'
import { findJob } from './find-job.js'
import { formatJob, shortPeer } from './job-format.js'
import { addMeshClientOptions, addrsFromInfo, withMeshClient, type MeshClient, type MeshClientFlags } from './mesh-client.js'

/** Lines of the failing attempt's log that `job` shows. */
const TAIL_LINES = 20

/** `mrp2p job ID`: one job's whole record, with a table of its tasks' attempts, and for a failed job its cause's log. */
export function registerJobCommand (program: Command): void {
  addMeshClientOptions(program
    .command('job')
    .description('show one job in full: its record and every attempt of every task')
    .argument('<id>', 'the job id, or a prefix of it that only one job has'))
    .action(async (id: string, flags: MeshClientFlags) => {
      await withMeshClient('job', flags, async (client) => {
        const record = await findJob(client, id)
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify(record, null, 2)}\n`)
          return
        }
        process.stdout.write(formatJob(record, Date.now()))
        if (record.state === 'failed') process.stdout.write(await failureTail(client, record))
      })
    })
}

/** The last lines the failing task's last failed attempt wrote, read from the node that ran it. */
async function failureTail (client: MeshClient, record: JobRecord): Promise<string> {
  const m = /^(map|reduce) (\d+)$/.exec(record.failure?.task ?? '')
  if (m === null) return ''
  const kind = m[1] as 'map' | 'reduce'
  const index = Number(m[2])
  const attempt = record.tasks.find((t) => t.kind === kind && t.index === index)?.attempts.filter((a) => a.outcome === 'failed').at(-1)
  if (attempt === undefined) return ''
  const head = `\nlog of ${kind}-${index} attempt ${attempt.epoch}.${attempt.attempt} on ${shortPeer(attempt.node)}`
  try {
    const info = await client.call(INFO_PROTOCOL, {}, InfoResponse)
    const addrs = addrsFromInfo(info, attempt.node)
    if (addrs === undefined) return `${head}: its node is not a member now\n`
    const res = await client.call(LOGS_PROTOCOL, { jobId: record.jobId, task: { kind, index } }, LogsResponse, addrs)
    const text = res.attempts.find((a) => a.epoch === attempt.epoch && a.attempt === attempt.attempt)?.text ?? ''
    const lines = text.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1)
    if (lines.length === 0) return `${head}: it wrote nothing\n`
    return `${head} (last ${Math.min(TAIL_LINES, lines.length)} lines):\n${lines.slice(-TAIL_LINES).map((l) => `  ${l}`).join('\n')}\n`
  } catch (err) {
    return `${head}: cannot be read (${errorMessage(err)})\n`
  }
}
