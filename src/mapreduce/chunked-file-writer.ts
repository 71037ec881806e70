import { closeSync, openSync, writeSync } from 'node:fs'

const CHUNK = 1 << 20

/**
 * A new file written through one reusable buffer, flushed in 1 MiB blocks with
 * synchronous writes: what run files and part files both need.
 */
export class ChunkedFileWriter {
  buf = Buffer.allocUnsafe(CHUNK)
  /** Where the caller writes next in `buf`; the caller advances it. */
  pos = 0
  /** Bytes flushed to the file so far. */
  bytes = 0
  private readonly fd: number

  /** Creates `path`; refuses to overwrite an existing file. */
  constructor (path: string) {
    this.fd = openSync(path, 'wx')
  }

  /** Makes room for `need` more bytes at `pos` (flushing, or growing the buffer for one large record). */
  reserve (need: number): Buffer {
    if (this.pos + need > this.buf.length) {
      this.flush()
      if (need > this.buf.length) this.buf = Buffer.allocUnsafe(need)
    }
    return this.buf
  }

  private flush (): void {
    let off = 0
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off)
    this.bytes += this.pos
    this.pos = 0
  }

  /** Flushes and closes; returns the file's size. */
  close (): number {
    this.flush()
    closeSync(this.fd)
    return this.bytes
  }
}
