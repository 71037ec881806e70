import { IndexHeap } from './index-heap.js'
import type { RunReader } from './run-file.js'

/**
 * KWayMerge's order over records left as bytes: keys compare as UTF-8 bytes, which is the order the runs are
 * sorted in (key-order.ts), and equal keys go in run order. For the merges that copy records as they are: the
 * passes that bring many runs down to a few, a map's spills, and the reduce of a job without a `reduce`.
 * Keys are compared by their first four bytes as numbers first, kept per run as its record is read; only keys
 * that tie there call into `Buffer.compare`, whose cost per call, not per byte, was a sixth of a merge.
 */
export class RecordMerge extends IndexHeap {
  /** Per run, its current key's first four bytes as an unsigned number, zero past the key's end. */
  private readonly prefixes: Uint32Array

  constructor (private readonly readers: readonly RunReader[]) {
    super()
    this.prefixes = new Uint32Array(readers.length)
    readers.forEach((r, i) => { if (this.advance(i)) this.push(i) })
  }

  protected less (a: number, b: number): boolean {
    const p = this.prefixes
    if (p[a] !== p[b]) return p[a] < p[b]
    const x = this.readers[a]
    const y = this.readers[b]
    const c = x.buf.compare(y.buf, y.keyStart, y.keyEnd, x.keyStart, x.keyEnd)
    return c < 0 || (c === 0 && a < b)
  }

  /** Hands every record to `sink`, in merged order; the reader's fields name the record until `sink` returns. */
  drain (sink: (record: RunReader) => void): void {
    for (let top = this.peek(); top !== undefined; top = this.peek()) {
      sink(this.readers[top])
      if (this.advance(top)) this.siftTop()
      else this.pop()
    }
  }

  /**
   * Run `i`'s next record, and its key's prefix: keys in different order by the prefix are in that order, and a
   * key that is another's prefix ties with it. False at the run's end.
   */
  private advance (i: number): boolean {
    const r = this.readers[i]
    if (!r.nextRecord()) return false
    const b = r.buf
    const k = r.keyStart
    const n = r.keyEnd - k
    this.prefixes[i] = n >= 4
      ? ((b[k] << 24) | (b[k + 1] << 16) | (b[k + 2] << 8) | b[k + 3]) >>> 0
      : ((n > 0 ? b[k] << 24 : 0) | (n > 1 ? b[k + 1] << 16 : 0) | (n > 2 ? b[k + 2] << 8 : 0)) >>> 0
    return true
  }
}
