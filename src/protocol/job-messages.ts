import { z } from 'zod'
import { JobOptionsSchema } from '../mapreduce/job-options.js'
import { StreamingJobSchema } from '../mapreduce/streaming-job.js'
import { FileIdentitySchema } from '../util/file-identity.js'
import { pickDeclared } from '../util/pick-declared.js'
import { BlockRefSchema, CidText, DatasetName } from './dataset-messages.js'
import { protocolId } from './ids.js'

/**
 * Register / DoJob and the data paths of a job. Every message is validated
 * with these schemas before use: sizes, ranges and ids are bounded so that a
 * buggy or hostile member can at worst fail the tasks it runs.
 */
export const JOB_PROTOCOLS = {
  /** submitter → coordinator: the job (idempotent by job id; re-sent to every new coordinator) */
  submit: protocolId('job/submit'),
  /** submitter → coordinator: progress, or "unknown" (then the submitter submits again) */
  status: protocolId('job/status'),
  /** worker → coordinator: here I am, with my slots and the map outputs I hold */
  register: protocolId('job/register'),
  /** coordinator → worker: run this task attempt (fenced by epoch) */
  doJob: protocolId('job/dojob'),
  /** worker → coordinator: an attempt finished or failed */
  report: protocolId('job/report'),
  /** reducer → coordinator: these map outputs are pulled; which others can be pulled now? (a reduce started early) */
  sources: protocolId('job/sources'),
  /** coordinator → worker: copy this finished map output from its mapper (`--intermediate-replicas`) */
  replicate: protocolId('job/replicate'),
  /** coordinator → worker: the job ended; drop its intermediate files */
  end: protocolId('job/end'),
  /**
   * worker → submitter (bulk): the job's bundled code, or a streaming job's `--file`, by hash. Every bulk protocol
   * is at 2.0.0 or later since its trailer lost the SHA-256 (protocol/bulk.ts): a 1.0.0 reader would refuse it.
   */
  fetchCode: protocolId('job/fetch-code', '2.0.0'),
  /** worker → submitter (bulk): a split's bytes */
  fetchSplit: protocolId('job/fetch-split', '2.0.0'),
  /** worker → submitter: may this split be read in place? (the same host, the same file: docs/jobs.md) */
  localRead: protocolId('job/local-read'),
  /**
   * reducer → mapper (bulk): one partition of one map output. 2.0.0: runs are compressed blocks
   * (mapreduce/run-blocks.ts); a 1.0.0 mapper's plain runs would be misread, so the two refuse each other.
   * 3.0.0: the trailer without SHA-256.
   */
  fetchRun: protocolId('job/fetch-run', '3.0.0'),
  /**
   * reducer → mapper: where on this host is one partition of one map output? (the same host and user, proven as for
   * inputs read in place: docs/jobs.md) The reducer then links the run into its own folder instead of fetching it.
   */
  localRun: protocolId('job/local-run'),
  /** reducer → submitter (bulk upload): a finished part file */
  commit: protocolId('job/commit', '2.0.0'),
  /** reducer → submitter: take a finished part from this path on your host (the same host and user: docs/jobs.md) */
  localCommit: protocolId('job/local-commit'),
  /** reducer → submitter: a finished part stored as blocks in the mesh (`--output mesh:NAME`): their list */
  commitBlocks: protocolId('job/commit-blocks'),
  /** anyone → coordinator: end this job now (`mrp2p cancel`) */
  cancel: protocolId('job/cancel')
} as const

export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
const JobId = z.string().regex(JOB_ID_PATTERN)
/** A PeerId as text: base58btc (Ed25519 ids start with 12D3Koo). */
export const PeerIdText = z.string().min(8).max(128).regex(/^[1-9A-HJ-NP-Za-km-z]+$/)
const CodeHash = z.string().regex(/^[0-9a-f]{64}$/)
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Index = z.number().int().min(0).max(10_000_000)
const Attempt = z.number().int().min(1).max(1_000_000)
const Epoch = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Reduces = z.number().int().min(1).max(100_000)
const Text = (max: number): z.ZodString => z.string().max(max)
const Params = z.record(Text(256), Text(64 * 1024)).refine((p) => Object.keys(p).length <= 256, 'at most 256 params')
const Multiaddrs = z.array(Text(512)).max(32)

/** One map task's input, as the submitter planned it. `path` is set for a `--shared` input: every node reads the split there, in place, instead of fetching it. */
/**
 * `block`: a block of a dataset in the mesh (`--input mesh:NAME`): the map reads it from the block store, in place on a
 * node that holds it; `hosts` are the nodes that held it when the job was planned, the scheduler's first choice.
 */
