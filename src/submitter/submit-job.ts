import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { bundleJob, importJob } from '../mapreduce/job-loader.js'
import { jobOptionsOf, type JobOptions } from '../mapreduce/job-options.js'
import { OutputDir } from '../mapreduce/output-dir.js'
import { sampledParams } from '../mapreduce/sample.js'
import { planSplits } from '../mapreduce/splits.js'
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
  const splits = await planSplits(options.input, { cwd: options.cwd ?? process.cwd(), splitSize: options.splitSize })
  // What the sample hook writes is the job's log (shown by `mrp2p logs`), not this terminal's output.
  const sample = captureSampleOutput()
  let params: Record<string, string>
  try {
    params = loaded === undefined ? { ...options.params } : sampledParams(loaded.job, bundle.name, splits, options.reduces, options.params)
  } finally {
    sample.stop()
  }
  const files = streaming?.streaming.files.map((f, i) => ({ hash: f.hash, bytes: f.bytes, path: streaming.files[i].path }))
  const inputBytes = splits.reduce((n, s) => n + s.length, 0)
  const output = OutputDir.prepare(options.output)

  // Off loopback, workers on other networks may have to reach this submitter through a relay.
  const relaySlots = relaySlotsFor(false, options.listen, [])
  const node = await createClientLibp2p({ version: MRP2P_VERSION, listen: options.listen, swarmKey: options.swarmKey, relaySlots })
  const jobId = newJobId(bundle.name)
  options.onEvent?.({ type: 'planned', jobId, jobName: bundle.name, maps: splits.length, inputBytes })
  const started = performance.now()
  try {
    await node.start()
    if (relaySlots > 0) await holdRelaySlot(node, options.bootstrap, options.log, { signal: options.signal })
    const parts = new PartCollector(output, options.reduces)
    const submission = new Submission(
      { self: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()), network: node, bootstrap: options.bootstrap, log: options.log, keyed: options.swarmKey !== undefined, identity: options.identity ?? await generateKeyPair('Ed25519') },
      { jobId, jobName: bundle.name, code: bundle, streaming: streaming?.streaming, files, splits, reduces: options.reduces, params, maxAttempts: options.maxAttempts, parts, shared: options.shared, sampleLog: sample.text(), ...jobOptionsOf(options) }
    )
    await submission.start()
    try {
      await submission.run({ coordinatorTimeoutMs: options.coordinatorTimeoutMs, signal: options.signal, onEvent: options.onEvent })
    } finally {
      await submission.stop()
    }
    parts.publish()
    return { jobId, jobName: bundle.name, maps: splits.length, reduces: options.reduces, inputBytes, seconds: (performance.now() - started) / 1000 }
  } catch (err) {
    output.abort()
    // Whatever broke once the abort came (a closed stream, a cancelled wait) is its consequence, not its cause.
    throw options.signal?.aborted === true ? options.signal.reason : err
  } finally {
    options.onEvent?.({ type: 'closing' })
    await Promise.resolve(node.stop()).catch(() => {})
  }
}
