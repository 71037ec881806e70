import { defaultPartition } from './fnv1a.js'
import type { Job, JobContext } from './job-api.js'
import { userCodeError } from './user-code.js'

/** The job's partition function, checked: what it returns must name one of the job's reduces. */
export function partitioner (job: Job, jobName: string, ctx: JobContext): (key: string) => number {
  const reduces = ctx.reduces
  const partition = job.partition
  if (partition === undefined) return (key) => defaultPartition(key, reduces)
  return (key) => {
    let p: unknown
    try {
      p = partition(key, reduces, ctx)
    } catch (err) {
      throw userCodeError(jobName, `partition failed on key ${JSON.stringify(key)}`, err)
    }
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p >= reduces) {
      throw userCodeError(jobName, `partition returned ${String(p)} for key ${JSON.stringify(key)}`, new RangeError(`partition must return an integer in [0, ${reduces})`))
    }
    return p
  }
}
