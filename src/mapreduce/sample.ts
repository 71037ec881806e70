import { UserCodeError } from '../util/errors.js'
import type { Job } from './job-api.js'
import { readSplit, type InputSplit } from './splits.js'
import { userStack } from './user-code.js'

/** Lines handed to a job's `sample` hook: enough for stable quantiles, small enough to read in a moment. */
export const SAMPLE_LINES = 10_000
/** Bytes read from the start of each split to find its share of the sample. */
export const SAMPLE_BYTES_PER_SPLIT = 1 << 20

/**
 * Runs the job's `sample` hook, if it has one, over lines taken evenly from
 * every split, and returns the job's parameters with what the hook added.
 * The same lines for the same inputs, so `run` and `submit` agree.
 */
export function sampledParams (job: Job, jobName: string, splits: readonly InputSplit[], reduces: number, params: Readonly<Record<string, string>>): Record<string, string> {
  if (job.sample === undefined || splits.length === 0) return { ...params }
  const perSplit = Math.max(1, Math.ceil(SAMPLE_LINES / splits.length))
  const lines: string[] = []
  for (const split of splits) {
    const text = readSplit({ ...split, length: Math.min(split.length, SAMPLE_BYTES_PER_SPLIT) })
    const got = text.split('\n')
    // The last piece may be a line cut by the byte limit: drop it unless the whole split was read.
    if (split.length > SAMPLE_BYTES_PER_SPLIT) got.pop()
    for (const line of got.slice(0, perSplit)) if (line !== '') lines.push(line)
  }
  let added: unknown
  try {
    added = job.sample(lines, { params, reduces })
  } catch (err) {
    throw new UserCodeError(`job ${jobName}: sample failed: ${err instanceof Error ? err.message : String(err)}`, userStack(err))
  }
  if (typeof added !== 'object' || added === null || Object.values(added).some((v) => typeof v !== 'string')) {
    throw new UserCodeError(`job ${jobName}: sample must return an object of string parameters`, undefined)
  }
  return { ...params, ...(added as Record<string, string>) }
}
