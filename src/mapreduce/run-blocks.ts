import { closeSync, openSync, readSync } from 'node:fs'
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib'
import type { ArenaBuffer, BlockArena } from './block-arena.js'
import { ChunkedFileWriter, writeAll } from './chunked-file-writer.js'

/**
 * The block layer under run files. A run is a sequence of blocks, each holding
 * whole records, compressed when that pays:
 *
 *   [codec u8] [stored length u32 LE] [raw length u32 LE] [stored bytes]
 *     codec 0: stored as is        codec 1: brotli, quality 0
 *
 * Map output is written once, read once or twice (spill merge, reduce) and
 * crosses the network in between; Spark compresses it by default and Hadoop
 * users turn it on for big shuffles. Brotli at quality 0 is the fastest codec
 * Node ships on every version we run on (measured on 100-byte sort records:
 * 1.4 GB/s in, 1.2 GB/s out, 6.6× smaller; deflate level 1: 0.68 and 0.75 GB/s).
 * A block is kept compressed only if that saves an eighth of it, and after
 * four blocks in a row that did not, the rest of the run is stored as is:
 * incompressible data costs four tries per run, not one per block.
 */

export const BLOCK_HEADER = 9
/**
 * Raw bytes per block: a reduce holds one block per input run, so this bounds its read memory. 128 KiB rather than
 * 256: a reduce then reads twice as many runs in the same memory (merge-passes.ts), and the 4 GiB sort needs no
 * extra merge pass. Smaller blocks cost more: brotli's one-shot calls take about 35 µs each besides the bytes
 * (on the sort's records, 64 KiB blocks compressed at 330–620 MB/s, 128 KiB at 620–630, 256 KiB at 900).
 */
export const RUN_BLOCK = 128 * 1024
/** The largest block, so the largest record: a header claiming more is corrupt, not a reason to allocate. */
const MAX_BLOCK = 1 << 30
const CODEC_STORED = 0
const CODEC_BROTLI = 1
const GIVE_UP_AFTER = 4
/**
 * A window no larger than a block: brotli's default (4 MiB) costs memory per call and finds nothing more. Output
 * in one piece the size of a block: in 16 KiB pieces (the default), two threads compressing 256 MiB each raised
 * the process's RSS by 76 MiB, in one piece by 26.
 */
const BROTLI_FAST = { chunkSize: RUN_BLOCK, params: { [constants.BROTLI_PARAM_QUALITY]: 0, [constants.BROTLI_PARAM_LGWIN]: 17 } }

export class CorruptRunError extends Error {
  static readonly NAME = 'CorruptRunError'
  override readonly name = CorruptRunError.NAME
}

export interface BlockWriterOptions {
  /** Try compressing blocks (default true). */
  compress?: boolean
  /** Raw bytes per block (default RUN_BLOCK); small values are for tests. */
  blockBytes?: number
  /** The buffer blocks are filled in, taken from an arena (block-arena.ts); its length is then the block's size. */
  block?: ArenaBuffer
}

/** Writes blocks through one reusable buffer; the caller fills `buf` from `pos` and never splits a record. */
export class BlockWriter extends ChunkedFileWriter {
  /** The records' bytes before compression, so far. */
  rawBytes = 0
  /** Blocks we tried to compress. */
  tries = 0
  private readonly header = Buffer.alloc(BLOCK_HEADER)
  private tryCompress: boolean
  private misses = 0

  /** Creates `path`; refuses to overwrite an existing file. */
  constructor (path: string, options: BlockWriterOptions = {}) {
    super(path, options.blockBytes ?? RUN_BLOCK, options.block !== undefined && options.block.at >= 0 ? options.block.buffer : undefined)
    this.tryCompress = options.compress ?? true
  }

  protected override flush (): void {
    if (this.pos === 0) return
    if (this.pos > MAX_BLOCK) throw new RangeError(`a record of ${this.pos} bytes is larger than a run holds (${MAX_BLOCK} bytes)`)
    const raw = this.buf.subarray(0, this.pos)
    let stored: Uint8Array = raw
    let codec = CODEC_STORED
    if (this.tryCompress) {
      this.tries++
      const packed = brotliCompressSync(raw, BROTLI_FAST)
      if (packed.length <= raw.length - (raw.length >>> 3)) {
        stored = packed
        codec = CODEC_BROTLI
        this.misses = 0
      } else if (++this.misses >= GIVE_UP_AFTER) {
        this.tryCompress = false
      }
    }
    this.header[0] = codec
    this.header.writeUInt32LE(stored.length, 1)
    this.header.writeUInt32LE(raw.length, 5)
    writeAll(this.fd, this.header)
    writeAll(this.fd, stored)
    this.bytes += BLOCK_HEADER + stored.length
    this.rawBytes += raw.length
    this.pos = 0
  }
}

