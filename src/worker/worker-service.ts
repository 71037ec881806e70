import { randomUUID } from 'node:crypto'
import { statfsSync } from 'node:fs'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { receiveBytes, receiveToFile, sendFileRange, writeJsonFrame } from '../protocol/bulk.js'
import { handleBulk, openBulk } from '../protocol/bulk-rpc.js'
import {
  BulkResponseHeader, CommitResponse, DoJobRequest, DoJobResponse, EndRequest, FetchRunRequest, JOB_PROTOCOLS,
  OkResponse, RegisterResponse, type JobRef
} from '../protocol/job-messages.js'
import type { HandlerRegistrar, StreamOpener } from '../protocol/reqresp.js'
import type { Rpc } from '../protocol/rpc.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { CodeCache } from './code-cache.js'
import { EpochFence } from './epoch-fence.js'
import { IntermediateStore } from './intermediate-store.js'
import { TaskAbortedError, TaskPool } from './task-pool.js'
import type { z } from 'zod'

type DoJob = z.output<typeof DoJobRequest>
type Task = DoJob['task']

export interface CoordinatorRef { peer: string, epoch: number }

/** What a worker needs from the node: the network and who leads now. */
export interface WorkerServiceComponents {
  self: string
  network: StreamOpener & HandlerRegistrar
  rpc: Rpc
  dataDir: string
  coordinator: () => CoordinatorRef | undefined
  log: Logger
}

export interface WorkerServiceInit {
  slots: number
  version: string
  /** Heap cap of one task thread (MiB); a job that allocates past it fails that attempt only. */
  taskMemoryMb?: number
  /** Run each attempt in a child process under Node's permission model instead of a thread (docs/isolation.md). */
  sandbox?: boolean
  /** An attempt starts only with at least this much free disk under the data dir, beyond what its input needs (default 64 MiB). */
  minFreeDiskBytes?: number
  registerIntervalMs?: number
}

export interface WorkerStats {
  started: number
  succeeded: number
  failed: number
  staleEpochRefusals: number
  running: number
  /** Jobs with a task running here or files in the intermediate store. */
  jobs: string[]
  shuffle: { bytes: number, rawBytes: number, busyMs: number }
}

/** The node lacks the disk an attempt needs. */
class DiskFullError extends Error {
  static readonly NAME = 'DiskFullError'
  override readonly name = DiskFullError.NAME
}

/**
 * Why an attempt failed, as the scheduler counts it: running out of disk (checked up front, or ENOSPC while
 * writing) counts toward the job's attempts like an error in its code, so a job no node has room for fails
 * with that reason instead of being retried for ever.
 */
function failureCause (message: string, userCode: boolean): 'user' | 'worker' | 'resource' {
  // Only the node's own writes are judged by their message: a job's error text says nothing about this node.
  if (userCode) return 'user'
  return /ENOSPC|no space left on device|not enough free disk/i.test(message) ? 'resource' : 'worker'
}

function mib (bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1)
}

class FetchError extends Error {
  constructor (readonly mapIndex: number, readonly peer: string, message: string) {
    super(message)
  }
}

function submitterAddrs (job: JobRef): Multiaddr[] {
  return job.submitter.addrs.map((a) => multiaddr(a))
}

/**
 * The worker role: accepts DoJob orders fenced by epoch, runs each attempt on
 * a task thread, keeps map outputs on this node's disk and serves them to
 * reducers, commits reduce output to the submitter, and reports to the
 * coordinator. Registers with every new coordinator, with its inventory.
 */
export class WorkerService {
  private readonly store: IntermediateStore
  private readonly pool: TaskPool
  private readonly code: CodeCache
  readonly fence: EpochFence
  private readonly running = new Map<string, AbortController>()
  /** When each job's end order came (performance.now()), kept for ENDED_MEMORY_MS. */
  private readonly endedAt = new Map<string, number>()
  private registeredWith: string | undefined
  private registeredAt = 0
  private registerTimer: NodeJS.Timeout | undefined
  private registering = false
  private readonly stats = { started: 0, succeeded: 0, failed: 0 }
  /** Remote fetches of map output: bytes in (as sent, and before compression), and the union of the times any ran. */
  private readonly shuffle = { bytes: 0, rawBytes: 0, busyMs: 0, active: 0, since: 0 }
  private readonly log: Logger
  private readonly incarnation = randomUUID()

