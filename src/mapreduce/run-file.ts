import type { ArenaBuffer, BlockArena } from './block-arena.js'
import { copyWithinArena } from './copy-bytes.js'
import { BlockReader, BlockWriter, CorruptRunError, type BlockWriterOptions } from './run-blocks.js'

export { CorruptRunError }

/**
 * Intermediate run files: records `varint keyLen, key, varint valueLen, value`
 * (UTF-8), sorted by key bytes, in blocks that are compressed when that pays
 * (run-blocks.ts). I/O is synchronous on purpose: tasks run off the node's
 * main thread, and a blocking block write beats an await per record.
 */

function writeVarint (buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80
    n >>>= 7
  }
  buf[pos++] = n
  return pos
}

/** `bytes`: the file's size; `rawBytes`: the records' before compression. */
export interface RunStats { bytes: number, rawBytes: number, records: number }

export class RunWriter {
  private records = 0
  private constructor (private readonly out: BlockWriter, private readonly block: ArenaBuffer | undefined) {}

  static create (path: string, options?: BlockWriterOptions): RunWriter {
    const block = options?.block
    return new RunWriter(new BlockWriter(path, options), block !== undefined && block.at >= 0 ? block : undefined)
  }

  add (key: string, value: string): void {
    const kl = Buffer.byteLength(key)
    const vl = Buffer.byteLength(value)
    const buf = this.out.reserve(kl + vl + 10)
    let p = writeVarint(buf, this.out.pos, kl)
    p += buf.write(key, p, kl, 'utf8')
    p = writeVarint(buf, p, vl)
    p += buf.write(value, p, vl, 'utf8')
    this.out.pos = p
    this.records++
  }

  /** A record as a reader found it (`RunReader.nextRecord`): its bytes, copied as they are. */
  addRecord (buf: Buffer, start: number, end: number): void {
    const into = this.out.reserve(end - start)
    this.out.pos += buf.copy(into, this.out.pos, start, end)
    this.records++
  }

  /**
   * A record whose key is `buf[keyStart, keyEnd)` and value `buf[valueStart, valueEnd)`, as bytes: a line of a
   * split read in place. Where one byte parts the key from the value and the value's length takes one byte (a
   * `key value` line of up to 127 bytes of value), the line is copied once and that byte becomes the length.
   */
  addKeyValue (buf: Buffer, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number, bufAt = -1): void {
    const kl = keyEnd - keyStart
    const vl = valueEnd - valueStart
    const into = this.out.reserve(kl + vl + 10)
    let p = writeVarint(into, this.out.pos, kl)
    if (valueStart === keyEnd + 1 && vl < 0x80) {
      p = copyWithinArena(buf, keyStart, valueEnd, bufAt, into, p, this.block)
      into[p - vl - 1] = vl
    } else {
      p = copyWithinArena(buf, keyStart, keyEnd, bufAt, into, p, this.block)
      p = writeVarint(into, p, vl)
      p = copyWithinArena(buf, valueStart, valueEnd, bufAt, into, p, this.block)
    }
    this.out.pos = p
    this.records++
  }

  close (): RunStats {
    const bytes = this.out.close()
    return { bytes, rawBytes: this.out.rawBytes, records: this.records }
  }
}

/** A source of records in key order: what the merge reads. */
export interface RecordSource {
  /** Advances to the next record; false at the end. */
  next: () => boolean
  key: string
  value: string
  close: () => void
}

export class RunReader implements RecordSource {
  key = ''
  value = ''
  /** After {@link nextRecord}: the record is `buf[recordStart, recordEnd)`, its key `buf[keyStart, keyEnd)`; valid until the next call. */
  buf: Buffer = Buffer.alloc(0)
  /** Where `buf` starts in the reader's arena (block-arena.ts); −1 when it is not in one. */
  bufAt = -1
  recordStart = 0
  keyStart = 0
  keyEnd = 0
  valueStart = 0
  recordEnd = 0

  private constructor (private readonly blocks: BlockReader, private readonly path: string) {}

  /** `arena`: where its block buffers are taken from (block-arena.ts). */
  static open (path: string, arena?: BlockArena): RunReader {
    return new RunReader(BlockReader.open(path, arena), path)
  }

  private varint (): number {
    let n = 0
    let shift = 0
    for (;;) {
      if (this.recordEnd >= this.buf.length) throw new CorruptRunError(`record cut at a block end in run file ${this.path}`)
      const b = this.buf[this.recordEnd++]
      n += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return n
      shift += 7
      if (shift > 35) throw new CorruptRunError(`bad length in run file ${this.path}`)
    }
  }

  private skip (n: number): number {
    if (this.recordEnd + n > this.buf.length) throw new CorruptRunError(`record cut at a block end in run file ${this.path}`)
    this.recordEnd += n
    return this.recordEnd
  }

  /** The next record's place in `buf`, without decoding it (a merge that copies records); false at the end. */
  nextRecord (): boolean {
    while (this.recordEnd >= this.buf.length) {
      const block = this.blocks.next()
      if (block === undefined) return false
      this.buf = block
      this.bufAt = this.blocks.blockAt
      this.recordEnd = 0
    }
    this.recordStart = this.recordEnd
    const keyLength = this.varint()
    this.keyStart = this.recordEnd
    this.keyEnd = this.skip(keyLength)
    const valueLength = this.varint()
    this.valueStart = this.recordEnd
    this.skip(valueLength)
    return true
  }

  next (): boolean {
    if (!this.nextRecord()) return false
    this.key = this.buf.toString('utf8', this.keyStart, this.keyEnd)
    this.value = this.buf.toString('utf8', this.valueStart, this.recordEnd)
    return true
  }

  close (): void {
    this.blocks.close()
  }
}
