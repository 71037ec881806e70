import { closeSync, openSync, writeSync } from 'node:fs'

const CHUNK = 1 << 20

/** Output part file: `key value\n` lines, the format MIT 6.824's mrsequential writes. */
export class PartWriter {
  private buf = Buffer.allocUnsafe(CHUNK)
  private pos = 0
  bytes = 0
  lines = 0
  private constructor (private readonly fd: number) {}

  static create (path: string): PartWriter {
    return new PartWriter(openSync(path, 'wx'))
  }

  add (key: string, value: string): void {
    const need = Buffer.byteLength(key) + Buffer.byteLength(value) + 2
    if (this.pos + need > this.buf.length) {
      this.flush()
      if (need > this.buf.length) this.buf = Buffer.allocUnsafe(need)
    }
    let p = this.pos
    p += this.buf.write(key, p, 'utf8')
    this.buf[p++] = 0x20
    p += this.buf.write(value, p, 'utf8')
    this.buf[p++] = 0x0a
    this.pos = p
    this.lines++
  }

  private flush (): void {
    let off = 0
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off)
    this.bytes += this.pos
    this.pos = 0
  }

  close (): void {
    this.flush()
    closeSync(this.fd)
  }
}
