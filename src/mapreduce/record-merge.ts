import { IndexHeap } from './index-heap.js'
import type { RunReader } from './run-file.js'

/**
 * KWayMerge's order over records left as bytes: keys compare as UTF-8 bytes, which is the order the runs are
 * sorted in (key-order.ts), and equal keys go in run order. For the merges that copy records as they are: the
 * passes that bring many runs down to a few, a map's spills, and the reduce of a job without a `reduce`.
 * Keys are compared by their first four bytes as numbers first (`RunReader.keyPrefix`); only keys that tie there
 * call into `Buffer.compare`, whose cost per call, not per byte, was a sixth of a merge.
 */
export class RecordMerge extends IndexHeap {
  constructor (private readonly readers: readonly RunReader[]) {
    super()
    readers.forEach((r, i) => { if (r.nextRecord()) this.push(i) })
  }

  protected less (a: number, b: number): boolean {
    const x = this.readers[a]
    const y = this.readers[b]
    if (x.keyPrefix !== y.keyPrefix) return x.keyPrefix < y.keyPrefix
    const c = x.buf.compare(y.buf, y.keyStart, y.keyEnd, x.keyStart, x.keyEnd)
    return c < 0 || (c === 0 && a < b)
  }

  /** Hands every record to `sink`, in merged order; the reader's fields name the record until `sink` returns. */
  drain (sink: (record: RunReader) => void): void {
    for (let top = this.peek(); top !== undefined; top = this.peek()) {
      const r = this.readers[top]
      sink(r)
      if (r.nextRecord()) this.siftTop()
      else this.pop()
    }
  }
}
