import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { prepareCommandFolder } from '../mapreduce/command-folder.js'
import { jobOptionsOf, type JobOptions } from '../mapreduce/job-options.js'
import { streamingCodeHash } from '../mapreduce/streaming-job.js'
import type { JobRef } from '../protocol/job-messages.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { AttemptLogs, AttemptLogWriter } from './attempt-logs.js'
import { attemptLabel, attemptName, type AttemptOutcome, type FailureCause, type MapAssignment, type ReduceAssignment, type WorkOrder } from './attempt.js'
import type { CodeCache } from './code-cache.js'
import { checkFreeDisk } from './disk-reserve.js'
import type { EarlyShuffle } from './early-shuffle.js'
import type { IntermediateStore } from './intermediate-store.js'
import type { LocalInputs } from './local-input.js'
import { FetchError, type ShuffleClient } from './shuffle-client.js'
import type { SubmitterClient } from './submitter-client.js'
import { TaskAbortedError, type TaskOutcome, type TaskPool } from './task-pool.js'
import type { StreamingTask } from './thread-messages.js'
import type { BlockSource } from './worker-components.js'

/**
 * Why an attempt failed, as the scheduler counts it: running out of disk (checked up front, or ENOSPC while
 * writing) counts toward the job's attempts like an error in its code, so a job no node has room for fails
 * with that reason instead of being retried for ever.
 */
function failureCause (message: string, userCode: boolean): FailureCause {
  // Only the node's own writes are judged by their message: a job's error text says nothing about this node.
  if (userCode) return 'user'
  return /ENOSPC|no space left on device|not enough free disk/i.test(message) ? 'resource' : 'worker'
}

function taskFailure (out: Extract<TaskOutcome, { ok: false }>): AttemptOutcome {
  const cause = out.error.setup === true ? 'setup' : failureCause(out.error.message, out.error.userCode)
  return { ok: false, cause, error: { message: out.error.message, stack: out.error.stack } }
}

/** What an attempt works with: the node's store, its task slots, the job code it holds, and its peers. */
export interface AttemptRunnerParts {
  store: IntermediateStore
  pool: TaskPool
  code: CodeCache
  submitter: SubmitterClient
  /** Splits read in place when the submitter shares this host (short-circuit reads). */
  local: LocalInputs
  /** Blocks of datasets in the mesh (maps over `mesh:` inputs). */
  blocks: BlockSource | undefined
  shuffle: ShuffleClient
  /** The shuffle of a reduce dispatched before every map was done. */
  early: EarlyShuffle
  logs: AttemptLogs
  log: Logger
  /** This node's PeerId: a streaming command's errors say where it failed. */
  self: string
  /** Streaming commands run under bubblewrap here (a `--sandbox` node). */
  sandbox: boolean
}

/**
 * Runs one attempt to its outcome, in a scratch folder of its own: fetches the job's code (once per node)
 * and the map's split, or the reduce's inputs (the shuffle); runs the task on a slot of the pool; publishes
 * a map's output to the store, or commits a reduce's part to the submitter.
 */
export class AttemptRunner {
  constructor (private readonly parts: AttemptRunnerParts, private readonly minFreeDiskBytes: number) {}

