import { IndexHeap } from './index-heap.js'
import { compareKeys } from './key-order.js'
import type { RecordSource } from './run-file.js'

/**
 * Streaming k-way merge of sorted sources. Equal keys come out in source order
 * (then in each source's own order), so the values a reducer sees do not depend
 * on which worker ran which map, only on the map task numbers.
 */
export class KWayMerge extends IndexHeap {
  key = ''
  value = ''

  constructor (private readonly sources: RecordSource[]) {
    super()
    for (let i = 0; i < sources.length; i++) {
      if (sources[i].next()) this.push(i)
    }
  }

  protected less (a: number, b: number): boolean {
    const c = compareKeys(this.sources[a].key, this.sources[b].key)
    return c < 0 || (c === 0 && a < b)
  }

  /** Advances to the next record in merged order; false at the end. */
  next (): boolean {
    const top = this.peek()
    if (top === undefined) return false
    const src = this.sources[top]
    this.key = src.key
    this.value = src.value
    if (src.next()) this.siftTop()
    else this.pop()
    return true
  }
}

/** Calls `fn` once per distinct key with all its values, in merged order. */
export function forEachGroup (merge: KWayMerge, fn: (key: string, values: string[]) => void): void {
  if (!merge.next()) return
  let key = merge.key
  let values = [merge.value]
  while (merge.next()) {
    if (merge.key === key) {
      values.push(merge.value)
      continue
    }
    fn(key, values)
    key = merge.key
    values = [merge.value]
  }
  fn(key, values)
}

/** An in-memory sorted source: lets spilled and unspilled data share the merge. */
export class ArraySource implements RecordSource {
  key = ''
  value = ''
  private i = 0
  constructor (private readonly records: ReadonlyArray<readonly [string, string]>) {}
  next (): boolean {
    if (this.i >= this.records.length) return false
    const r = this.records[this.i++]
    this.key = r[0]
    this.value = r[1]
    return true
  }

  close (): void {}
}
