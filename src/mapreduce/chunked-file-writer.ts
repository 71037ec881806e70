import { closeSync, openSync, writeSync } from 'node:fs'

export const CHUNK = 1 << 20

/**
 * A new file written through one reusable buffer, flushed in blocks (1 MiB by
 * default) with synchronous writes: how part files are written, and the base
 * of run files' compressed blocks (run-blocks.ts overrides `flush`).
 */
export class ChunkedFileWriter {
  buf: Buffer
  /** Where the caller writes next in `buf`; the caller advances it. */
  pos = 0
  /** Bytes flushed to the file so far. */
  bytes = 0
  protected readonly fd: number

  /** Creates `path`; refuses to overwrite an existing file. `buffer`: the one to write through (its length is the chunk). */
  constructor (path: string, chunk = CHUNK, buffer?: Buffer) {
    this.buf = buffer ?? Buffer.allocUnsafe(chunk)
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

  protected flush (): void {
    writeAll(this.fd, this.buf.subarray(0, this.pos))
    this.bytes += this.pos
    this.pos = 0
  }

  /** Flushes and closes; returns the file's size. */
  close (): number {
    try {
      this.flush()
    } finally {
      closeSync(this.fd)
    }
    return this.bytes
  }
}

export function writeAll (fd: number, data: Uint8Array): void {
  let off = 0
  while (off < data.length) off += writeSync(fd, data, off, data.length - off)
}