/** Reads a run's blocks in order, each as its raw bytes. */
export class BlockReader {
  private readonly header = Buffer.alloc(BLOCK_HEADER)
  // Grown to the largest stored block read: a compressed block is a fraction of RUN_BLOCK, and a reduce holds one reader per map.
  private stored: Buffer = Buffer.alloc(0)
  /** A compressed block's records, reused from block to block. */
  private raw: Buffer = Buffer.alloc(0)
  private offset = 0

  /** Where `stored` and `raw` start in the arena they were taken from; −1 when they are not in one. */
  private storedAt = -1
  private rawAt = -1
  /** Where the block {@link next} returned starts in the arena; −1 when it is not in one. */
  blockAt = -1

  /** `arena`: where its block buffers are taken from (block-arena.ts); a larger block than they hold gets its own. */
  constructor (private readonly fd: number, private readonly path: string, arena?: BlockArena) {
    if (arena !== undefined) {
      const stored = arena.take(RUN_BLOCK)
      const raw = arena.take(RUN_BLOCK)
      this.stored = stored.buffer
      this.storedAt = stored.at
      this.raw = raw.buffer
      this.rawAt = raw.at
    }
  }

  static open (path: string, arena?: BlockArena): BlockReader {
    return new BlockReader(openSync(path, 'r'), path, arena)
  }

  private readExactly (buf: Buffer, n: number): number {
    let got = 0
    while (got < n) {
      const r = readSync(this.fd, buf, got, n - got, this.offset + got)
      if (r === 0) break
      got += r
    }
    this.offset += got
    return got
  }

  /** The next block's records, or undefined at the end of the run. The buffer is valid until the next call. */
  next (): Buffer | undefined {
    const h = this.readExactly(this.header, BLOCK_HEADER)
    if (h === 0) return undefined
    if (h < BLOCK_HEADER) throw new CorruptRunError(`truncated run file ${this.path}`)
    const codec = this.header[0]
    const storedLength = this.header.readUInt32LE(1)
    const rawLength = this.header.readUInt32LE(5)
    if (codec > CODEC_BROTLI || rawLength > MAX_BLOCK || storedLength > rawLength || (codec === CODEC_STORED && storedLength !== rawLength)) {
      throw new CorruptRunError(`bad block header in run file ${this.path}`)
    }
    if (this.stored.length < storedLength) {
      this.stored = Buffer.allocUnsafe(storedLength)
      this.storedAt = -1
    }
    if (this.readExactly(this.stored, storedLength) < storedLength) throw new CorruptRunError(`truncated run file ${this.path}`)
    const stored = this.stored.subarray(0, storedLength)
    if (codec === CODEC_STORED) {
      this.blockAt = this.storedAt
      return stored
    }
    let raw: Buffer
    try {
      raw = brotliDecompressSync(stored, { maxOutputLength: rawLength, chunkSize: Math.max(64, rawLength) })
    } catch (err) {
      throw new CorruptRunError(`bad compressed block in run file ${this.path}: ${err instanceof Error ? err.message : String(err)}`)
    }
    if (raw.length !== rawLength) throw new CorruptRunError(`bad compressed block in run file ${this.path}`)
    // Copied into the reader's own buffer, so that brotli's dies young. Kept, it lived as long as a merge took to
    // read its records, long enough to be moved to the old generation, where only a full collection frees it: a
    // reduce over 32 runs of the sort raised its process's RSS by 84 MiB, and by 28 with the copy.
    if (this.raw.length < rawLength) {
      this.raw = Buffer.allocUnsafeSlow(rawLength)
      this.rawAt = -1
    }
    raw.copy(this.raw, 0, 0, rawLength)
    this.blockAt = this.rawAt
    return this.raw.subarray(0, rawLength)
  }

  close (): void {
    closeSync(this.fd)
  }
}
