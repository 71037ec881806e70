import { defaultPartition, fnv1a32Bytes } from './fnv1a.js'
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

/**
 * The same partitioner over a key given as bytes, `buf[start, end)`: the default hashes the bytes as they are; a
 * job's own function is given the key decoded (UTF-8, as a map's emitted key would have been).
 */
export function bytesPartitioner (job: Job, jobName: string, ctx: JobContext): (buf: Buffer, start: number, end: number) => number {
  const reduces = ctx.reduces
  if (job.partition === undefined) return (buf, start, end) => (fnv1a32Bytes(buf, start, end) & 0x7fffffff) % reduces
  const ofKey = partitioner(job, jobName, ctx)
  return (buf, start, end) => ofKey(buf.toString('utf8', start, end))
}
