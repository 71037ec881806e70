import type { Command } from 'commander'
import type { Multiaddr } from '@multiformats/multiaddr'
import { INFO_PROTOCOL } from '../protocol/ids.js'
import { InfoResponse } from '../protocol/info.js'
import type { JobRecord } from '../protocol/history-messages.js'
import { LOGS_PROTOCOL, LogsResponse, type AttemptLog } from '../protocol/log-messages.js'
import { errorMessage, InvalidArgumentError } from '../util/errors.js'
import { sleep } from '../util/sleep.js'
import { findJob } from './find-job.js'
import { shortPeer } from './job-format.js'
import { addMeshClientOptions, addrsFromInfo, withMeshClient, type MeshClient, type MeshClientFlags } from './mesh-client.js'

interface LogsFlags extends MeshClientFlags {
  task?: string
  follow?: boolean
}

type TaskFilter = { kind: 'map' | 'reduce', index: number }

function parseTask (raw: string | undefined): TaskFilter | undefined {
  if (raw === undefined) return undefined
  const m = /^(map|reduce)-(\d{1,7})$/.exec(raw)
  if (m === null) throw new InvalidArgumentError(`--task must name one task as map-N or reduce-N, got ${JSON.stringify(raw)}`)
  return { kind: m[1] as 'map' | 'reduce', index: Number(m[2]) }
}

const FOLLOW_POLL_MS = 500

/** `mrp2p logs ID`: what the job's own code wrote, per attempt, from the nodes that ran them. */
export function registerLogsCommand (program: Command): void {
  addMeshClientOptions(program
    .command('logs')
    .description('print what a job\'s code wrote (console.*, stdout, stderr), each line prefixed by task, attempt and node')
    .argument('<id>', 'the job id, or a prefix of it that only one job has')
    .option('--task <task>', 'only this task\'s attempts: map-N or reduce-N')
    .option('-f, --follow', 'keep printing a running job\'s lines until it ends'))
    .action(async (id: string, flags: LogsFlags) => {
      const task = parseTask(flags.task)
      await withMeshClient('logs', flags, async (client) => {
        let record = await findJob(client, id)
        const reader = new LogReader(client, record.jobId, task, flags.json === true)
        for (;;) {
          const ended = record.state !== 'running'
          await reader.readFrom(record)
          if (ended || flags.follow !== true) break
          await sleep(FOLLOW_POLL_MS)
          record = await findJob(client, record.jobId)
        }
        reader.finish()
      })
    })
}

/** Reads each attempt's log once, from where it left off, and prints whole lines with their prefix. */
class LogReader {
  private readonly offsets = new Map<string, { kind: 'map' | 'reduce', index: number, epoch: number, attempt: number, offset: number }>()
  /** Per attempt, the start of a line not ended yet, with the prefix it is printed under. */
  private readonly partial = new Map<string, { prefix: string, rest: string }>()
  private readonly nodes = new Map<string, string>()
  private addrs = new Map<string, Multiaddr[]>()
  private readonly warned = new Set<string>()

  constructor (private readonly client: MeshClient, private readonly jobId: string, private readonly task: TaskFilter | undefined, private readonly json: boolean) {}

  private sampleShown = false

  async readFrom (record: JobRecord): Promise<void> {
    // The sample hook ran on the submitter, before any task: its lines come first, once.
    if (!this.sampleShown && this.task === undefined && record.sampleLog !== undefined) {
      this.sampleShown = true
      const prefix = `[sample submitter ${shortPeer(record.submitter)}]`
      if (this.json) process.stdout.write(`${JSON.stringify({ task: 'sample', node: record.submitter, cut: 0, text: record.sampleLog })}\n`)
      else for (const line of record.sampleLog.replace(/\n$/, '').split('\n')) process.stdout.write(`${prefix} ${line}\n`)
    }
    for (const t of record.tasks) {
      if (this.task !== undefined && (t.kind !== this.task.kind || t.index !== this.task.index)) continue
      for (const a of t.attempts) this.nodes.set(`${t.kind}-${t.index}-${a.epoch}.${a.attempt}`, a.node)
    }
    const peers = [...new Set(this.nodes.values())]
    if (peers.some((p) => !this.addrs.has(p))) await this.learnAddrs()
    for (const peer of peers) {
      const addrs = this.addrs.get(peer)
      if (addrs === undefined || addrs.length === 0) { this.warn(peer, 'not a member now'); continue }
      for (;;) {
        let res
        try {
          res = await this.client.call(LOGS_PROTOCOL, { jobId: this.jobId, task: this.task, after: [...this.offsets.values()] }, LogsResponse, addrs)
        } catch (err) {
          this.warn(peer, errorMessage(err))
          break
        }
        for (const a of res.attempts) this.print(a, peer)
        if (!res.more) break
      }
    }
  }

  private async learnAddrs (): Promise<void> {
    const info = await this.client.call(INFO_PROTOCOL, {}, InfoResponse)
    const addrs = new Map<string, Multiaddr[]>()
    for (const peer of [info.peerId, ...info.members.map((m) => m.peerId)]) {
      const found = addrsFromInfo(info, peer, false)
      if (found !== undefined) addrs.set(peer, found)
    }
    this.addrs = addrs
  }

  private warn (peer: string, why: string): void {
    if (this.warned.has(peer)) return
    this.warned.add(peer)
    process.stderr.write(`mrp2p: the logs kept on ${peer} cannot be read (${why})\n`)
  }

  private print (a: AttemptLog, peer: string): void {
    const key = `${a.kind}-${a.index}-${a.epoch}.${a.attempt}`
    const before = this.offsets.get(key)?.offset ?? 0
    this.offsets.set(key, { kind: a.kind, index: a.index, epoch: a.epoch, attempt: a.attempt, offset: a.end })
    const prefix = `[${a.kind}-${a.index} ${a.epoch}.${a.attempt} ${shortPeer(peer)}]`
    if (this.json) {
      if (a.text !== '' || a.start > before) process.stdout.write(`${JSON.stringify({ task: `${a.kind}-${a.index}`, epoch: a.epoch, attempt: a.attempt, node: peer, cut: a.start - before, text: a.text })}\n`)
      return
    }
    if (a.start > before) process.stdout.write(`${prefix} [${a.start - before} characters cut: only the last part of an attempt's output is kept]\n`)
    const text = (this.partial.get(key)?.rest ?? '') + a.text
    const lines = text.split('\n')
    const rest = lines.pop() ?? ''
    for (const line of lines) process.stdout.write(`${prefix} ${line}\n`)
    if (rest === '') this.partial.delete(key)
    else this.partial.set(key, { prefix, rest })
    if (!a.running && rest !== '') {
      process.stdout.write(`${prefix} ${rest}\n`)
      this.partial.delete(key)
    }
  }

  /** A last line without its newline is still printed. */
  finish (): void {
    for (const { prefix, rest } of this.partial.values()) process.stdout.write(`${prefix} ${rest}\n`)
    this.partial.clear()
  }
}
