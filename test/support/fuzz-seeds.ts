import { INFO_PROTOCOL } from '../../src/protocol/ids.js'
import { JOB_PROTOCOLS, jobRefOf, type JobSpec, type UnsealedJobSpec } from '../../src/protocol/job-messages.js'
import { sealJob } from '../../src/protocol/job-seal.js'
import type { PrivateKey } from '@libp2p/interface'
import type { Json } from './fuzz-mutate.js'
import type { Prng } from './prng.js'

/**
 * Valid requests of every mrp2p protocol, as the zod schemas of
 * src/protocol/job-messages.ts and info.ts accept them, for the fuzzer to send
 * as they are and to mutate. They name jobs, maps and partitions that do not
 * exist, huge but legal indexes, and peers of the mesh, so that a valid frame
 * exercises the handlers' own checks past the schema.
 */
export interface SeedContext {
  rng: Prng
  /** The epoch the mesh is at (from /mrp2p/info). */
  epoch: number
  nodeIds: string[]
  /** The fuzzer's own PeerId (what it would put in `submitter.peer`). */
  self: string
  /** Jobs signed for real ({@link fuzzSealedSpecs}): their seals verify, so frames built on them reach past the signature check. */
  sealed: JobSpec[]
}

/**
 * Specs the fuzzer's own identity signed, valid as they are: a coordinator without --submitters takes them (and
 * their tasks then fail to fetch code from addresses where nobody serves it); mutated, their seals no longer hold.
 */
export async function fuzzSealedSpecs (rng: Prng, self: string, key: PrivateKey): Promise<JobSpec[]> {
  const specs: UnsealedJobSpec[] = [1, 3].map((maps) => ({
    jobId: `fuzz-sealed-${rng.int(0, 1_000_000)}`,
    jobName: 'wc',
    codeHash: HEX64,
    splits: Array.from({ length: maps }, (_, i) => ({ document: 'in.txt', index: i, offset: i * 10, length: 10, firstLine: 1 })),
    reduces: 2,
    params: {},
    submitter: { peer: self, addrs: ['/ip4/127.0.0.1/tcp/9'] },
    maxAttempts: 1
  }))
  return await Promise.all(specs.map(async (spec) => await sealJob(spec, key)))
}

/** A seal: one that verifies over another job, or one well formed and signed by nobody. */
function seal (ctx: SeedContext): Json {
  const { rng } = ctx
  if (ctx.sealed.length > 0 && rng.chance(0.5)) return rng.pick(ctx.sealed).seal
  return {
    signer: rng.pick([ctx.self, ...ctx.nodeIds]),
    signature: Buffer.from(Array.from({ length: 64 }, () => rng.int(0, 255))).toString('base64'),
    splitsRoot: HEX64,
    splitCount: rng.pick([1, 2, 1_000_000])
  }
}

function asJson (value: unknown): Json {
  return JSON.parse(JSON.stringify(value)) as Json
}

const HEX64 = 'ab'.repeat(32)

function jobId (rng: Prng): string {
  return rng.pick(['fuzz', 'wc', 'x', 'a'.repeat(64), '-', '_', 'wc-0123456789ab', `fuzz-${rng.int(0, 1_000_000)}`])
}

function split (rng: Prng): Record<string, Json> {
  const s: Record<string, Json> = { document: rng.pick(['../pg-grimm.txt', 'in.txt', '/etc/passwd', '../../../../etc/shadow', '']), index: rng.pick([0, 1, 9_999_999, 10_000_000]), offset: rng.pick([0, 1, Number.MAX_SAFE_INTEGER]), length: rng.pick([0, 1, 200_000, Number.MAX_SAFE_INTEGER]), firstLine: rng.pick([1, 2, 1_000_000]) }
  if (rng.chance(0.3)) s.path = rng.pick(['/nonexistent/fuzz', '/dev/zero', '/proc/self/mem', '../x'])
  return s
}

/** A streaming job's commands (docs/streaming.md): its hash never matches HEX64, so no worker runs them. */
function streaming (rng: Prng): Record<string, Json> {
  return {
    mapper: rng.pick(['exit 0', '', 'x'.repeat(16 * 1024 + 1)]),
    reducer: 'cat',
    files: rng.chance(0.5) ? [] : [{ name: rng.pick(['f', '..', '../x', 'a/b', '']), hash: HEX64, bytes: rng.pick([0, 64 * 1024 * 1024 + 1]) }],
    env: rng.chance(0.5) ? {} : { OK: 'v', '1BAD': 'x', PATH: '/nowhere' }
  }
}

function jobRef (ctx: SeedContext): Record<string, Json> {
  const { rng } = ctx
  const extra: Record<string, Json> = rng.chance(0.3) ? { streaming: streaming(rng) } : {}
  return {
    ...extra,
    jobId: jobId(rng),
    jobName: rng.pick(['wc', 'indexer', 'fuzz']),
    codeHash: HEX64,
    reduces: rng.pick([1, 3, 100_000]),
    params: rng.chance(0.5) ? {} : { k: 'v', '../x': 'y'.repeat(rng.int(0, 1000)) },
    // Addresses where nobody serves code: a task taken from these fails to fetch its code and ends.
    submitter: { peer: ctx.self, addrs: [rng.pick(['/ip4/127.0.0.1/tcp/9', '/ip4/127.0.0.1/tcp/1/p2p/' + ctx.self, 'garbage'])] },
    taskTimeoutMs: rng.pick([1, 1_000, 604_800_000]),
    seal: seal(ctx)
  }
}

