import { compareKeys } from './key-order.js'

/** What a range partition reads of a job's context (job-api.ts's `JobContext`, which re-exports this module). */
interface WithParams { readonly params: Readonly<Record<string, string>> }

/** Marks a partition function made by {@link rangePartition}, with the parameter its cuts are in. */
export const RANGE_PARTITION = Symbol.for('mrp2p.rangePartition')

/** A partition function that sends a key to the range it falls in, between cut keys that a parameter holds. */
export type RangePartition = ((key: string, reduces: number, ctx: WithParams) => number) & { readonly [RANGE_PARTITION]: string }

/** The cut keys in `params[param]`, a JSON array of strings (none when the parameter is not set). */
export function parseCuts (params: Readonly<Record<string, string>>, param: string): string[] {
  const text = params[param]
  if (text === undefined) return []
  let cuts: unknown
  try {
    cuts = JSON.parse(text)
  } catch {
    throw new TypeError(`parameter ${param} of a range partition is not JSON`)
  }
  if (!Array.isArray(cuts) || !cuts.every((c) => typeof c === 'string')) throw new TypeError(`parameter ${param} of a range partition must be a JSON array of strings`)
  return cuts as string[]
}

/**
 * A range partitioner (Hadoop's `TotalOrderPartitioner`, Spark's `RangePartitioner`): `params[param]` holds R−1 cut
 * keys in ascending byte order, as a job's `sample` returns them, and a key goes to the number of cuts at or below
 * it, so that part-00000 … part-(R−1), concatenated, are in key order. The engine knows this function: for a job
 * that reads key-value lines it compares each key's bytes with the cuts' without decoding the key, which was a
 * tenth of the sort's map time.
 */
export function rangePartition (param = 'cuts'): RangePartition {
  let parsedFor: Readonly<Record<string, string>> | undefined
  let cuts: string[] = []
  const partition = (key: string, reduces: number, ctx: WithParams): number => {
    if (ctx.params !== parsedFor) {
      cuts = parseCuts(ctx.params, param)
      parsedFor = ctx.params
    }
    let lo = 0
    let hi = Math.min(cuts.length, reduces - 1)
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (compareKeys(key, cuts[mid]) < 0) hi = mid
      else lo = mid + 1
    }
    return lo
  }
  return Object.assign(partition, { [RANGE_PARTITION]: param })
}