  /** The attempt's outcome; undefined when it was abandoned (its job ended, it lost to another, the worker stopped). */
  async run (order: WorkOrder, signal: AbortSignal, dispatcher: string): Promise<AttemptOutcome | undefined> {
    const { job, task } = order
    const { store, code, submitter } = this.parts
    const work = store.workDir(job.jobId, task.kind, task.index, attemptLabel({ epoch: order.epoch, attempt: task.attempt }))
    const output = this.parts.logs.open(attemptName(order))
    try {
      checkFreeDisk(store.root, this.minFreeDiskBytes, task.kind === 'map' ? task.split.length : 0)
      // A spec whose commands are not what its code hash names is refused as the job's fault (it counts), not run.
      if (job.streaming !== undefined && streamingCodeHash(job.streaming) !== job.codeHash) {
        return { ok: false, cause: 'user', error: { message: 'the streaming job\'s commands do not match its code hash' } }
      }
      const streaming = job.streaming === undefined ? undefined : await this.streamingTask(job, work, signal)
      const codeFile = streaming === undefined ? await code.get(job.codeHash, async () => await this.fetchCode(job, work, signal)) : ''
      return task.kind === 'map'
        ? await this.runMap(order, task, codeFile, work, signal, output, streaming)
        : await this.runReduce(order, task, codeFile, work, signal, output, streaming, dispatcher)
    } catch (err) {
      if (err instanceof TaskAbortedError || signal.aborted) {
        this.parts.log.debug({ job: job.jobId, task: `${task.kind}-${task.index}`, attempt: task.attempt }, 'attempt abandoned')
        return undefined
      }
      if (err instanceof FetchError) return { ok: false, cause: 'fetch', error: { message: err.message }, fetch: { mapIndex: err.mapIndex, peer: err.peer } }
      return { ok: false, cause: failureCause(errorMessage(err), false), error: { message: errorMessage(err) } }
    } finally {
      store.removeWorkDir(work)
      await output.close()
    }
  }

  /** The job's bundled code: from its submitter, or, for a detached job, from the mesh (checked there against its CID, here against its hash). */
  private async fetchCode (job: JobRef, work: string, signal: AbortSignal): Promise<Uint8Array> {
    const code = job.detached?.code
    if (code === undefined) return await this.parts.submitter.fetchCode(job, signal)
    if (this.parts.blocks === undefined) throw new Error('this node cannot read blocks of the mesh')
    const got = await this.parts.blocks.openBlock({ cid: code.cid, bytes: code.bytes }, join(work, 'code'), signal)
    return readFileSync(got.path)
  }

  /** A streaming job's task: its files fetched once per node (checked by hash) and copied into the commands' folder. */
  private async streamingTask (job: JobRef, work: string, signal: AbortSignal): Promise<StreamingTask> {
    const streaming = job.streaming as NonNullable<JobRef['streaming']>
    const { code, submitter } = this.parts
    const files = []
    for (const f of streaming.files) {
      const path = await code.get(f.hash, async () => await submitter.fetchCode(job, signal, f), '')
      files.push({ name: f.name, path })
    }
    const cwd = join(work, 'cwd')
    prepareCommandFolder(cwd, files)
    return { job: streaming, cwd, sandbox: this.parts.sandbox, where: ` on node ${this.parts.self}` }
  }

  private async runMap (order: WorkOrder, task: MapAssignment, codeFile: string, work: string, signal: AbortSignal, output: AttemptLogWriter, streaming: StreamingTask | undefined): Promise<AttemptOutcome> {
    const { job } = order
    const { store, pool } = this.parts
    const input = await this.mapInput(order, task, work, signal)
    const { inPlace, splitFile } = input
    const outputPaths = store.runPaths(work, job.reduces)
    const out = await pool.run({
      kind: 'map',
      codeFile,
      jobName: job.jobName,
      split: { document: task.split.document, index: task.split.index, offset: task.split.offset, firstLine: task.split.firstLine },
      splitFile,
      splitOffset: inPlace === undefined ? undefined : input.offset,
      splitLength: inPlace === undefined ? undefined : task.split.length,
      reduces: job.reduces,
      params: job.params,
      outputPaths,
      spillDir: work,
      options: mapOptions(job, task),
      access: { read: [codeFile, splitFile, work], write: [work] },
      streaming
    }, { signal, timeoutMs: job.taskTimeoutMs, onOutput: output.append })
    if (!out.ok) return taskFailure(out)
    const partitions = out.map?.partitions ?? []
    const partitionBytes = partitions.map((p) => p.bytes)
    const partitionRawBytes = partitions.map((p) => p.rawBytes)
    store.commitMapOutput(work, { jobId: job.jobId, mapIndex: task.index, attempt: attemptLabel({ epoch: order.epoch, attempt: task.attempt }), partitionBytes, partitionRawBytes })
    const counters = { recordsIn: out.map?.lines, bytesIn: task.split.length, recordsOut: out.map?.emitted, bytesOut: partitionRawBytes.reduce((n, b) => n + b, 0), inputFetchedBytes: input.fromSubmitter, blockFetchedBytes: input.fromPeers }
    return { ok: true, partitionBytes, counters }
  }