export const SplitDescriptorSchema = z.object({
  document: Text(4096),
  index: Index,
  offset: Count,
  length: Count,
  firstLine: z.number().int().min(1),
  path: Text(4096).optional(),
  block: z.object({ cid: CidText, hosts: z.array(PeerIdText).max(16) }).optional()
})
export type SplitDescriptor = z.output<typeof SplitDescriptorSchema>

export const TaskKindSchema = z.enum(['map', 'reduce'])
export type TaskKind = z.output<typeof TaskKindSchema>

export const TaskErrorSchema = z.object({ message: Text(16 * 1024), stack: Text(64 * 1024).optional() })
export type TaskError = z.output<typeof TaskErrorSchema>
/** Why a job failed: the failing task's error, `task` naming it (`map 3`, or `job` for the job as a whole). */
export const JobFailureSchema = TaskErrorSchema.extend({ task: Text(200) })
export type JobFailure = z.output<typeof JobFailureSchema>

/**
 * The submitter's signature over a job (docs/security.md, "Signed jobs"): over the job ref less the seal, and over
 * the root of a Merkle tree of its splits, so that a worker handed one split can check that split alone.
 * `signer` is an Ed25519 PeerId: the public key is in it.
 */
export const JobSealSchema = z.object({
  signer: PeerIdText,
  /** Ed25519, 64 bytes, base64. */
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/),
  splitsRoot: CodeHash,
  splitCount: z.number().int().min(1).max(1_000_000)
})
export type JobSeal = z.output<typeof JobSealSchema>

export const UnsealedJobSpecSchema = z.object({
  jobId: JobId,
  jobName: Text(200),
  codeHash: CodeHash,
  // Split i must say index i: the scheduler relies on it and throws otherwise, and a Submit held while a new
  // coordinator waits for inventories reaches the scheduler from a timer, where that throw killed the node
  // (found by test/cluster/fuzz.test.ts). Refused here, it is one error answer to one bad request.
  /** `splits[i].index` must be `i`: map task i reads split i. */
  splits: z.array(SplitDescriptorSchema).min(1).max(1_000_000).refine((splits) => splits.every((s, i) => s.index === i), 'splits[i].index must be i'),
  /** R, at least 1. */
  reduces: Reduces,
  params: Params,
  /**
   * `commitProbe`: where a reducer on the submitter's host, running as its user, reads the nonce that lets it
   * commit a part in place (job/local-commit) instead of streaming it; none when the output is not a local folder.
   */
  submitter: z.object({ peer: PeerIdText, addrs: Multiaddrs, commitProbe: Text(4096).optional() }),
  /** Attempts per task that failed by the user's code; then the job fails. */
  maxAttempts: z.number().int().min(1).max(100),
  /** What the job's `sample` hook wrote on the submitter (its last 64 KiB): `mrp2p logs` shows it. */
  sampleLog: Text(64 * 1024).optional(),
  /**
   * `--output mesh:NAME`: reducers store their parts as blocks of dataset NAME (`replicas` copies, cut at line ends
   * past `blockSize`) and commit the blocks' list; the name is bound once every part is in.
   */
  meshOutput: z.object({ name: DatasetName, replicas: z.number().int().min(1).max(16), blockSize: z.number().int().min(1).max(2 ** 31) }).optional(),
  /**
   * `submit --detach`: the job needs its submitter for nothing once the coordinator has it. Its inputs and output are
   * datasets; its bundled code is a block in the mesh (`code`, absent for a streaming job), reducers report their
   * parts' blocks to the coordinator, which binds the output and stores this spec in the mesh for its successors.
   */
  detached: z.object({ code: z.object({ cid: CidText, bytes: Count }).optional() }).optional(),
  /** A streaming job's commands (docs/streaming.md); `codeHash` is then streamingCodeHash of them. */
  streaming: StreamingJobSchema.optional(),
  // The job's options are the engine's schema (mapreduce/job-options.ts), carried as they are.
  ...JobOptionsSchema.shape
})
/** A job as the submitter sends it, before it is sealed. */
export type UnsealedJobSpec = z.output<typeof UnsealedJobSpecSchema>
export const JobSpecSchema = UnsealedJobSpecSchema.extend({ seal: JobSealSchema })
export type JobSpec = z.output<typeof JobSpecSchema>

/** What a worker needs to know of a job to run any of its tasks: the spec less what only the scheduler reads. */
export const JobRefSchema = JobSpecSchema.omit({ splits: true, maxAttempts: true, sampleLog: true })
export type JobRef = z.output<typeof JobRefSchema>
/** What the seal's signature covers, besides the splits' root: the job ref less the seal. */
export const SignedJobSchema = JobRefSchema.omit({ seal: true })

