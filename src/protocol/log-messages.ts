import { z } from 'zod'
import { protocolId } from './ids.js'
import { JOB_ID_PATTERN, TaskKindSchema } from './job-messages.js'

/**
 * `mrp2p logs`: what a job's own code wrote, kept per attempt on the node that ran it (docs/observability.md).
 * Offsets count characters since the attempt began; the node keeps the last part of each attempt's output,
 * so `start` (how much was cut before it) may be past the offset asked for.
 */
export const LOGS_PROTOCOL = protocolId('logs')

const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Index = z.number().int().min(0).max(10_000_000)
const AttemptKey = z.object({ kind: TaskKindSchema, index: Index, epoch: Count, attempt: z.number().int().min(1).max(1_000_000) })

export const LogsRequest = z.object({
  jobId: z.string().regex(JOB_ID_PATTERN),
  /** Only this task's attempts. */
  task: z.object({ kind: TaskKindSchema, index: Index }).optional(),
  /** Per attempt, the offset already read: only what follows it is sent. */
  after: z.array(AttemptKey.extend({ offset: Count })).max(100_000).optional()
})

export const AttemptLogSchema = AttemptKey.extend({
  /** Where `text` starts; characters before it (and after the offset asked for) were cut. */
  start: Count,
  text: z.string(),
  /** Characters written in all, cut ones included: the offset to ask from next. */
  end: Count,
  /** The attempt still runs: more may follow. */
  running: z.boolean()
})
export type AttemptLog = z.output<typeof AttemptLogSchema>

/** `more`: the answer was cut to its size limit; ask again from the offsets it reached. */
export const LogsResponse = z.object({ attempts: z.array(AttemptLogSchema).max(100_000), more: z.boolean() })

/** Frames of log answers: a few MiB of text, escaped as JSON. */
export const LOGS_FRAME_BYTES = 16 * 1024 * 1024
