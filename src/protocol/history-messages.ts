import { z } from 'zod'
import { JobOptionsSchema } from '../mapreduce/job-options.js'
import { StreamingJobSchema } from '../mapreduce/streaming-job.js'
import { protocolId } from './ids.js'
import { CidText, DatasetName } from './dataset-messages.js'
import { JOB_ID_PATTERN, JobFailureSchema, StoredPartSchema, JobStateSchema, PeerIdText, ProgressSchema, TaskKindSchema } from './job-messages.js'

export { JobStateSchema, TaskCountersSchema, type JobState, type TaskCounters } from './job-messages.js'

/**
 * Job history: the record of every job, kept by every member (docs/history.md). The coordinator pushes a
 * job's record to every member while it runs and when it ends; a member that was away pulls what it missed
 * from another; `jobs`, `job`, `logs` and the dashboard read it from whichever node they ask.
 */
export const HISTORY_PROTOCOLS = {
  /** coordinator → member: records to keep (a newer version of a record replaces the older). */
  push: protocolId('history/push'),
  /** member → member: which records (id and version) you hold, so that I fetch only what I miss. */
  index: protocolId('history/index'),
  /** anyone → member: records by id, or the one record whose id starts with a prefix. */
  get: protocolId('history/get'),
  /** anyone → member: the newest records' summaries, filtered by state. */
  list: protocolId('history/list')
} as const

const JobId = z.string().regex(JOB_ID_PATTERN)
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
/** Wall-clock milliseconds since 1970 (Date.now() of the node that saw it). */
const Time = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Index = z.number().int().min(0).max(10_000_000)

/**
 * How an attempt ended. `killed`: stopped because its job ended (failed or cancelled); `backup-lost`: another
 * attempt of its task finished first; `lost`: its node died or became unreachable while it ran; `refused`: the
 * node would not take the order (no free slot, a stale epoch).
 */
export const AttemptOutcomeSchema = z.enum(['running', 'succeeded', 'failed', 'killed', 'lost', 'refused', 'backup-lost'])
export type AttemptOutcomeName = z.output<typeof AttemptOutcomeSchema>


export const AttemptRecordSchema = z.object({
  /** Attempt numbers restart under every coordinator: an attempt is (epoch, attempt). */
  epoch: Count,
  attempt: z.number().int().min(1).max(1_000_000),
  node: PeerIdText,
  startedAt: Time,
  endedAt: Time.optional(),
  outcome: AttemptOutcomeSchema,
  /** Bytes written: a map's output (compressed, as stored), a reduce's part. */
  bytes: Count.optional(),
  /** The first line of a failure's message. */
  error: z.string().max(500).optional()
})
export type AttemptRecord = z.output<typeof AttemptRecordSchema>

export const TaskRecordSchema = z.object({ kind: TaskKindSchema, index: Index, attempts: z.array(AttemptRecordSchema).max(1_000) })
export type TaskRecord = z.output<typeof TaskRecordSchema>

/** Job totals: the sums of each task's first successful attempt (a backup's or a re-run's work is not counted twice). */
export const JobCountersSchema = z.object({
  mapRecordsIn: Count,
  mapBytesIn: Count,
  mapRecordsOut: Count,
  mapBytesOut: Count,
  reduceRecordsIn: Count,
  reduceRecordsOut: Count,
  reduceBytesOut: Count,
  shuffleRawBytes: Count,
  shuffleBytes: Count,
  /** Map output that reducers linked in place from mappers on their host, as stored; records from before it read 0. */
  shuffleLinkedBytes: Count.default(0),
  /** Input bytes the submitter sent to workers; records from before this counter read 0. */
  inputFetchedBytes: Count.default(0),
  /** Of the maps' input, bytes of dataset blocks pulled from another node (the rest was read where it lay). */
  blockFetchedBytes: Count.default(0),
  /** Of the reduces' output, bytes streamed to the submitter (the rest it took in place, or went to the mesh). */
  outputSentBytes: Count.default(0)
})
export type JobCounters = z.output<typeof JobCountersSchema>

/** At most this many attempts are kept per record (the rest counted in `attemptsOmitted`): a record fits in one frame. */
export const MAX_RECORDED_ATTEMPTS = 4_000

