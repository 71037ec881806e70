import { ChunkedFileWriter } from './chunked-file-writer.js'

/** Output part file: `key value\n` lines, the format MIT 6.824's mrsequential writes. */
export class PartWriter {
  lines = 0
  private constructor (private readonly out: ChunkedFileWriter) {}

  static create (path: string): PartWriter {
    return new PartWriter(new ChunkedFileWriter(path))
  }

  /** Bytes written so far (all of them once closed). */
  get bytes (): number {
    return this.out.bytes
  }

  add (key: string, value: string): void {
    const buf = this.out.reserve(Buffer.byteLength(key) + Buffer.byteLength(value) + 2)
    let p = this.out.pos
    p += buf.write(key, p, 'utf8')
    buf[p++] = 0x20
    p += buf.write(value, p, 'utf8')
    buf[p++] = 0x0a
    this.out.pos = p
    this.lines++
  }

  close (): void {
    this.out.close()
  }
}
