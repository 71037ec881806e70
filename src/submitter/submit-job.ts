import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { bundleJob, importJob } from '../mapreduce/job-loader.js'
import { jobOptionsOf, type JobOptions } from '../mapreduce/job-options.js'
import { OutputDir } from '../mapreduce/output-dir.js'
import { sampledParams } from '../mapreduce/sample.js'
import { DEFAULT_SUBMIT_SPLIT_SIZE, planSplits, type InputSplit } from '../mapreduce/splits.js'
import { SAMPLE_BYTES_PER_SPLIT } from '../mapreduce/sample.js'
import type { Job } from '../mapreduce/job-api.js'
import { bindManifest, checkNameFree, DatasetError, meshViewOf, parseDatasetRef, putBytes, type MeshView } from '../dataset/dataset-client.js'
import { blockCidOfDigest } from '../dataset/block-cid.js'
import { isMeshRef, MESH_PREFIX, planMeshSplits, samplePrefixes } from './mesh-inputs.js'
import { MeshPartCollector } from './mesh-part-collector.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { streamingCodeHash, type StreamingJob } from '../mapreduce/streaming-job.js'
import { createClientLibp2p } from '../node/client-libp2p.js'
import { relaySlotsFor } from '../node/relay-limits.js'
import { MRP2P_VERSION } from '../node/version.js'
import type { Logger } from '../util/logger.js'
import { captureOutput } from '../worker/task-output-capture.js'
import { PartCollector } from './part-collector.js'
import { holdRelaySlot } from './relay-slot.js'
import { newJobId, Submission, type SubmissionEvent } from './submission.js'

/**
 * A job to run on a mesh, as `mrp2p submit` and `mrp2p demo` describe it; already checked by the caller. The job's
 * options (JobOptionsSchema: task timeout, memory, compression, …) are passed on to the workers as they are.
 */
export interface SubmitJobOptions extends JobOptions {
  /** A built-in job's name (wc, indexer, grep, sort) or the path of a .ts/.js module. */
  job: string
  /** Instead of `job`: a streaming job's commands, and where each of its files is here (checked and hashed). */
  streaming?: { streaming: StreamingJob, files: ReadonlyArray<{ name: string, path: string }> }
  /** Input files; map receives each path exactly as given. */
  input: string[]
  /** Nodes of the mesh to ask for the coordinator, each ending in /p2p/<PeerId>. */
  bootstrap: Multiaddr[]
  /** Where workers reach this submitter (for code, splits and commits). */
  listen: string[]
  reduces: number
  /** Output folder; must be empty or absent. */
  output: string
  /** Larger files are cut at line ends into splits of about this many bytes. */
  splitSize: number
  params: Record<string, string>
  /** How long to look for a coordinator (each time one is lost). */
  coordinatorTimeoutMs: number
  /** Attempts per task that fail in the job's own code before the job fails. */
  maxAttempts: number
  /** The inputs are readable at the same path on every node: workers read them in place. */
  shared?: boolean
  /** Return once the coordinator has the job: every input and the output must be datasets in the mesh. */
  detach?: boolean
  /** Relative inputs and job paths are resolved here; default: the process's working directory. */
  cwd?: string
  /** The key of a private mesh. */
  swarmKey?: Uint8Array
  /** The submitter identity that signs the job (`--identity`); a fresh key when absent, as an anonymous submitter. */
  identity?: PrivateKey
  log: Logger
  /** Aborting stops the job: the output folder is removed and the abort's reason is thrown. */
  signal?: AbortSignal
  onEvent?: (event: SubmitJobEvent) => void
}

/**
 * What a submit reports while it runs: first `planned`, once the job is
 * bundled, split and its output folder claimed (nothing sent yet), then the
 * Submission's own events.
 */
export type SubmitJobEvent =
  | { type: 'planned', jobId: string, jobName: string, maps: number, inputBytes: number }
  | SubmissionEvent
  /** The job is over (done or not) and the client is closing: nothing is left to interrupt or show. */
  | { type: 'closing' }

export interface SubmitJobResult { jobId: string, jobName: string, maps: number, reduces: number, inputBytes: number, seconds: number }