/** The job ref of a spec: its keys are the schema's, so an option added to the spec reaches workers with no code here. */
export function jobRefOf (spec: JobSpec): JobRef {
  return pickDeclared(JobRefSchema, spec)
}

/** `committed`: the partitions the submitter already holds, so that a new coordinator does not run their reduces again. */
export const SubmitRequest = z.object({ job: JobSpecSchema, committed: z.array(Index).max(100_000).optional() })
/** `refused`: the coordinator will not take the job (it holds too many); the submitter gives up with this reason. */
export const SubmitResponse = z.object({ epoch: Epoch, refused: Text(500).optional() })

export const ProgressSchema = z.object({
  maps: z.object({ done: Count, total: Count }),
  reduces: z.object({ done: Count, total: Count }),
  /** Attempts of this job running now (backups included). */
  running: Count,
  /** Attempts that ended without a result: user errors, broken workers, fetch failures, attempts lost with a worker. */
  failedAttempts: Count,
  /** 'map' while any map output is missing (also again after one is lost); 'failed' also after a cancel. */
  phase: z.enum(['map', 'reduce', 'done', 'failed']),
  /**
   * Map outputs whose only holder went away: re-run because its node was declared down (`lostDown`) or a reducer
   * could not fetch it (`lostFetch`), or not re-run because every reduce still running had already pulled it (`kept`);
   * and those copied to a second node (`copied`: `--intermediate-replicas 2`, or the mesh churning).
   */
  mapOutputs: z.object({ lostDown: Count, lostFetch: Count, kept: Count, copied: Count.default(0) }).optional()
})
export type JobProgress = z.output<typeof ProgressSchema>

/** A job's state in its history record, `jobs` and `cancel`. */
export const JobStateSchema = z.enum(['running', 'succeeded', 'failed', 'cancelled'])
export type JobState = z.output<typeof JobStateSchema>
export const StatusRequest = z.object({ jobId: JobId })
export const StatusResponse = z.object({
  known: z.boolean(),
  epoch: Epoch,
  progress: ProgressSchema.optional(),
  error: JobFailureSchema.optional(),
  /** The job was cancelled (`mrp2p cancel`); `error` says by whom. */
  cancelled: z.boolean().optional()
})

export const RegisterRequest = z.object({
  slots: z.number().int().min(1).max(1024),
  version: Text(64),
  /** Changes at every start of the node: a restart the failure detector missed still reads as one. */
  incarnation: Text(64),
  /** Finished map outputs held on this worker: what a new coordinator rebuilds from. */
  outputs: z.array(z.object({ jobId: JobId, mapIndex: Index })).max(1_000_000),
  /** Set when this node runs no streaming commands (`join --no-exec`, or `--sandbox` without bubblewrap): why. */
  noExec: Text(500).optional(),
  /**
   * This node's host, as a hash (worker/host-id.ts): the coordinator tells a map whether every worker shares its
   * host. Only a hint for how to store map output; what crosses in place is proven per run (job/local-run).
   */
  host: z.string().regex(/^[0-9a-f]{32}$/).optional(),
  /** This node's memory (its cgroup's limit where it has one): whether a job's raw runs would stay in its page cache. */
  memoryBytes: Count.optional()
})
export const RegisterResponse = z.object({ epoch: Epoch })

/** One map output a reducer may pull: map `mapIndex`'s, served by `peer`. */
export const MapSourceSchema = z.object({ mapIndex: Index, peer: PeerIdText })
export const MapAssignmentSchema = z.object({
  kind: z.literal('map'),
  jobId: JobId,
  index: Index,
  attempt: Attempt,
  split: SplitDescriptorSchema,
  /**
   * Store the runs uncompressed: every worker registered with the coordinator said it runs on this map's host, so
   * reducers will link them in place, and the job is small enough for them to stay in that host's page cache
   * (coordinator-service.ts, `rawRuns`): compressing them would only cost time.
   */
  rawRuns: z.literal(true).optional()
})
export const ReduceAssignmentSchema = z.object({
  kind: z.literal('reduce'),
  jobId: JobId,
  index: Index,
  attempt: Attempt,
  /**
   * Where partition `index` of map `mapIndex` is served, in map order: one entry per map when the reduce starts
   * after every map is done, else those done so far (the rest come from `job/sources`).
   */
  sources: z.array(MapSourceSchema).max(1_000_000),
  /** How many maps the job has: a reduce holding fewer outputs asks the coordinator for more (`job/sources`). */
  maps: Count
})
export const AssignmentSchema = z.discriminatedUnion('kind', [MapAssignmentSchema, ReduceAssignmentSchema])
export type MapAssignment = z.output<typeof MapAssignmentSchema>
export type ReduceAssignment = z.output<typeof ReduceAssignmentSchema>
export type Assignment = z.output<typeof AssignmentSchema>
/** `splitProof`: for a map, its split's path in the seal's Merkle tree (the worker checks the split was signed). */
export const DoJobRequest = z.object({ epoch: Epoch, job: JobRefSchema, task: AssignmentSchema, splitProof: z.array(CodeHash).max(40).optional() })
/** `unable`: this node will run none of the job's tasks (its signer is not allowed here): try other nodes. */
export const DoJobResponse = z.object({ accepted: z.boolean(), reason: Text(500).optional(), unable: z.boolean().optional() })

