import { roomAfter, type ArenaBuffer } from './block-arena.js'
import { RUN_BLOCK, type BlockWriterOptions } from './run-blocks.js'
import { RunWriter, type RunStats } from './run-file.js'

/**
 * Record slots and bytes a buffer starts with when not told its budget; both double as needed. Told the budget, it
 * starts at that (and a slot per 64 bytes of it): memory that is never written is never resident, and a buffer
 * grown by doubling left a map task's every smaller copy to the collector, long-lived enough to be tenured.
 */
const FIRST_RECORDS = 4096
const FIRST_BYTES = 256 * 1024
const BUDGET_BYTES_PER_SLOT = 64
/** …but not past this: a budget of gigabytes grows to its size as before. */
const MOST_FIRST_BYTES = 64 * 2 ** 20
/** Per record besides its bytes: four offsets, a partition and a key prefix (and two record numbers while sorting). */
const RECORD_OVERHEAD = 4 * 4 + 4 + 8 + 8
/** Bits of one counting pass of the sort: 4 passes over the prefix's 48 bits, 4096 counters each. */
const DIGIT_BITS = 12
const DIGIT_MASK = (1 << DIGIT_BITS) - 1
/** Counters of the widest digit: a partition and the prefix's top 12 bits fold into one while they fit (16 reduces). */
const FOLDED_DIGITS = 1 << 16
/** A string of at most this many UTF-16 units is at most 3 bytes a unit in UTF-8: its length fits a 1-byte varint. */
const ONE_BYTE_VARINT_UNITS = 42
/** …and one of at most this many, a 2-byte varint (16383 bytes). */
const TWO_BYTE_VARINT_UNITS = 5461

/**
 * Map output of a job with no combiner, held as the very bytes its runs will hold (Hadoop's map output buffer):
 * each emitted record is encoded once, as it comes, into one growing buffer, with its partition and the first six
 * bytes of its key as a number beside it. A spill sorts record numbers, by partition, then key prefix, then key
 * bytes, then emit order, and copies each record's bytes into its run.
 *
 * The buffer that groups values by key (map-output-buffer.ts) is what a combiner needs. Without one it only costs:
 * a Map entry, an array and two strings per record, each key sorted as a string and encoded once per spill and
 * once more per spill merge. On the 1 GiB sort of 100-byte records that was most of a map task's time, and a
 * 16 MiB budget held 60,000 records where this holds 120,000.
 */
export class MapOutputBytes {
  private data: Buffer
  private pos = 0
  /** Per record: start, key start, key end, end. */
  private offsets: Int32Array
  private partitions: Int32Array
  /**
   * Per record, the key's first six bytes, zero-padded, as two numbers of three bytes each (the first three, then the
   * next): keys in different order by these are in that order, and a key that is another's prefix ties with it.
   */
  private prefixes: Int32Array
  private count = 0

  /**
   * Set when the records are not copies but ranges of a buffer the caller holds (`source`, a split read by
   * key-value-lines.ts): each is then written into its run, with its lengths, only when the run is.
   */
  private readonly inPlace: boolean
  /** Where runs' blocks are filled when the records stay in place: in the source's buffer, past its end. */
  private readonly block: ArenaBuffer | undefined

  /**
   * `budgetBytes`: what the task spills past (map-task.ts), when it has one. `source`: the buffer that records
   * added with {@link addRange} lie in (such a buffer takes no {@link add}).
   */
  constructor (
    private readonly partitionOf: (key: string) => number,
    readonly runOptions: BlockWriterOptions = {},
    budgetBytes?: number,
    source?: Buffer
  ) {
    const first = budgetBytes === undefined ? FIRST_BYTES : Math.min(MOST_FIRST_BYTES, Math.max(FIRST_BYTES, budgetBytes))
    // Records kept in place take no bytes of the budget but their slots: a slot per 64 bytes of the source, up to
    // what the budget holds, so that a split's records fit the arrays made first (the sort's: 335,000 in 32 MiB).
    const records = source === undefined
      ? Math.max(FIRST_RECORDS, Math.ceil(first / BUDGET_BYTES_PER_SLOT))
      : Math.max(FIRST_RECORDS, Math.min(Math.ceil(source.length / BUDGET_BYTES_PER_SLOT), Math.ceil((budgetBytes ?? first) / RECORD_OVERHEAD) + 1))
    this.inPlace = source !== undefined
    this.data = source ?? Buffer.allocUnsafe(first)
    // A split read with room after it (splits.ts): its runs' blocks are filled there, records copied within one buffer.
    this.block = source === undefined ? undefined : roomAfter(source, RUN_BLOCK)
    this.offsets = new Int32Array(4 * records)
    this.partitions = new Int32Array(records)
    this.prefixes = new Int32Array(2 * records)
  }