export function requestSeeds (protocol: string, ctx: SeedContext): Json[] {
  const { rng, epoch, nodeIds } = ctx
  // Epochs below the mesh's own: an order or report of a deposed coordinator, which a node must refuse or ignore.
  const oldEpoch = (): number => rng.pick([0, Math.max(0, epoch - 1)])
  switch (protocol) {
    case INFO_PROTOCOL:
      return [{}, { verbose: true }, { a: [1, 2, 3] }]
    case JOB_PROTOCOLS.submit:
      return [
        { job: { ...jobRef(ctx), splits: [split(rng)], maxAttempts: 1 } },
        { job: { ...jobRef(ctx), splits: [split(rng), split(rng)], maxAttempts: 100 }, committed: [0, 99_999] },
        ...ctx.sealed.map((job) => ({ job: asJson(job) }))
      ]
    case JOB_PROTOCOLS.status:
      return [{ jobId: jobId(rng) }, { jobId: 'wc-000000000000' }]
    case JOB_PROTOCOLS.register:
      return [
        { slots: 1, version: '0.1.0', incarnation: 'fuzz', outputs: [] },
        { slots: 1024, version: 'v', incarnation: 'x'.repeat(64), outputs: [{ jobId: jobId(rng), mapIndex: 0 }, { jobId: jobId(rng), mapIndex: 10_000_000 }] },
        { slots: 2, version: 'v', incarnation: 'y', outputs: [], noExec: rng.pick(['no', 'x'.repeat(501)]) }
      ]
    case JOB_PROTOCOLS.report:
      return [
        { epoch: oldEpoch(), jobId: jobId(rng), kind: 'map', index: 0, attempt: 1, ok: false, cause: 'user', error: { message: 'boom', stack: 'at x' } },
        { epoch: oldEpoch(), jobId: jobId(rng), kind: 'reduce', index: 2, attempt: 1_000_000, ok: false, cause: 'fetch', fetch: { mapIndex: 3, peer: rng.pick(nodeIds) } },
        { epoch: epoch, jobId: jobId(rng), kind: 'map', index: 10_000_000, attempt: 3, ok: true, partitionBytes: [0, 1, 2] },
        { epoch: epoch, jobId: jobId(rng), kind: 'map', index: 0, attempt: 1, ok: false, cause: 'setup', error: { message: 'mapper command not found' } }
      ]
    case JOB_PROTOCOLS.doJob:
      return [
        { epoch: oldEpoch(), job: jobRef(ctx), task: { kind: 'map', jobId: jobId(rng), index: 0, attempt: 1, split: split(rng) } },
        { epoch: oldEpoch(), job: jobRef(ctx), task: { kind: 'reduce', jobId: jobId(rng), index: 1, attempt: 2, sources: [{ mapIndex: 0, peer: rng.pick(nodeIds) }, { mapIndex: 10_000_000, peer: ctx.self }] } },
        // A sealed job's map, with a proof that does not lead to its root (or none): refused past the signature check.
        ...ctx.sealed.map((job) => ({ epoch: rng.pick([oldEpoch(), epoch]), job: asJson(jobRefOf(job)), task: { kind: 'map', jobId: job.jobId, index: 0, attempt: 1, split: asJson(job.splits[0]) }, splitProof: rng.chance(0.5) ? [HEX64] : [] }))
      ]
    case JOB_PROTOCOLS.cancel:
      return [
        { jobId: jobId(rng), seal: { signer: rng.pick([ctx.self, ...nodeIds]), signature: Buffer.from(Array.from({ length: 64 }, () => rng.int(0, 255))).toString('base64') } },
        ...ctx.sealed.map((job) => ({ jobId: job.jobId, seal: { signer: job.seal.signer, signature: job.seal.signature } }))
      ]
    case JOB_PROTOCOLS.end:
      return [
        { jobId: jobId(rng), epoch: oldEpoch() },
        { jobId: jobId(rng), epoch: oldEpoch(), task: { kind: 'reduce', index: 0, attempt: 1 } }
      ]
    case JOB_PROTOCOLS.sources:
      // A reducer's word about what it pulled counts only for its own running attempt: these name none of ours.
      return [
        { epoch, jobId: jobId(rng), index: 0, attempt: 1, pulled: [0, 1, 10_000_000] },
        { epoch: oldEpoch(), jobId: jobId(rng), index: 3, attempt: 9, pulled: [], failed: { mapIndex: 0, peer: rng.pick(nodeIds) } },
        ...ctx.sealed.map((job) => ({ epoch, jobId: job.jobId, index: 0, attempt: 1, pulled: Array.from({ length: 50 }, (_, i) => i), failed: { mapIndex: 0, peer: ctx.self } }))
      ]
    case JOB_PROTOCOLS.replicate:
      // Only the coordinator a worker follows may have it copy a map output (and so fetch from anyone).
      return [
        { epoch, jobId: jobId(rng), mapIndex: 0, from: rng.pick(nodeIds), reduces: 100_000 },
        { epoch: oldEpoch(), jobId: '..', mapIndex: 10_000_000, from: ctx.self, reduces: 1 }
      ]
    case JOB_PROTOCOLS.fetchRun:
      return [
        { jobId: jobId(rng), mapIndex: 0, partition: 0 },
        { jobId: jobId(rng), mapIndex: 10_000_000, partition: 10_000_000 },
        { jobId: '..', mapIndex: 0, partition: 0 }
      ]
    default:
      return []
  }
}