/**
 * Why an attempt failed, as the scheduler counts it: `user` (the job's code) and `resource` (the node lacks what the
 * job needs, such as disk) count toward the job's attempts; `worker` (the node broke) and `fetch` (a map output
 * could not be pulled) do not. `setup`: the job cannot start on that node at all (a streaming command not found
 * there): the job's tasks go to other nodes, and the job fails once no node is left that could run it.
 */
export const FailureCauseSchema = z.enum(['user', 'worker', 'fetch', 'resource', 'setup'])
export type FailureCause = z.output<typeof FailureCauseSchema>

/** What one attempt read and wrote; a map's records in are its split's lines, a reduce's its keys' values. */
export const TaskCountersSchema = z.object({
  recordsIn: Count.optional(),
  bytesIn: Count.optional(),
  recordsOut: Count.optional(),
  bytesOut: Count.optional(),
  /** A reduce's inputs pulled from other nodes: bytes before compression, and as sent. */
  shuffleRawBytes: Count.optional(),
  shuffleBytes: Count.optional(),
  /** A reduce's inputs linked in place from mappers on its host (job/local-run), as stored: none of it was sent. */
  shuffleLinkedBytes: Count.optional(),
  /** A map's split as fetched from the submitter: 0 when read in place (`--shared`, or on the submitter's host). */
  inputFetchedBytes: Count.optional(),
  /** A map's block of a dataset pulled from another node: 0 when the block was held where the map ran. */
  blockFetchedBytes: Count.optional(),
  /** A reduce's part as streamed to the submitter: 0 when the submitter took it in place (or it went to the mesh). */
  outputSentBytes: Count.optional()
})
export type TaskCounters = z.output<typeof TaskCountersSchema>

/** A reduce's part stored in the mesh: its size and its blocks in order (`--output mesh:NAME`). */
export const StoredPartSchema = z.object({ size: Count, blocks: z.array(BlockRefSchema).max(1_000_000) })
export type StoredPart = z.output<typeof StoredPartSchema>

export const ReportRequest = z.object({
  epoch: Epoch,
  jobId: JobId,
  kind: TaskKindSchema,
  index: Index,
  attempt: Attempt,
  ok: z.boolean(),
  partitionBytes: z.array(Count).max(100_000).optional(),
  /** `resource`: the node ran out of something the job needs (disk): counts toward the job's attempts, like `user`. */
  cause: FailureCauseSchema.optional(),
  error: TaskErrorSchema.optional(),
  fetch: z.object({ mapIndex: Index, peer: PeerIdText }).optional(),
  /** What a successful attempt read and wrote (the job's counters in its history record). */
  counters: TaskCountersSchema.optional(),
  /** A reduce of a detached job: its part, stored as blocks in the mesh (the coordinator collects them). */
  part: StoredPartSchema.optional()
})
/** A worker's word that an attempt ended. */
export type Report = z.output<typeof ReportRequest>
export const OkResponse = z.object({ ok: z.literal(true) })

/**
 * A reduce started before every map was done asks for the map outputs it lacks: it says which it pulled since its
 * last ask (the coordinator then need not re-run them if their node dies) and which one it could not fetch.
 */
export const SourcesRequest = z.object({
  epoch: Epoch,
  jobId: JobId,
  index: Index,
  attempt: Attempt,
  pulled: z.array(Index).max(1_000_000),
  failed: MapSourceSchema.optional()
})
/** Outputs to pull now (none yet: ask again); `stop`: this attempt is no longer wanted (abandoned, or another epoch). */
export const SourcesResponse = z.object({ sources: z.array(MapSourceSchema).max(1_000_000), stop: z.boolean().optional() })

