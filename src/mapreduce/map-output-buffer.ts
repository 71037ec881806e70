import { needsByteOrderCompare, sortKeys } from './key-order.js'
import type { Job, JobContext } from './job-api.js'
import type { BlockWriterOptions } from './run-blocks.js'
import { RunWriter, type RunStats } from './run-file.js'
import { partitioner } from './partitioner.js'
import { userCodeError } from './user-code.js'

/** Values of one key are pre-reduced once this many pile up (when the job has a combiner). */
const COMBINE_EVERY = 64
const COMBINE_REPEATS = 4096
/** Rough V8 cost of a Map entry and of an array slot, for the memory budget. */
const KEY_OVERHEAD = 64
const VALUE_OVERHEAD = 16

/**
 * One key's values in emit order: `values`, then `last` repeated `repeat`
 * times. Jobs mostly emit the same value string again and again (wc's '1',
 * indexer's document name); counting a run instead of pushing each copy made
 * word count's map phase a third faster.
 */
interface Group {
  values: string[]
  last: string
  repeat: number
}

function expand (g: Group): string[] {
  const out = g.values
  for (let i = 0; i < g.repeat; i++) out.push(g.last)
  return out
}

/**
 * Map output held in memory, grouped by key. Grouping (rather than a flat list
 * sorted later) keeps each key's values in emit order for free and lets the
 * combiner run as values arrive.
 */
export class MapOutputBuffer {
  private groups = new Map<string, Group>()
  private highCodeUnits = false
  private readonly partitionOf: (key: string) => number
  /** Estimated bytes held; the map task spills when it passes the budget. */
  bytes = 0

  constructor (
    private readonly job: Job,
    private readonly jobName: string,
    private readonly ctx: JobContext,
    /** How its runs are written (and the task's spill merge writes its own). */
    readonly runOptions: BlockWriterOptions = {}
  ) {
    this.partitionOf = partitioner(job, jobName, ctx)
  }

  get size (): number {
    return this.groups.size
  }

  add (key: string, value: string): void {
    const g = this.groups.get(key)
    if (g === undefined) {
      this.groups.set(key, { values: [], last: value, repeat: 1 })
      this.bytes += KEY_OVERHEAD + 2 * key.length + VALUE_OVERHEAD + 2 * value.length
      if (!this.highCodeUnits && needsByteOrderCompare(key)) this.highCodeUnits = true
      return
    }
    if (value === g.last) {
      g.repeat++
    } else {
      // The run ends: its copies become real array slots (the run's first copy was counted when it began).
      for (let i = 0; i < g.repeat; i++) g.values.push(g.last)
      this.bytes += (g.repeat - 1) * VALUE_OVERHEAD + VALUE_OVERHEAD + 2 * value.length
      g.last = value
      g.repeat = 1
    }
    // A run of equal values costs no memory, so it may grow longer before the combiner folds it.
    if ((g.values.length >= COMBINE_EVERY || g.repeat >= COMBINE_REPEATS) && this.job.combine !== undefined) this.combineGroup(key, g)
  }

  private combineGroup (key: string, g: Group): void {
    for (const v of g.values) this.bytes -= VALUE_OVERHEAD + 2 * v.length
    this.bytes -= VALUE_OVERHEAD + 2 * g.last.length
    const combined = this.combineValues(key, expand(g))
    g.values = []
    g.last = combined
    g.repeat = 1
    this.bytes += VALUE_OVERHEAD + 2 * combined.length
  }

  combineValues (key: string, values: string[]): string {
    let out: unknown
    try {
      out = (this.job.combine as NonNullable<Job['combine']>)(key, values, this.ctx)
    } catch (err) {
      throw userCodeError(this.jobName, `combine failed on key ${JSON.stringify(key)}`, err)
    }
    if (typeof out !== 'string') throw userCodeError(this.jobName, `combine returned ${typeof out} for key ${JSON.stringify(key)}`, new TypeError('combine must return a string'))
    return out
  }

  /** Writes one sorted run per partition to `paths` (created, must not exist) and empties the buffer. */
  writeRuns (paths: readonly string[], options: BlockWriterOptions = this.runOptions): RunStats[] {
    const byPartition: string[][] = paths.map(() => [])
    for (const key of this.groups.keys()) byPartition[this.partitionOf(key)].push(key)
    const stats = paths.map((path, p) => {
      const writer = RunWriter.create(path, options)
      for (const key of sortKeys(byPartition[p], this.highCodeUnits)) {
        let values = expand(this.groups.get(key) as Group)
        if (values.length > 1 && this.job.combine !== undefined) values = [this.combineValues(key, values)]
        for (const v of values) writer.add(key, v)
      }
      return writer.close()
    })
    this.groups = new Map()
    this.highCodeUnits = false
    this.bytes = 0
    return stats
  }
}
