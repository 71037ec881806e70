import { ChunkedFileWriter } from './chunked-file-writer.js'

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

  close (): void {
    this.out.close()
  }
}