/** The last 64 KiB of what the sample hook writes; undefined when it writes nothing. */
function captureSampleOutput (): { stop: () => void, text: () => string | undefined } {
  let text = ''
  const capture = captureOutput((chunk) => { text = (text + chunk).slice(-64 * 1024) })
  return {
    stop: () => { capture.flush(); capture.stop() },
    text: () => text === '' ? undefined : text
  }
}

/**
 * The job's params with what its sample hook adds (the sort's cut points), from the first MiB of each split; a
 * block of a dataset is sampled by fetching that prefix from a holder. What the hook writes is the job's log.
 */
async function sampleParams (job: Job, jobName: string, splits: readonly InputSplit[], options: SubmitJobOptions, mesh: MeshView | undefined): Promise<{ params: Record<string, string>, log: string | undefined }> {
  if (job.sample === undefined) return { params: { ...options.params }, log: undefined }
  let dir: string | undefined
  try {
    let sampled = splits
    if (mesh !== undefined && splits.some((s) => s.block !== undefined)) {
      dir = mkdtempSync(join(tmpdir(), 'mrp2p-sample-'))
      sampled = await samplePrefixes(mesh, splits, SAMPLE_BYTES_PER_SPLIT, dir, options.signal)
    }
    const sample = captureSampleOutput()
    let params: Record<string, string>
    try {
      params = sampledParams(job, jobName, sampled, options.reduces, options.params)
    } finally {
      sample.stop()
    }
    return { params, log: sample.text() }
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  }
}

/** `--detach` only when nothing of the job stays here: its inputs, its output and its files are all in the mesh. */
function checkDetachable (options: SubmitJobOptions): void {
  const local = options.input.find((i) => !isMeshRef(i))
  const why = 'a detached job has no submitter to serve or collect anything'
  if (local !== undefined) throw new DatasetError(`--detach needs every input in the mesh (mesh:NAME): ${local} is a local file, and ${why} (mrp2p put it first)`)
  if (!isMeshRef(options.output)) throw new DatasetError(`--detach needs the output in the mesh (--output mesh:NAME), not the folder ${options.output}: ${why}`)
  if ((options.streaming?.files.length ?? 0) > 0) throw new DatasetError(`--detach does not take a streaming job's --file yet: ${why}`)
}

/** A detached job's bundled code goes into the mesh as a block named by its hash: workers fetch it there. */
async function storeCode (mesh: MeshView, bundle: { code?: string, hash: string }, signal?: AbortSignal): Promise<{ code?: { cid: string, bytes: number } }> {
  if (bundle.code === undefined) return {}
  const bytes = Buffer.from(bundle.code)
  const cid = blockCidOfDigest(Buffer.from(bundle.hash, 'hex'))
  await putBytes(mesh, cid, bytes, Math.max(1, Math.min(2, mesh.storing.length)), signal)
  return { code: { cid, bytes: bytes.byteLength } }
}

/** A streaming job's code is the commands its spec carries: only their hash, which workers check the spec by. */
function streamingBundle (name: string, streaming: StreamingJob): { name: string, code?: string, hash: string } {
  return { name, hash: streamingCodeHash(streaming) }
}

/**
 * Submits a job to a mesh and waits until its output folder is complete:
 * loads and bundles the job, plans its splits, starts a client that serves
 * them, runs the Submission and publishes the parts. On any failure the
 * output folder is removed and nothing is left listening.
 */