  constructor (private readonly c: WorkerServiceComponents, private readonly init: WorkerServiceInit) {
    this.store = new IntermediateStore(c.dataDir)
    this.pool = new TaskPool({ slots: init.slots, memoryMb: init.taskMemoryMb, isolation: init.sandbox === true ? 'sandbox' : 'thread', log: c.log })
    this.code = new CodeCache(c.dataDir)
    this.fence = new EpochFence(c.dataDir)
    this.log = c.log.child({ component: 'worker' })
  }

  getStats (): WorkerStats {
    const jobs = new Set(this.store.jobs())
    for (const key of this.running.keys()) jobs.add(key.slice(0, key.indexOf('/')))
    const { bytes, rawBytes, busyMs, active, since } = this.shuffle
    return {
      ...this.stats,
      staleEpochRefusals: this.fence.refusals,
      running: this.running.size,
      jobs: [...jobs].sort(),
      shuffle: { bytes, rawBytes, busyMs: busyMs + (active > 0 ? performance.now() - since : 0) }
    }
  }

  async start (): Promise<void> {
    this.pool.start()
    await this.c.rpc.serve(JOB_PROTOCOLS.doJob, DoJobRequest, (req, from) => this.onDoJob(req, from))
    await this.c.rpc.serve(JOB_PROTOCOLS.end, EndRequest, (req, from) => {
      // Only the coordinator this node follows may end a job here (and so delete its files).
      if (this.c.coordinator()?.peer !== from) return { ok: true as const }
      if (req.task === undefined) this.endJob(req.jobId)
      else this.running.get(attemptKey(req.jobId, req.task, req.epoch))?.abort()
      return { ok: true as const }
    })
    await handleBulk(this.c.network, {
      protocol: JOB_PROTOCOLS.fetchRun,
      requestSchema: FetchRunRequest,
      log: this.log,
      handle: async (req, ctx) => {
        const run = this.store.runFile(req.jobId, req.mapIndex, req.partition)
        if (run === undefined) {
          await writeJsonFrame(ctx.stream, { ok: false, error: `no output of map ${req.mapIndex} of job ${req.jobId} here` }, ctx)
          return
        }
        await writeJsonFrame(ctx.stream, { ok: true, bytes: run.bytes, rawBytes: this.store.runRawBytes(req.jobId, req.mapIndex, req.partition) }, ctx)
        await sendFileRange(ctx.stream, run.path, 0, run.bytes, ctx)
      }
    })
    this.registerTimer = setInterval(() => { void this.registerIfNeeded() }, this.init.registerIntervalMs ?? 500)
    this.registerTimer.unref()
  }

  async stop (): Promise<void> {
    clearInterval(this.registerTimer)
    for (const ac of this.running.values()) ac.abort()
    await this.pool.stop()
  }

  /** Registers with the current coordinator once per (coordinator, epoch). */
  private async registerIfNeeded (): Promise<void> {
    const coord = this.c.coordinator()
    if (coord === undefined || this.registering) return
    const key = `${coord.peer}@${coord.epoch}`
    // Registering again now and then is how a coordinator that dropped us (an order it could not deliver) takes us back.
    if (this.registeredWith === key && performance.now() - this.registeredAt < REREGISTER_MS) return
    this.registering = true
    try {
      const outputs = this.store.inventory().map((m) => ({ jobId: m.jobId, mapIndex: m.mapIndex }))
      const answer = await this.c.rpc.call(coord.peer, JOB_PROTOCOLS.register, { slots: this.init.slots, version: this.init.version, incarnation: this.incarnation, outputs }, RegisterResponse)
      // From now on this worker belongs to that epoch: orders of an older coordinator are refused even before
      // the new one has sent any.
      this.fence.raise(answer.epoch)
      if (this.registeredWith !== key) this.log.info({ coordinator: coord.peer, epoch: coord.epoch, outputs: outputs.length }, 'registered')
      this.registeredWith = key
      this.registeredAt = performance.now()
    } catch (err) {
      this.log.debug({ coordinator: coord.peer, err: errorMessage(err) }, 'register failed; will retry')
    } finally {
      this.registering = false
    }
  }

  /** A new coordinator may not know us yet: register again on its next tick. */
  forgetRegistration (): void {
    this.registeredWith = undefined
  }

