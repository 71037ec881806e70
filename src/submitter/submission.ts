import { randomBytes, timingSafeEqual } from 'node:crypto'
import { rmSync } from 'node:fs'
import type { PrivateKey, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { z } from 'zod'
import { jobOptionsOf, type JobOptions } from '../mapreduce/job-options.js'
import type { InputSplit } from '../mapreduce/splits.js'
import type { StreamingJob } from '../mapreduce/streaming-job.js'
import { receiveToFile, sendBytes, sendFileRange, writeJsonFrame } from '../protocol/bulk.js'
import { handleBulk, type BulkHandlerRegistration } from '../protocol/bulk-rpc.js'
import { queryInfo } from '../protocol/info.js'
import { isHandshakeRefusal, swarmKeyMismatch } from '../protocol/errors.js'
import {
  CommitBlocksRequest, CommitRequest, type CommitResponse, FetchCodeRequest, FetchSplitRequest, JOB_PROTOCOLS, LocalCommitRequest, type LocalCommitResponse, LocalReadRequest, StatusResponse, SubmitResponse, type JobProgress, type JobSpec, type UnsealedJobSpec
} from '../protocol/job-messages.js'
import { sealJob } from '../protocol/job-seal.js'
import { probeProof, probeSubject, readProbe, writeProbe, type Probe } from '../protocol/local-read-probe.js'
import { handleRequests, request, type HandlerRegistrar, type StreamOpener } from '../protocol/reqresp.js'
import { errorMessage, UserCodeError, UserFacingError } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { withPeerId } from '../util/peer-addr.js'
import { sleep } from '../util/sleep.js'
import { MeshPartCollector } from './mesh-part-collector.js'
import { PartCollector } from './part-collector.js'

export class NoCoordinatorError extends UserFacingError {
  static readonly NAME = 'NoCoordinatorError'
  override readonly name = NoCoordinatorError.NAME
  readonly exitCode = 1
}

/** The job failed on the mesh: a task used up its attempts, or the job as a whole was given up. */
export class JobFailedError extends UserCodeError {
  static override readonly NAME = 'JobFailedError'
  override readonly name = JobFailedError.NAME
}

/** Someone ran `mrp2p cancel` on the job: it ended everywhere, and its output is not published. */
export class JobCancelledError extends UserFacingError {
  static readonly NAME = 'JobCancelledError'
  override readonly name = JobCancelledError.NAME
  readonly exitCode = 1
}

/** The coordinator would not take the job (a limit); nothing ran. */
export class JobRefusedError extends UserFacingError {
  static readonly NAME = 'JobRefusedError'
  override readonly name = JobRefusedError.NAME
  readonly exitCode = 1
}

export function newJobId (name: string): string {
  return `${name.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 40) || 'job'}-${randomBytes(6).toString('hex')}`
}

export type SubmissionEvent =
  | { type: 'coordinator', peer: string, epoch: number, previous: string | undefined }
  | { type: 'progress', progress: JobProgress, parts: number, bytesIn: number, bytesOut: number }
  | { type: 'part', partition: number, bytes: number }

export interface SubmissionComponents {
  self: string
  /** Where workers reach this submitter. */
  addrs: string[]
  network: StreamOpener & HandlerRegistrar
  bootstrap: Multiaddr[]
  log: Logger
  /** Whether this submitter uses a swarm key (for the advice given when a node refuses the handshake). */
  keyed?: boolean
  /** The submitter identity that signs the job (an Ed25519 key; `mrp2p keygen --identity`). */
  identity: PrivateKey
}

/** The job's options (JobOptionsSchema) travel in the plan as they are: the submitter passes on what it does not read. */
export interface SubmissionPlan extends JobOptions {
  jobId: string
  jobName: string
  /** The bundled module by its hash; a streaming job has only the hash (of its commands): workers fetch no code. */
  code: { hash: string, code?: string }
  /** A streaming job's commands, instead of a module. */
  streaming?: StreamingJob
  /** A streaming job's `--file`s, served by hash like the code. */
  files?: ReadonlyArray<{ hash: string, path: string, bytes: number }>
  splits: InputSplit[]
  reduces: number
  params: Record<string, string>
  maxAttempts: number
  /** Where parts go: files into the output folder, or (`--output mesh:NAME`) the lists of their blocks. */
  parts: PartCollector | MeshPartCollector
  /** Inputs are readable at the same path on every node: workers read them in place. */
  shared?: boolean
  /** What the job's `sample` hook wrote here. */
  sampleLog?: string
  /** `--detach`: where the job's code is in the mesh; `run` returns once a coordinator has the job. */
  detached?: { code?: { cid: string, bytes: number } }
}

export interface SubmissionOptions {
  /** How long to look for a coordinator before giving up (each time one is lost). */
  coordinatorTimeoutMs: number
  pollMs?: number
  signal?: AbortSignal
  onEvent?: (event: SubmissionEvent) => void
}

/**
 * The submitter's side of a job: serves the code and the splits, collects one
 * commit per partition, and keeps the job alive by polling the coordinator.
 * When the coordinator changes, the job is submitted again with the same id;
 * the new coordinator rebuilds the rest from the workers' inventories.
 */
export class Submission implements Startable {
  private coordinator: { peer: string, addrs: Multiaddr[] } | undefined
  private coordinatorPeer: string | undefined
  private readonly known = new Map<string, Multiaddr[]>()
  /** Some member has answered us: from then on a failed handshake is a peer dying mid-handshake, not a wrong key. */
  private answered = false
  private bytesIn = 0
  private bytesOut = 0
  /** Wakes the poll loop when the last part lands, so that `run` does not sleep out a poll after the job is done. */
  private wake: (() => void) | undefined
  private readonly handlers: BulkHandlerRegistration[] = []
  /** What a reducer on this host reads to commit its part in place (only when the output is a local folder). */
  private commitProbe: Probe | undefined
  /** The spec as signed in start(): every coordinator gets these very bytes' meaning. */
  private sealed: JobSpec | undefined

  constructor (private readonly c: SubmissionComponents, private readonly plan: SubmissionPlan) {}

  /** Input bytes sent to workers so far (a split read in place sends none). */
  get inputBytesSent (): number {
    return this.bytesOut
  }

  /** The job as signed in start(): what every coordinator and worker is given. */
  get jobSpec (): JobSpec {
    return this.spec()
  }

  private spec (): JobSpec {
    if (this.sealed === undefined) throw new Error('Submission: start() first')
    return this.sealed
  }

  private unsealedSpec (): UnsealedJobSpec {
    const p = this.plan
    return {
      ...jobOptionsOf(p),
      jobId: p.jobId,
      jobName: p.jobName,
      codeHash: p.code.hash,
      splits: p.splits.map((s) => ({ document: s.document, index: s.index, offset: s.offset, length: s.length, firstLine: s.firstLine, path: p.shared && s.block === undefined ? s.path : undefined, block: s.block === undefined ? undefined : { cid: s.block.cid, hosts: [...s.block.hosts] } })),
      reduces: p.reduces,
      params: p.params,
      submitter: { peer: this.c.self, addrs: this.c.addrs, commitProbe: this.commitProbe?.path },
      maxAttempts: p.maxAttempts,
      sampleLog: p.sampleLog,
      streaming: p.streaming,
      meshOutput: p.parts instanceof MeshPartCollector ? { name: p.parts.name, ...p.parts.layout } : undefined,
      detached: p.detached
    }
  }

  /** Serves the job's code and splits to workers and takes their commits, until stop(). */
  async start (): Promise<void> {
    const { network, log } = this.c
    const plan = this.plan
    if (plan.parts instanceof PartCollector) {
      try {
        this.commitProbe = writeProbe()
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'cannot write the commit probe: every part will be streamed')
      }
    }
    this.sealed = await sealJob(this.unsealedSpec(), this.c.identity)
    const code = plan.code.code === undefined ? undefined : Buffer.from(plan.code.code)
    this.handlers.push(await handleBulk(network, {
      protocol: JOB_PROTOCOLS.fetchCode,
      requestSchema: FetchCodeRequest,
      log,
      handle: async (req, ctx) => {
        const file = plan.files?.find((f) => f.hash === req.hash)
        if (file !== undefined) {
          await writeJsonFrame(ctx.stream, { ok: true, bytes: file.bytes }, ctx)
          await sendFileRange(ctx.stream, file.path, 0, file.bytes, ctx)
          return
        }
        if (code === undefined || req.hash !== plan.code.hash) {
          await writeJsonFrame(ctx.stream, { ok: false, error: 'unknown code hash' }, ctx)
          return
        }
        await writeJsonFrame(ctx.stream, { ok: true, bytes: code.byteLength }, ctx)
        await sendBytes(ctx.stream, code, ctx)
      }
    }))
    this.handlers.push(await handleBulk(network, {
      protocol: JOB_PROTOCOLS.fetchSplit,
      requestSchema: FetchSplitRequest,
      log,
      handle: async (req, ctx) => {
        const split = req.jobId === plan.jobId ? plan.splits[req.index] : undefined
        // A block of a dataset is read from the mesh, never from here.
        if (split === undefined || split.block !== undefined) {
          await writeJsonFrame(ctx.stream, { ok: false, error: 'no such split' }, ctx)
          return
        }
        await writeJsonFrame(ctx.stream, { ok: true, bytes: split.length }, ctx)
        await sendFileRange(ctx.stream, split.path, split.offset, split.length, ctx)
        this.bytesOut += split.length
      }
    }))
    this.handlers.push(await handleRequests(network, {
      protocol: JOB_PROTOCOLS.localRead,
      requestSchema: LocalReadRequest,
      log,
      handle: (req, ctx) => {
        const split = req.jobId === plan.jobId ? plan.splits[req.index] : undefined
        if (split?.identity === undefined || split.block !== undefined) return { ok: false, reason: 'no such split' }
        const nonce = readProbe(req.probe)
        if (nonce === undefined) return { ok: false, reason: 'probe not readable here: another host or another user' }
        return { ok: true, proof: probeProof(nonce, this.c.self, ctx.remotePeer.toString(), probeSubject.localRead(req)), path: split.path, file: split.identity }
      }
    }))
    this.handlers.push(await handleBulk(network, {
      protocol: JOB_PROTOCOLS.commit,
      requestSchema: CommitRequest,
      log,
      handle: async (req, ctx) => {
        const parts = plan.parts
        if (req.jobId !== plan.jobId || req.partition >= plan.reduces || !(parts instanceof PartCollector)) throw new Error('commit for an unknown job or partition')
        const path = parts.incomingPath(req.partition)
        try {
          await receiveToFile(ctx.reader, path, req.bytes, ctx)
        } catch (err) {
          rmSync(path, { force: true })
          throw err
        }
        const accepted = parts.offer(req.partition, path)
        if (accepted) {
          this.bytesIn += req.bytes
          this.c.log.info({ partition: req.partition, bytes: req.bytes, epoch: req.epoch, from: ctx.remotePeer.toString() }, 'part committed')
          if (plan.parts.complete) this.wake?.()
        }
        await writeJsonFrame(ctx.stream, accepted ? { accepted } : { accepted, reason: 'already committed' }, ctx)
      }
    }))
    this.handlers.push(await handleRequests(network, {
      protocol: JOB_PROTOCOLS.localCommit,
      requestSchema: LocalCommitRequest,
      log,
      handle: async (req, ctx): Promise<z.input<typeof LocalCommitResponse>> => {
        const parts = plan.parts
        if (req.jobId !== plan.jobId || req.partition >= plan.reduces || !(parts instanceof PartCollector)) return { inPlace: false, accepted: false, reason: 'commit for an unknown job or partition' }
        const probe = this.commitProbe
        const proof = probe === undefined ? undefined : probeProof(probe.nonce, ctx.remotePeer.toString(), this.c.self, probeSubject.localCommit(req))
        if (proof === undefined || !timingSafeEqual(Buffer.from(req.proof), Buffer.from(proof))) return { inPlace: false, accepted: false, reason: 'wrong proof of the nonce: not this host, or not this user' }
        let accepted: boolean
        try {
          accepted = await parts.takeInPlace(req.partition, req.path, req.bytes)
        } catch (err) {
          return { inPlace: false, accepted: false, reason: errorMessage(err) }
        }
        if (!accepted) return { inPlace: true, accepted, reason: 'already committed' }
        this.c.log.info({ partition: req.partition, bytes: req.bytes, epoch: req.epoch, from: ctx.remotePeer.toString() }, 'part committed in place')
        if (parts.complete) this.wake?.()
        return { inPlace: true, accepted }
      }
    }))
    this.handlers.push(await handleRequests(network, {
      protocol: JOB_PROTOCOLS.commitBlocks,
      requestSchema: CommitBlocksRequest,
      log,
      maxFrameBytes: 64 * 2 ** 20,
      handle: (req, ctx): z.input<typeof CommitResponse> => {
        const parts = plan.parts
        if (req.jobId !== plan.jobId || req.partition >= plan.reduces || !(parts instanceof MeshPartCollector)) return { accepted: false, reason: 'commit for an unknown job or partition' }
        const accepted = parts.offer(req.partition, { size: req.size, blocks: req.blocks })
        if (!accepted) return { accepted, reason: 'already committed' }
        this.c.log.info({ partition: req.partition, bytes: req.size, blocks: req.blocks.length, epoch: req.epoch, from: ctx.remotePeer.toString() }, 'part committed (blocks in the mesh)')
        if (parts.complete) this.wake?.()
        return { accepted }
      }
    }))
  }

  /** Serves nothing any more: a worker that asks for code, a split or a commit now is refused at protocol select. */
  async stop (): Promise<void> {
    const handlers = this.handlers.splice(0)
    await Promise.all(handlers.map(async (h) => { await h.unregister() }))
    this.commitProbe?.remove()
    this.commitProbe = undefined
  }

  /** Runs the job to the end: resolves when every part is committed, rejects when the job fails. */
  async run (opts: SubmissionOptions): Promise<void> {
    const pollMs = opts.pollMs ?? 250
    for (const a of this.c.bootstrap) {
      const peer = a.getComponents().find((c) => c.name === 'p2p')?.value
      if (peer !== undefined) this.known.set(peer, [a])
    }
    let epoch = -1
    while (!this.plan.parts.complete) {
      opts.signal?.throwIfAborted()
      if (this.coordinator === undefined) {
        const previous = this.coordinatorPeer
        const found = await this.findCoordinator(opts.coordinatorTimeoutMs, opts.signal)
        this.coordinator = found
        const submitted = await this.call(JOB_PROTOCOLS.submit, { job: this.spec(), committed: this.plan.parts.list() }, SubmitResponse, opts.signal).catch((err: unknown) => {
          this.c.log.info({ coordinator: found.peer, err: errorMessage(err) }, 'submit failed')
          this.coordinator = undefined
          return undefined
        })
        if (submitted === undefined) continue
        if (submitted.refused !== undefined) throw new JobRefusedError(`job ${this.plan.jobName} refused: ${submitted.refused}`)
        epoch = submitted.epoch
        this.coordinatorPeer = found.peer
        opts.onEvent?.({ type: 'coordinator', peer: found.peer, epoch, previous })
        // Detached: the coordinator holds the job, and needs nothing more from here.
        if (this.plan.detached !== undefined) return
      }
      // Measured: sleeping the whole poll after the last commit added 0–250 ms to every job (up to a quarter of a 1 s job).
      // The poll ends early for the last part or the caller's abort. (An AbortSignal.any per poll on the long-lived
      // signal is not retained: 200,000 of them left 0.3 MB after a GC on Node 20.20.)
      const woken = new AbortController()
      this.wake = () => { woken.abort() }
      await sleep(pollMs, { signal: opts.signal === undefined ? woken.signal : AbortSignal.any([opts.signal, woken.signal]) }).catch(() => {})
      this.wake = undefined
      opts.signal?.throwIfAborted()
      if (this.plan.parts.complete) break
      let status
      try {
        status = await this.call(JOB_PROTOCOLS.status, { jobId: this.plan.jobId }, StatusResponse, opts.signal)
      } catch (err) {
        this.c.log.info({ coordinator: this.coordinator?.peer, err: errorMessage(err) }, 'coordinator lost')
        this.coordinator = undefined
        continue
      }
      if (!status.known || status.epoch !== epoch) {
        // A coordinator that does not know the job (new, or restarted): submit again, same id.
        this.coordinator = undefined
        continue
      }
      if (status.cancelled === true) throw new JobCancelledError(`job ${this.plan.jobId} cancelled (${status.error?.message ?? 'by a user'}); nothing was written to the output`)
      if (status.error !== undefined) throw new JobFailedError(`job ${this.plan.jobName} failed: ${status.error.message} (mrp2p job ${this.plan.jobId} shows its tasks)`, status.error.stack)
      if (status.progress !== undefined) opts.onEvent?.({ type: 'progress', progress: status.progress, parts: this.plan.parts.count, bytesIn: this.bytesIn, bytesOut: this.bytesOut })
    }
  }

  private async call<S extends z.ZodType> (protocol: string, body: unknown, schema: S, signal?: AbortSignal): Promise<z.output<S>> {
    const target = this.coordinator
    if (target === undefined) throw new NoCoordinatorError('no coordinator')
    // The dial may have to pass a silent address (a coordinator behind another NAT) before its relayed one.
    return await request(this.c.network, target.addrs, protocol, body, schema, { signal, timeouts: { dialMs: 5_000, firstByteMs: 3_000, responseMs: 3_000 } })
  }

  /** Asks every member it knows of (the bootstrap nodes first) who holds the lease. */
  private async findCoordinator (timeoutMs: number, signal?: AbortSignal): Promise<{ peer: string, addrs: Multiaddr[] }> {
    const deadline = performance.now() + timeoutMs
    let lastError = 'no node answered'
    while (performance.now() < deadline) {
      signal?.throwIfAborted()
      for (const [peer, addrs] of [...this.known]) {
        try {
          const info = await queryInfo(this.c.network, addrs, { signal, timeouts: { dialMs: 2_000, firstByteMs: 2_000, responseMs: 2_000 } })
          this.answered = true
          for (const m of info.members) {
            if (m.liveness !== 'dead' && m.addrs.length > 0) this.known.set(m.peerId, m.addrs.map(withPeer(m.peerId)))
          }
          if (info.coordinator !== null) {
            const addrs = info.coordinator === info.peerId ? info.addrs.map(withPeer(info.peerId)) : this.known.get(info.coordinator)
            if (addrs !== undefined && addrs.length > 0) return { peer: info.coordinator, addrs }
          }
          lastError = `${peer} knows no coordinator yet`
        } catch (err) {
          // No retry fixes a key that does not match the mesh's: say so now rather than at the timeout. But once a
          // member has answered, the key is right: a coordinator killed while we dialled it also fails the handshake
          // (a CI run's submit gave up so, with "the mesh is private", on the third coordinator kill of one job).
          if (isHandshakeRefusal(err) && !this.answered) throw swarmKeyMismatch(addrs.map(String).join(', '), this.c.keyed === true)
          lastError = `${peer}: ${errorMessage(err)}`
        }
      }
      await sleep(300, { signal })
    }
    throw new NoCoordinatorError(`no coordinator found within ${Math.round(timeoutMs / 1000)} s (${lastError})`)
  }
}

function withPeer (peer: string): (a: string) => Multiaddr {
  return (a) => withPeerId(a, peer)
}
