import { defaultPartition, fnv1a32Bytes } from './fnv1a.js'
import type { Job, JobContext } from './job-api.js'
import { parseCuts, RANGE_PARTITION, type RangePartition } from './range-partition.js'
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
  const rangeParam = (job.partition as Partial<RangePartition>)[RANGE_PARTITION]
  if (typeof rangeParam === 'string') return rangeOfBytes(jobName, ctx, rangeParam)
  const ofKey = partitioner(job, jobName, ctx)
  return (buf, start, end) => ofKey(buf.toString('utf8', start, end))
}

/** {@link rangePartition}'s ranges over key bytes: the cuts encoded once, each key compared as it lies. */
function rangeOfBytes (jobName: string, ctx: JobContext, param: string): (buf: Buffer, start: number, end: number) => number {
  let cuts: Buffer[]
  try {
    cuts = parseCuts(ctx.params, param).map((c) => Buffer.from(c))
  } catch (err) {
    throw userCodeError(jobName, 'partition failed', err)
  }
  const last = Math.min(cuts.length, ctx.reduces - 1)
  return (buf, start, end) => {
    let lo = 0
    let hi = last
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (compareToCut(buf, start, end, cuts[mid]) < 0) hi = mid
      else lo = mid + 1
    }
    return lo
  }
}

/** `buf[start, end)` against `cut`, as bytes. A loop: keys differ early, and a native compare costs a call. */
function compareToCut (buf: Buffer, start: number, end: number, cut: Buffer): number {
  const n = Math.min(end - start, cut.length)
  for (let i = 0; i < n; i++) {
    const d = buf[start + i] - cut[i]
    if (d !== 0) return d
  }
  return end - start - cut.length
}