export const JobRecordSchema = z.object({
  jobId: JobId,
  jobName: z.string().max(200),
  /** The submitting process's PeerId (where workers fetched its code and inputs). */
  submitter: PeerIdText,
  /** The identity that signed the job (`submit --identity`; a fresh one per submit without it); absent in older records. */
  identity: PeerIdText.optional(),
  /** The job's code hash as signed: the bundled module's, or a streaming job's commands' (absent in older records). */
  codeHash: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  inputs: z.object({ count: Count, bytes: Count }),
  maps: Count,
  reduces: Count,
  params: z.record(z.string().max(256), z.string().max(64 * 1024)),
  options: JobOptionsSchema,
  maxAttempts: z.number().int().min(1).max(100),
  submittedAt: Time,
  startedAt: Time.optional(),
  endedAt: Time.optional(),
  state: JobStateSchema,
  /** Who wrote this version of the record, under which epoch, and when. */
  coordinator: PeerIdText,
  epoch: Count,
  updatedAt: Time,
  /** Bumped when a job that had ended is started again (its submitter came back): that run's records win. */
  generation: Count,
  progress: ProgressSchema,
  counters: JobCountersSchema,
  failure: JobFailureSchema.optional(),
  tasks: z.array(TaskRecordSchema).max(1_000_000),
  attemptsOmitted: Count,
  /** What the job's `sample` hook wrote, on the submitter. */
  sampleLog: z.string().max(64 * 1024).optional(),
  /** A streaming job's commands, files and `--cmdenv` (docs/streaming.md). */
  streaming: StreamingJobSchema.optional(),
  /**
   * A detached job (`submit --detach`): its output dataset, where its sealed spec is in the mesh (once stored), and
   * the parts committed so far. A new coordinator resumes the job from this, with no submitter to send it again.
   */
  detached: z.object({
    output: DatasetName,
    spec: z.object({ cid: CidText, bytes: Count }).optional(),
    parts: z.array(StoredPartSchema.extend({ partition: Index })).max(100_000)
  }).optional()
})
export type JobRecord = z.output<typeof JobRecordSchema>

/** A record's version: a later generation wins, then an ended record over a running one, then the later write. */
export function recordVersion (r: Pick<JobRecord, 'generation' | 'state' | 'updatedAt'>): [number, number, number] {
  return [r.generation, r.state === 'running' ? 0 : 1, r.updatedAt]
}

/** Whether `a` is a newer version of a job's record than `b`. */
export function newerRecord (a: Pick<JobRecord, 'generation' | 'state' | 'updatedAt'>, b: Pick<JobRecord, 'generation' | 'state' | 'updatedAt'>): boolean {
  const va = recordVersion(a)
  const vb = recordVersion(b)
  for (let i = 0; i < va.length; i++) if (va[i] !== vb[i]) return va[i] > vb[i]
  return false
}

/** One line of `jobs`: a record less its tasks. */
export const JobSummarySchema = JobRecordSchema.omit({ tasks: true, params: true })
export type JobSummary = z.output<typeof JobSummarySchema>

export const HistoryPushRequest = z.object({ records: z.array(JobRecordSchema).min(1).max(64) })
export const HistoryPushResponse = z.object({ kept: Count })

const VersionSchema = z.object({ jobId: JobId, generation: Count, ended: z.boolean(), updatedAt: Time })
export const HistoryIndexRequest = z.object({}).loose()
export const HistoryIndexResponse = z.object({ records: z.array(VersionSchema).max(100_000) })

/** `ids`: these records (those held); `prefix`: the one record whose id starts so, or every id that does. */
export const HistoryGetRequest = z.union([
  z.object({ ids: z.array(JobId).min(1).max(64) }),
  z.object({ prefix: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) })
])
export const HistoryGetResponse = z.object({
  records: z.array(JobRecordSchema).max(64),
  /** With a prefix that more than one id starts with: those ids (at most 20), and no record. */
  ambiguous: z.array(JobId).max(20).optional()
})

export const HistoryListRequest = z.object({ state: JobStateSchema.optional(), limit: z.number().int().min(1).max(100_000).optional() })
export const HistoryListResponse = z.object({ jobs: z.array(JobSummarySchema).max(100_000), held: Count })