  /** Bytes held, as the map task's memory budget counts them. */
  get bytes (): number {
    return this.pos + this.count * RECORD_OVERHEAD
  }

  get size (): number {
    return this.count
  }

  add (key: string, value: string): void {
    if (this.inPlace) throw new Error('a map output kept in place takes ranges of its source, not strings')
    const partition = this.partitionOf(key)
    if (this.count === this.partitions.length) this.growRecords()
    // The most either string can take, with its length varint: a UTF-16 unit is at most 3 UTF-8 bytes.
    const most = 3 * (key.length + value.length) + 10
    if (this.pos + most > this.data.length) this.growBytes(this.pos + most)
    const start = this.pos
    const keyStart = this.writeString(key, start)
    const keyEnd = this.pos
    this.writeString(value, keyEnd)
    const o = 4 * this.count
    this.offsets[o] = start
    this.offsets[o + 1] = keyStart
    this.offsets[o + 2] = keyEnd
    this.offsets[o + 3] = this.pos
    this.partitions[this.count] = partition
    this.prefixes[2 * this.count] = this.prefixAt(keyStart, keyEnd)
    this.prefixes[2 * this.count + 1] = this.prefixAt(keyStart + 3, keyEnd)
    this.count++
  }

  /**
   * A record that lies in the source buffer: its key is `[keyStart, keyEnd)` and its value `[valueStart, valueEnd)`,
   * in partition `partition`. Per record: four offsets (the value's start first, so that the key's stand where an
   * encoded record has them), its partition and its key's prefix.
   */
  addRange (keyStart: number, keyEnd: number, valueStart: number, valueEnd: number, partition: number): void {
    if (!this.inPlace) throw new Error('a map output of encoded records takes strings, not ranges')
    if (this.count === this.partitions.length) this.growRecords()
    const o = 4 * this.count
    this.offsets[o] = valueStart
    this.offsets[o + 1] = keyStart
    this.offsets[o + 2] = keyEnd
    this.offsets[o + 3] = valueEnd
    this.partitions[this.count] = partition
    this.prefixes[2 * this.count] = this.prefixAt(keyStart, keyEnd)
    this.prefixes[2 * this.count + 1] = this.prefixAt(keyStart + 3, keyEnd)
    this.count++
  }

  /**
   * `varint length, bytes` at `at`; returns where the bytes begin. The length is known only once the string is
   * written, so a short string is written past the varint's most likely size, and moved back if that was too much.
   */
  private writeString (s: string, at: number): number {
    const data = this.data
    if (s.length <= ONE_BYTE_VARINT_UNITS) {
      const n = data.write(s, at + 1, 'utf8')
      data[at] = n
      this.pos = at + 1 + n
      return at + 1
    }
    if (s.length <= TWO_BYTE_VARINT_UNITS) {
      const n = data.write(s, at + 2, 'utf8')
      if (n < 0x80) {
        data.copyWithin(at + 1, at + 2, at + 2 + n)
        data[at] = n
        this.pos = at + 1 + n
        return at + 1
      }
      data[at] = (n & 0x7f) | 0x80
      data[at + 1] = n >>> 7
      this.pos = at + 2 + n
      return at + 2
    }
    const n = Buffer.byteLength(s)
    let p = at
    for (let v = n; ; v >>>= 7) {
      if (v < 0x80) {
        data[p++] = v
        break
      }
      data[p++] = (v & 0x7f) | 0x80
    }
    this.pos = p + data.write(s, p, n, 'utf8')
    return p
  }

  /** Three bytes from `start` as one number, zero past `end`. */
  private prefixAt (start: number, end: number): number {
    const data = this.data
    return ((start < end ? data[start] : 0) << 16) | ((start + 1 < end ? data[start + 1] : 0) << 8) | (start + 2 < end ? data[start + 2] : 0)
  }

  private growRecords (): void {
    const n = 2 * this.partitions.length
    const offsets = new Int32Array(4 * n)
    offsets.set(this.offsets)
    this.offsets = offsets
    const partitions = new Int32Array(n)
    partitions.set(this.partitions)
    this.partitions = partitions
    const prefixes = new Int32Array(2 * n)
    prefixes.set(this.prefixes)
    this.prefixes = prefixes
  }

  private growBytes (least: number): void {
    const data = Buffer.allocUnsafe(Math.max(least, 2 * this.data.length))
    this.data.copy(data, 0, 0, this.pos)
    this.data = data
  }