  /**
   * Where a map reads its split: a block of a dataset from this node's store (or pulled from a holder); a `--shared`
   * path; the submitter's file in place on its host; else fetched from the submitter. With the bytes each source sent.
   */
  private async mapInput (order: WorkOrder, task: MapAssignment, work: string, signal: AbortSignal): Promise<{ inPlace: string | undefined, splitFile: string, offset: number, fromSubmitter: number, fromPeers: number }> {
    const { job } = order
    const { submitter, local, blocks } = this.parts
    const block = task.split.block
    if (block !== undefined) {
      if (blocks === undefined) throw new Error('this node cannot read datasets in the mesh')
      const got = await blocks.openBlock({ cid: block.cid, bytes: task.split.length, hosts: block.hosts }, join(work, 'split'), signal)
      return { inPlace: got.path, splitFile: got.path, offset: 0, fromSubmitter: 0, fromPeers: got.fetchedFrom === undefined ? 0 : task.split.length }
    }
    // `--shared`: every node reads the named path. Otherwise in place when the submitter is on this host, else fetched.
    const inPlace = task.split.path ?? await local.inPlace(job, task, signal)
    const splitFile = inPlace ?? join(work, 'split')
    if (inPlace === undefined) await submitter.fetchSplit(job, task, splitFile, signal)
    return { inPlace, splitFile, offset: task.split.offset, fromSubmitter: inPlace === undefined ? task.split.length : 0, fromPeers: 0 }
  }

  private async runReduce (order: WorkOrder, task: ReduceAssignment, codeFile: string, work: string, signal: AbortSignal, output: AttemptLogWriter, streaming: StreamingTask | undefined, dispatcher: string): Promise<AttemptOutcome> {
    const { job } = order
    const { store, pool, submitter, shuffle, early } = this.parts
    // Dispatched with every map's output: one pass. Before the maps were all done: pulled as they finish.
    const fetched = task.sources.length === task.maps
      ? await shuffle.fetchRuns(job.jobId, task.index, task.sources, work, signal)
      : await early.pull(order, task, work, dispatcher, signal)
    const inputs = fetched.paths
    const part = join(work, 'part')
    // Map outputs held here are read in place, from this job's folder of the intermediate store.
    const access = { read: [codeFile, work, join(store.root, job.jobId)], write: [work] }
    const out = await pool.run({ kind: 'reduce', codeFile, jobName: job.jobName, partition: task.index, reduces: job.reduces, params: job.params, inputs, outputPath: part, access, streaming }, { signal, timeoutMs: job.taskTimeoutMs, onOutput: output.append })
    if (!out.ok) return taskFailure(out)
    const bytes = out.reduce?.bytes ?? 0
    const counters = { recordsIn: out.reduce?.values, recordsOut: out.reduce?.keys, bytesOut: out.reduce?.bytes, shuffleBytes: fetched.bytes, shuffleRawBytes: fetched.rawBytes, shuffleLinkedBytes: fetched.linkedBytes }
    if (job.meshOutput === undefined) {
      const outputSentBytes = await submitter.commitPart(job, task, order.epoch, part, bytes, signal)
      return { ok: true, counters: { ...counters, outputSentBytes } }
    }
    if (this.parts.blocks === undefined) throw new Error('this node cannot store datasets in the mesh')
    const stored = { size: bytes, blocks: await this.parts.blocks.storeFile(part, bytes, job.meshOutput, signal) }
    // A detached job has no submitter: the part's blocks go to the coordinator with the report.
    if (job.detached !== undefined) return { ok: true, counters, part: stored }
    await submitter.commitBlocks(job, task, order.epoch, stored, signal)
    return { ok: true, counters }
  }
}

/**
 * The job's options for one of its maps. Runs are compressed where that pays; not when the coordinator says they
 * will be linked in place and stay in the page cache (`rawRuns`, docs/performance.md, stop 34).
 */
function mapOptions (job: WorkOrder['job'], task: MapAssignment): JobOptions {
  const options = jobOptionsOf(job)
  return task.rawRuns === true ? { ...options, compress: false } : options
}