/** Copy every partition of map `mapIndex`'s output from `from` into this node's store, then answer. */
export const ReplicateRequest = z.object({ epoch: Epoch, jobId: JobId, mapIndex: Index, from: PeerIdText, reduces: z.number().int().min(1).max(100_000) })
export const ReplicateResponse = z.object({ ok: z.boolean(), reason: Text(500).optional() })

/** The whole job ended (drop its files), or, with `task`, one attempt lost to another (stop it). */
export const EndRequest = z.object({ jobId: JobId, epoch: Epoch, task: z.object({ kind: TaskKindSchema, index: Index, attempt: Attempt }).optional() })

export const FetchCodeRequest = z.object({ hash: CodeHash })
export const FetchSplitRequest = z.object({ jobId: JobId, index: Index })
/**
 * `probe`: a file the worker just wrote, readable by its own user only; the submitter answers with its content.
 * Only a process on the worker's host, running as the worker's user, can read it: a remote peer cannot.
 */
export const LocalReadRequest = z.object({ jobId: JobId, index: Index, probe: Text(4096) })
export const LocalReadResponse = z.union([
  /**
   * `proof`: the probe's nonce bound to this submitter, the asking worker and the split (local-read-probe.ts,
   * probeProof), never the nonce, which a remote asker could replay; `file`: the split's file as it was when the job
   * was planned.
   */
  z.object({ ok: z.literal(true), proof: z.string().regex(/^[0-9a-f]{64}$/), path: Text(4096), file: FileIdentitySchema }),
  z.object({ ok: z.literal(false), reason: Text(500) })
])
export const FetchRunRequest = z.object({ jobId: JobId, mapIndex: Index, partition: Index })
/** `probe`: the reducer's probe, as in LocalReadRequest: the mapper proves it read it (local-read-probe.ts, probeProof). */
export const LocalRunRequest = FetchRunRequest.extend({ probe: Text(4096) })
export const LocalRunResponse = z.union([
  /**
   * `proof`: the probe's nonce bound to this mapper, this reducer and this run (probeProof), never the nonce itself, which a
   * remote asker could replay; `path`: the finished run, absolute; `bytes`: its size; `rawBytes`: its records before
   * compression, when known.
   */
  z.object({ ok: z.literal(true), proof: z.string().regex(/^[0-9a-f]{64}$/), path: Text(4096), bytes: Count, rawBytes: Count.optional() }),
  /** `elsewhere`: the probe was not readable there (another host or user): the reducer stops asking that mapper. */
  z.object({ ok: z.literal(false), reason: Text(500), elsewhere: z.literal(true).optional() })
])
/** First frame of every bulk answer; the bytes follow when ok. */
export const BulkResponseHeader = z.union([
  /** `rawBytes`: a map output's records before compression (fetch-run only; absent for a map output whose meta lacks it). */
  z.object({ ok: z.literal(true), bytes: Count, rawBytes: Count.optional() }),
  z.object({ ok: z.literal(false), error: Text(4000) })
])
export const CommitRequest = z.object({ jobId: JobId, partition: Index, epoch: Epoch, attempt: Attempt, bytes: Count })
/**
 * `nonce`: the content of the job's `submitter.commitProbe`, which only a process on the submitter's host, as its
 * user, can read: the proof that `path` names the reducer's own file, not one a remote peer would have it copy.
 */
/** `proof`: the nonce of the submitter's commit probe bound to this reducer, the submitter and the partition (probeProof). */
export const LocalCommitRequest = z.object({ jobId: JobId, partition: Index, epoch: Epoch, attempt: Attempt, bytes: Count, path: Text(4096), proof: z.string().regex(/^[0-9a-f]{64}$/) })
/** `inPlace: false`: the submitter did not take the file (another host, a file it cannot read as said): stream it. */
export const LocalCommitResponse = z.object({ inPlace: z.boolean(), accepted: z.boolean(), reason: Text(500).optional() })
export const CommitBlocksRequest = z.object({ jobId: JobId, partition: Index, epoch: Epoch, attempt: Attempt, ...StoredPartSchema.shape })
export const CommitResponse = z.object({ accepted: z.boolean(), reason: Text(500).optional() })

/** `seal`: who asks, signed over the job id (docs/security.md): a coordinator with `--submitters` checks it. */
export const CancelRequest = z.object({ jobId: JobId, seal: z.object({ signer: PeerIdText, signature: JobSealSchema.shape.signature }) })
/**
 * `known`: the coordinator holds the job; `state`: how it stands after the request (`cancelled` when this request
 * ended it); `refused`: the asker may not cancel jobs here.
 */
export const CancelResponse = z.object({ known: z.boolean(), state: JobStateSchema.optional(), refused: Text(500).optional() })