export async function submitJob (options: SubmitJobOptions): Promise<SubmitJobResult> {
  // Everything that can be refused is refused before anything runs or is written.
  const streaming = options.streaming
  const bundle: { name: string, code?: string, hash: string } = streaming === undefined ? await bundleJob(options.job, options.cwd) : streamingBundle(options.job, streaming.streaming)
  const loaded = bundle.code === undefined ? undefined : await importJob({ ...bundle, code: bundle.code })
  const meshInputs = options.input.filter(isMeshRef)
  const localInputs = options.input.filter((i) => !isMeshRef(i))
  if (options.detach === true) checkDetachable(options)
  const splits = localInputs.length === 0 ? [] : await planSplits(localInputs, { cwd: options.cwd ?? process.cwd(), splitSize: options.splitSize })

  // Off loopback, workers on other networks may have to reach this submitter through a relay.
  const relaySlots = relaySlotsFor(false, options.listen, [])
  const node = await createClientLibp2p({ version: MRP2P_VERSION, listen: options.listen, swarmKey: options.swarmKey, relaySlots })
  let params: Record<string, string>
  let sampleLog: string | undefined
  let output: OutputDir | undefined
  let parts: PartCollector | MeshPartCollector
  let mesh: MeshView | undefined
  let detached: { code?: { cid: string, bytes: number } } | undefined
  try {
    // Datasets in the mesh are planned from the catalog and the holders' answers: the client starts first.
    const meshOutput = isMeshRef(options.output) ? parseDatasetRef(options.output.slice(MESH_PREFIX.length)) : undefined
    if (meshOutput?.file !== undefined) throw new DatasetError(`--output ${options.output}: a job's output is a whole dataset, mesh:NAME`)
    if (meshInputs.length > 0 || meshOutput !== undefined) {
      await node.start()
      mesh = await meshViewOf(node, options.bootstrap, options.signal)
    }
    if (mesh !== undefined) splits.push(...await planMeshSplits(mesh, meshInputs, splits.length, options.signal))
    if (splits.length === 0) throw new DatasetError('the inputs hold no bytes: every file named is empty')
    ;({ params, log: sampleLog } = loaded === undefined ? { params: { ...options.params }, log: undefined } : await sampleParams(loaded.job, bundle.name, splits, options, mesh))
    if (options.detach === true && mesh !== undefined) detached = await storeCode(mesh, bundle, options.signal)
    if (meshOutput !== undefined && mesh !== undefined) {
      await checkNameFree(mesh, meshOutput.name, options.signal)
      parts = new MeshPartCollector(meshOutput.name, options.reduces, { replicas: Math.max(1, Math.min(2, mesh.storing.length)), blockSize: DEFAULT_SUBMIT_SPLIT_SIZE })
    } else {
      output = OutputDir.prepare(options.output)
      parts = new PartCollector(output, options.reduces)
    }
  } catch (err) {
    await Promise.resolve(node.stop()).catch(() => {})
    throw err
  }
  const files = streaming?.streaming.files.map((f, i) => ({ hash: f.hash, bytes: f.bytes, path: streaming.files[i].path }))
  const inputBytes = splits.reduce((n, s) => n + s.length, 0)
  const jobId = newJobId(bundle.name)
  options.onEvent?.({ type: 'planned', jobId, jobName: bundle.name, maps: splits.length, inputBytes })
  const started = performance.now()
  try {
    await node.start()
    if (relaySlots > 0) await holdRelaySlot(node, options.bootstrap, options.log, { signal: options.signal })
    const submission = new Submission(
      { self: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()), network: node, bootstrap: options.bootstrap, log: options.log, keyed: options.swarmKey !== undefined, identity: options.identity ?? await generateKeyPair('Ed25519') },
      { jobId, jobName: bundle.name, code: bundle, streaming: streaming?.streaming, files, splits, reduces: options.reduces, params, maxAttempts: options.maxAttempts, parts, shared: options.shared, sampleLog, detached, ...jobOptionsOf(options) }
    )
    await submission.start()
    try {
      await submission.run({ coordinatorTimeoutMs: options.coordinatorTimeoutMs, signal: options.signal, onEvent: options.onEvent })
    } finally {
      await submission.stop()
    }
    if (parts instanceof PartCollector) parts.publish()
    else if (mesh !== undefined && detached === undefined) await bindManifest(mesh, parts.name, parts.manifest(), options.signal, options.identity)
    return { jobId, jobName: bundle.name, maps: splits.length, reduces: options.reduces, inputBytes, seconds: (performance.now() - started) / 1000 }
  } catch (err) {
    output?.abort()
    // Whatever broke once the abort came (a closed stream, a cancelled wait) is its consequence, not its cause.
    throw options.signal?.aborted === true ? options.signal.reason : err
  } finally {
    options.onEvent?.({ type: 'closing' })
    await Promise.resolve(node.stop()).catch(() => {})
  }
}