  private onDoJob (req: DoJob, from: string): z.output<typeof DoJobResponse> {
    // The lease this node follows is as good a witness as a DoJob: an order older than it comes from a deposed coordinator.
    const following = this.c.coordinator()?.epoch
    if (following !== undefined) this.fence.raise(following)
    if (this.fence.isStale(req.epoch)) {
      this.log.info({ from, epoch: req.epoch, fence: this.fence.value }, 'refused an order of a stale epoch')
      return { accepted: false, reason: `stale epoch ${req.epoch} < ${this.fence.value}` }
    }
    // Only the coordinator this node follows gives orders: any other peer's order (and its epoch, which would
    // raise the fence on disk for good) is refused, so a member cannot run tasks here or lock this worker out.
    const lead = this.c.coordinator()
    if (lead === undefined || lead.peer !== from || lead.epoch !== req.epoch) {
      return { accepted: false, reason: 'not the coordinator this node follows' }
    }
    this.fence.raise(req.epoch)
    if (this.running.size >= this.init.slots) return { accepted: false, reason: 'no free slot' }
    const key = attemptKey(req.job.jobId, req.task, req.epoch)
    if (this.running.has(key)) return { accepted: true }
    const ac = new AbortController()
    this.running.set(key, ac)
    this.stats.started++
    const startedAt = performance.now()
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.running.delete(key)
      this.dropIfEnded(req.job.jobId, startedAt)
    }
    void this.runAttempt(req, from, ac.signal, release).finally(release)
    return { accepted: true }
  }

  private endJob (jobId: string): void {
    const now = performance.now()
    for (const [id, at] of this.endedAt) if (now - at > ENDED_MEMORY_MS) this.endedAt.delete(id)
    this.endedAt.set(jobId, now)
    for (const [key, ac] of this.running) if (key.startsWith(`${jobId}/`)) ac.abort()
    this.store.removeJob(jobId)
  }

  /**
   * An attempt that was still winding down when its job's end order came (or whose order overtook it) may have
   * written into the store after the job's folder was removed. The last such attempt removes the folder again.
   */
  private dropIfEnded (jobId: string, startedAt: number): void {
    if ((this.endedAt.get(jobId) ?? -Infinity) < startedAt) return
    for (const key of this.running.keys()) if (key.startsWith(`${jobId}/`)) return
    this.store.removeJob(jobId)
  }

  /** `release` frees the slot: called before the report goes out, since the coordinator fills the slot as soon as it reads it. */
  private async runAttempt (req: DoJob, coordinator: string, signal: AbortSignal, release: () => void): Promise<void> {
    const { job, task } = req
    const work = this.store.workDir(job.jobId, task.kind, task.index, `${req.epoch}.${task.attempt}`)
    let report: Record<string, unknown>
    try {
      this.checkFreeDisk(task.kind === 'map' ? task.split.length : 0)
      const codeFile = await this.code.get(job.codeHash, async () => await this.fetchCode(job, signal))
      report = task.kind === 'map'
        ? await this.runMap(job, task, req.epoch, codeFile, work, signal)
        : await this.runReduce(req, task, codeFile, work, signal)
    } catch (err) {
      if (err instanceof TaskAbortedError || signal.aborted) {
        this.log.debug({ job: job.jobId, task: `${task.kind}-${task.index}`, attempt: task.attempt }, 'attempt abandoned')
        this.store.removeWorkDir(work)
        return
      }
      if (err instanceof FetchError) {
        report = { ok: false, cause: 'fetch', error: { message: err.message }, fetch: { mapIndex: err.mapIndex, peer: err.peer } }
      } else {
        report = { ok: false, cause: failureCause(errorMessage(err), false), error: { message: errorMessage(err) } }
      }
    } finally {
      this.store.removeWorkDir(work)
    }
    if (report.ok === true) this.stats.succeeded++
    else this.stats.failed++
    // Freed only now, the slot was still taken when the coordinator's next order came back on the heels of this
    // report: refused with 'no free slot', and every such task waited out a back-off (about one map in five).
    release()
    await this.report({ epoch: req.epoch, jobId: job.jobId, kind: task.kind, index: task.index, attempt: task.attempt, ...report }, coordinator)
  }

  private async runMap (job: JobRef, task: Extract<Task, { kind: 'map' }>, epoch: number, codeFile: string, work: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    const shared = task.split.path
    const splitFile = shared ?? join(work, 'split')
    if (shared === undefined) await this.fetchSplit(job, task, splitFile, signal)
    const outputPaths = this.store.runPaths(work, job.reduces)
    const out = await this.pool.run({
      kind: 'map',
      codeFile,
      jobName: job.jobName,
      split: { document: task.split.document, index: task.split.index, offset: task.split.offset, firstLine: task.split.firstLine },
      splitFile,
      splitOffset: shared === undefined ? undefined : task.split.offset,
      splitLength: shared === undefined ? undefined : task.split.length,
      reduces: job.reduces,
      params: job.params,
      outputPaths,
      spillDir: work,
      memoryBudgetBytes: job.memoryBytes,
      compress: job.compress,
      access: { read: [codeFile, splitFile, work], write: [work] }
    }, { signal, timeoutMs: job.taskTimeoutMs })
    if (!out.ok) return { ok: false, cause: failureCause(out.error.message, out.error.userCode), error: { message: out.error.message, stack: out.error.stack } }
    const partitions = out.map?.partitions ?? []
    const partitionBytes = partitions.map((p) => p.bytes)
    const partitionRawBytes = partitions.map((p) => p.rawBytes)
    this.store.commitMapOutput(work, { jobId: job.jobId, mapIndex: task.index, attempt: `${epoch}.${task.attempt}`, partitionBytes, partitionRawBytes })
    return { ok: true, partitionBytes }
  }

  /** Refuses to start an attempt that would fill this node's disk: a clear failure beats a half-written run. */
  private checkFreeDisk (inputBytes: number): void {
    const reserve = this.init.minFreeDiskBytes ?? 64 * 2 ** 20
    const fs = statfsSync(this.store.root)
    const free = fs.bavail * fs.bsize
    if (free < reserve + inputBytes) {
      throw new DiskFullError(`not enough free disk on this node: ${mib(free)} MiB free under ${this.store.root}, an attempt needs ${mib(reserve + inputBytes)} MiB (its input plus a ${mib(reserve)} MiB reserve)`)
    }
  }

  private async fetchSplit (job: JobRef, task: Extract<Task, { kind: 'map' }>, splitFile: string, signal: AbortSignal): Promise<void> {
    const { stream, reader } = await openBulk(this.c.network, submitterAddrs(job), JOB_PROTOCOLS.fetchSplit, { jobId: job.jobId, index: task.split.index }, { signal })
    try {
      const head = await reader.json(BulkResponseHeader, { signal })
      if (!head.ok) throw new Error(`submitter refused split ${task.split.index}: ${head.error}`)
      if (head.bytes !== task.split.length) throw new Error(`submitter sent ${head.bytes} bytes for a split of ${task.split.length}`)
      await receiveToFile(reader, splitFile, head.bytes, { signal })
    } finally {
      await stream.close().catch(() => {})
    }
  }

  private async runReduce (req: DoJob, task: Extract<Task, { kind: 'reduce' }>, codeFile: string, work: string, signal: AbortSignal): Promise<Record<string, unknown>> {
    const { job } = req
    const inputs = await this.fetchRuns(job.jobId, task.index, task.sources, work, signal)
    const part = join(work, 'part')
    // Map outputs held here are read in place, from this job's folder of the intermediate store.
    const access = { read: [codeFile, work, join(this.store.root, job.jobId)], write: [work] }
    const out = await this.pool.run({ kind: 'reduce', codeFile, jobName: job.jobName, partition: task.index, reduces: job.reduces, params: job.params, inputs, outputPath: part, access }, { signal, timeoutMs: job.taskTimeoutMs })
    if (!out.ok) return { ok: false, cause: failureCause(out.error.message, out.error.userCode), error: { message: out.error.message, stack: out.error.stack } }
    await this.commitPart(job, task, req.epoch, part, out.reduce?.bytes ?? 0, signal)
    return { ok: true }
  }

  /** Pulls partition `partition` of every map output, a few at a time; local ones are read in place. */
  private async fetchRuns (jobId: string, partition: number, sources: Array<{ mapIndex: number, peer: string }>, work: string, signal: AbortSignal): Promise<string[]> {
    const paths: string[] = new Array(sources.length)
    let next = 0
    const fetchOne = async (): Promise<void> => {
      while (next < sources.length) {
        const i = next++
        const src = sources[i]
        if (src.peer === this.c.self) {
          const local = this.store.runFile(jobId, src.mapIndex, partition)
          if (local === undefined) throw new FetchError(src.mapIndex, src.peer, `map ${src.mapIndex} output is no longer here`)
          paths[i] = local.path
          continue
        }
        const path = join(work, `in-${src.mapIndex}`)
        if (this.shuffle.active++ === 0) this.shuffle.since = performance.now()
        try {
          const { stream, reader } = await openBulk(this.c.network, peerIdFromString(src.peer), JOB_PROTOCOLS.fetchRun, { jobId, mapIndex: src.mapIndex, partition }, { signal, dialMs: 5_000 })
          try {
            const head = await reader.json(BulkResponseHeader, { signal })
            if (!head.ok) throw new Error(head.error)
            await receiveToFile(reader, path, head.bytes, { signal })
            this.shuffle.bytes += head.bytes
            this.shuffle.rawBytes += head.rawBytes ?? head.bytes
          } finally {
            await stream.close().catch(() => {})
          }
        } catch (err) {
          if (signal.aborted) throw new TaskAbortedError('task abandoned')
          throw new FetchError(src.mapIndex, src.peer, `cannot fetch map ${src.mapIndex} output from ${src.peer}: ${errorMessage(err)}`)
        } finally {
          if (--this.shuffle.active === 0) this.shuffle.busyMs += performance.now() - this.shuffle.since
        }
        paths[i] = path
      }
    }
    await Promise.all(Array.from({ length: Math.min(4, sources.length) }, fetchOne))
    return paths
  }

  private async fetchCode (job: JobRef, signal: AbortSignal): Promise<Uint8Array> {
    const { stream, reader } = await openBulk(this.c.network, submitterAddrs(job), JOB_PROTOCOLS.fetchCode, { hash: job.codeHash }, { signal })
    try {
      const head = await reader.json(BulkResponseHeader, { signal })
      if (!head.ok) throw new Error(`submitter refused the job code: ${head.error}`)
      return await receiveBytes(reader, head.bytes, { signal })
    } finally {
      await stream.close().catch(() => {})
    }
  }

  private async commitPart (job: JobRef, task: Extract<Task, { kind: 'reduce' }>, epoch: number, path: string, bytes: number, signal: AbortSignal): Promise<void> {
    const { stream, reader } = await openBulk(this.c.network, submitterAddrs(job), JOB_PROTOCOLS.commit, { jobId: job.jobId, partition: task.index, epoch, attempt: task.attempt, bytes }, { signal })
    try {
      await sendFileRange(stream, path, 0, bytes, { signal })
      const answer = await reader.json(CommitResponse, { signal })
      if (!answer.accepted) this.log.info({ job: job.jobId, partition: task.index, reason: answer.reason }, 'submitter kept another commit of this part')
    } finally {
      await stream.close().catch(() => {})
    }
  }

  /** Reports to the coordinator that gave the order, else to whoever leads now; a lost report is rebuilt from inventories. */
  private async report (body: Record<string, unknown>, dispatcher: string): Promise<void> {
    for (let tries = 0; tries < 5; tries++) {
      const current = this.c.coordinator()?.peer
      const target = tries === 0 ? dispatcher : (current ?? dispatcher)
      try {
        await this.c.rpc.call(target, JOB_PROTOCOLS.report, body, OkResponse)
        return
      } catch (err) {
        this.log.debug({ target, err: errorMessage(err) }, 'report failed')
        await new Promise((resolve) => setTimeout(resolve, 500 * (tries + 1)))
      }
    }
    this.log.warn({ job: body.jobId, task: `${String(body.kind)}-${String(body.index)}` }, 'could not report a finished attempt')
  }
}

/** Attempt numbers restart under every new coordinator: an attempt is named by (epoch, attempt). */
const REREGISTER_MS = 2_000
/** How long a worker remembers that a job ended, to clean up after attempts that outlive the end order. */
const ENDED_MEMORY_MS = 10 * 60_000

function attemptKey (jobId: string, task: Pick<Task, 'kind' | 'index' | 'attempt'>, epoch: number): string {
  return `${jobId}/${task.kind}/${task.index}/${epoch}.${task.attempt}`
}
