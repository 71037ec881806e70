import { ChunkedFileWriter } from './chunked-file-writer.js'
import { copyBytes } from './copy-bytes.js'

/** Output part file: `key value\n` lines, the format MIT 6.824's mrsequential writes. */
export class PartWriter {
  lines = 0
  private constructor (private readonly out: ChunkedFileWriter, private readonly keys: boolean) {}

  /** `keys: false`: lines are the values alone (a job's `valuesOnly`). */
  static create (path: string, keys = true): PartWriter {
    return new PartWriter(new ChunkedFileWriter(path), keys)
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
   * what a job without a `reduce` writes for every record.
   */
  addRecord (buf: Buffer, keyStart: number, keyEnd: number, valueStart: number, valueEnd: number): void {
    const out = this.out.reserve((this.keys ? keyEnd - keyStart + 1 : 0) + valueEnd - valueStart + 1)
    let p = this.out.pos
    if (this.keys && valueStart === keyEnd + 1) {
      // The value's length took one byte, between key and value, where the line has its space: one copy, not two.
      p = copyBytes(buf, keyStart, valueEnd, out, p)
      out[p - (valueEnd - keyEnd)] = 0x20
    } else {
      if (this.keys) {
        p = copyBytes(buf, keyStart, keyEnd, out, p)
        out[p++] = 0x20
      }
      p = copyBytes(buf, valueStart, valueEnd, out, p)
    }
    out[p++] = 0x0a
    this.out.pos = p
    this.lines++
  }

  close (): void {
    this.out.close()
  }
}
