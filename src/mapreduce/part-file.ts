import type { ArenaBuffer, BlockArena } from './block-arena.js'
import { CHUNK, ChunkedFileWriter } from './chunked-file-writer.js'
import { copyWithinArena } from './copy-bytes.js'

/** Output part file: `key value\n` lines, the format MIT 6.824's mrsequential writes. */
export class PartWriter {
  lines = 0
  private constructor (
    private readonly out: ChunkedFileWriter,
    private readonly keys: boolean,
    /** The chunk, taken from an arena (block-arena.ts). */
    private readonly chunk: ArenaBuffer | undefined
  ) {}

  /** `keys: false`: lines are the values alone (a job's `valuesOnly`). `arena`: where its chunk is taken from. */
  static create (path: string, keys = true, arena?: BlockArena): PartWriter {
    const chunk = arena?.take(CHUNK)
    return new PartWriter(new ChunkedFileWriter(path, CHUNK, chunk?.buffer), keys, chunk === undefined || chunk.at < 0 ? undefined : chunk)
  }

  /** Bytes written so far (all of them once closed). */
  get bytes (): number {
    return this.out.bytes
  }

  add (key: string, value: string): void {
    // A UTF-16 unit is at most 3 bytes of UTF-8: a line that surely fits one chunk is written without measuring
    // it first (two fewer passes over every string, a tenth of a sort's reduce). A longer one is measured.
    const most = 3 * ((this.keys ? key.length + 1 : 0) + value.length) + 1
    const buf = this.out.reserve(most <= this.out.buf.length ? most : (this.keys ? Buffer.byteLength(key) + 1 : 0) + Buffer.byteLength(value) + 1)
    let p = this.out.pos
    if (this.keys) {
      p += buf.write(key, p, 'utf8')
      buf[p++] = 0x20
    }
    p += buf.write(value, p, 'utf8')
    buf[p++] = 0x0a
    this.out.pos = p
    this.lines++
  }

  /**
   * The line of a record read as bytes (a run's `key` and `value` ranges of `buf`), written without decoding it:
   * what a job without a `reduce` writes for every record. `bufAt`: where `buf` starts in the writer's arena, or
   * −1 when it is not in it.
   */
  addRecord (buf: Buffer, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number, bufAt = -1): void {
    const out = this.out.reserve((this.keys ? keyEnd - keyStart + 1 : 0) + valueEnd - valueStart + 1)
    let p = this.out.pos
    if (this.keys && valueStart === keyEnd + 1) {
      // The value's length took one byte, between key and value, where the line has its space: one copy, not two.
      p = copyWithinArena(buf, keyStart, valueEnd, bufAt, out, p, this.chunk)
      out[p - (valueEnd - keyEnd)] = 0x20
    } else {
      if (this.keys) {
        p = copyWithinArena(buf, keyStart, keyEnd, bufAt, out, p, this.chunk)
        out[p++] = 0x20
      }
      p = copyWithinArena(buf, valueStart, valueEnd, bufAt, out, p, this.chunk)
    }
    out[p++] = 0x0a
    this.out.pos = p
    this.lines++
  }

  close (): void {
    this.out.close()
  }
}