  /** Writes one sorted run per partition to `paths` (created, must not exist) and empties the buffer. */
  writeRuns (paths: readonly string[], options: BlockWriterOptions = this.runOptions): RunStats[] {
    const { data, offsets, partitions, prefixes } = this
    const order = this.prefixOrder(paths.length)
    const stats: RunStats[] = []
    let at = 0
    const sourceAt = this.block === undefined ? -1 : this.data.byteOffset
    for (let p = 0; p < paths.length; p++) {
      const writer = RunWriter.create(paths[p], { ...options, block: this.block })
      while (at < order.length && partitions[order[at]] === p) {
        // Records whose six-byte prefixes tie are put in key order among themselves.
        let end = at + 1
        const head = prefixes[2 * order[at]]
        const tail = prefixes[2 * order[at] + 1]
        while (end < order.length && partitions[order[end]] === p && prefixes[2 * order[end]] === head && prefixes[2 * order[end] + 1] === tail) end++
        if (end - at > 1) this.sortTies(order.subarray(at, end))
        if (this.inPlace) {
          for (; at < end; at++) {
            const o = 4 * order[at]
            writer.addKeyValue(data, offsets[o + 1], offsets[o + 2], offsets[o], offsets[o + 3], sourceAt)
          }
        } else {
          for (; at < end; at++) writer.addRecord(data, offsets[4 * order[at]], offsets[4 * order[at] + 3])
        }
      }
      stats.push(writer.close())
    }
    this.pos = 0
    this.count = 0
    return stats
  }

  /**
   * Record numbers by partition, then key prefix, then emit order: stable counting passes, least significant
   * digit first (the prefix's 12-bit digits, then the partition, which shares the top digit's pass when few). A
   * pass where every record has the same digit (the high bits of ASCII, say) is skipped. A comparison sort of the
   * same records took four times as long.
   */
  private prefixOrder (partitions: number): Uint32Array {
    const n = this.count
    const { prefixes } = this
    let order = new Uint32Array(n)
    for (let i = 0; i < n; i++) order[i] = i
    let spare = new Uint32Array(n)
    const digits = new Int32Array(n)
    // With few partitions the last prefix digit and the partition make one digit: a pass fewer over every record.
    const fold = partitions << DIGIT_BITS <= FOLDED_DIGITS
    const counts = new Int32Array(Math.max(fold ? partitions << DIGIT_BITS : 1 << DIGIT_BITS, partitions) + 1)
    for (let pass = 0; pass < (fold ? 4 : 5); pass++) {
      if (pass === 4) digits.set(this.partitions.subarray(0, n))
      else if (pass === 3 && fold) {
        const parts = this.partitions
        for (let i = 0; i < n; i++) digits[i] = (parts[i] << DIGIT_BITS) | ((prefixes[2 * i] >>> DIGIT_BITS) & DIGIT_MASK)
      } else {
        const half = pass < 2 ? 1 : 0
        const shift = pass % 2 === 0 ? 0 : DIGIT_BITS
        for (let i = 0; i < n; i++) digits[i] = (prefixes[2 * i + half] >>> shift) & DIGIT_MASK
      }
      if (countingPass(order, spare, digits, counts)) {
        const t = order
        order = spare
        spare = t
      }
    }
    return order
  }

  /** Records with one prefix, in emit order, put in key-byte order; equal keys stay in emit order. */
  private sortTies (records: Uint32Array): void {
    const { data, offsets } = this
    const start = offsets[4 * records[0] + 1]
    const end = offsets[4 * records[0] + 2]
    let same = true
    for (let k = 1; k < records.length && same; k++) same = data.compare(data, start, end, offsets[4 * records[k] + 1], offsets[4 * records[k] + 2]) === 0
    if (same) return
    records.sort((a, b) => data.compare(data, offsets[4 * b + 1], offsets[4 * b + 2], offsets[4 * a + 1], offsets[4 * a + 2]) || a - b)
  }
}

/**
 * One stable pass: `order` by `digits[record]` into `into`. False, and nothing moved, when every record has the
 * same digit.
 */
function countingPass (order: Uint32Array, into: Uint32Array, digits: Int32Array, counts: Int32Array): boolean {
  const n = order.length
  if (n === 0) return false
  counts.fill(0)
  for (let i = 0; i < n; i++) counts[digits[i] + 1]++
  if (counts[digits[0] + 1] === n) return false
  for (let d = 1; d < counts.length; d++) counts[d] += counts[d - 1]
  for (let k = 0; k < n; k++) {
    const i = order[k]
    into[counts[digits[i]]++] = i
  }
  return true
}
