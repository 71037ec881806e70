/**
 * The API a job module is written against. It is bundled into every job (the
 * `mrp2p` import of a job module is aliased here), so it must stay tiny and
 * free of node-only code: it imports only key-order.ts and range-partition.ts, which are both.
 */

/**
 * The order keys are sorted in, UTF-8 bytes (`LC_ALL=C sort`), without encoding them: what a range partitioner
 * compares with, so that its ranges follow the engine's own order.
 */
export { compareKeys } from './key-order.js'
export { rangePartition, type RangePartition } from './range-partition.js'

/** Emits one intermediate key/value pair. Both must be strings. */
export type Emit = (key: string, value: string) => void

/** Where a map call's contents come from. A large file is cut into several splits at line ends. */
export interface SplitInfo {
  /** The input path exactly as given on the command line. */
  readonly document: string
  /** The split's number within the job (0-based, in input order). */
  readonly index: number
  /** Byte offset of the split's first byte in the document. */
  readonly offset: number
  /** Line number (1-based) of the split's first line in the document. */
  readonly firstLine: number
}

export interface JobContext {
  /** `--param key=value` pairs from the command line. */
  readonly params: Readonly<Record<string, string>>
  /** Number of reduce partitions. */
  readonly reduces: number
}

export interface MapContext extends JobContext {
  readonly split: SplitInfo
}

export interface ReduceContext extends JobContext {
  readonly partition: number
}

export interface Job {
  /**
   * Called once per split with the document name and the split's text. A job gives either `map` or
   * `keyValueSeparator`.
   */
  map?: (document: string, contents: string, emit: Emit, ctx: MapContext) => void | Promise<void>
  /**
   * Instead of `map`: every non-empty input line is one record as it is, its key the bytes before the first
   * `keyValueSeparator` (one ASCII character) and its value the bytes after it; a line without one is a key with an
   * empty value. Hadoop's `KeyValueTextInputFormat` under its identity mapper. The engine then reads the split as
   * bytes and never decodes a line into a string (only a key, for a `partition` function), which made the 1 GiB
   * sort's maps about 1.5 times as fast (docs/performance.md). Bytes that are not UTF-8 are kept as they are.
   */
  keyValueSeparator?: string
  /**
   * Called once per key, in key byte order, with every value emitted for it. Returns the output value.
   *
   * Optional: without it, every emitted record is written as it is, one `key value` line each (`value` alone with
   * `valuesOnly`), in key byte order and, for equal keys, in emit order: Hadoop's identity reducer, Spark's
   * `sortByKey`. The records are then copied as bytes, never decoded, which makes a sort's reduce several times
   * faster. A job with a `combine` needs a `reduce`: how many values a combiner leaves depends on where spills fell.
   */
  reduce?: (key: string, values: string[], ctx: ReduceContext) => string
  /**
   * Optional map-side pre-reduction. It may be called any number of times on
   * any subset of a key's values, so it must be associative and its output must
   * be something `reduce` (and `combine` again) accepts as a value.
   */
  combine?: (key: string, values: string[], ctx: JobContext) => string
  /** Optional: the reduce partition (0 ≤ p < reduces) of a key. Default: FNV-1a 32 of the key's UTF-8 bytes mod reduces. */
  partition?: (key: string, reduces: number, ctx: JobContext) => number
  /**
   * Optional: called once before any map (by `submit` or `run`) with a sample
   * of input lines taken evenly across the splits; the parameters it returns
   * are added to the job's, for every task. The place to compute a range
   * partitioner's cut points from the data (TeraSort's sampler).
   */
  sample?: (lines: string[], ctx: JobContext) => Record<string, string>
  /**
   * Optional: write only what `reduce` returns, one output line per key, without the key (Hadoop's NullWritable
   * key). For a job whose reduce builds the whole line, or several lines (the `top` example). Without a `reduce`:
   * each value alone, a line each.
   */
  valuesOnly?: boolean
}

/** Identity at run time; gives a job module its types. */
export function defineJob<J extends Job> (job: J): J {
  return job
}
