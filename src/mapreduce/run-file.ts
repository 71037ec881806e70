import { closeSync, openSync, readSync } from 'node:fs'
import { ChunkedFileWriter } from './chunked-file-writer.js'

/**
 * Intermediate run files: records `varint keyLen, key, varint valueLen, value`
 * (UTF-8), sorted by key bytes. I/O is synchronous on purpose: tasks run off
 * the node's main thread, and a blocking 1 MiB write beats an await per record.
 */

const CHUNK = 1 << 20

export class CorruptRunError extends Error {
  static readonly NAME = 'CorruptRunError'
  override readonly name = CorruptRunError.NAME
}

function writeVarint (buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80
    n >>>= 7
  }
  buf[pos++] = n
  return pos
}

export interface RunStats { bytes: number, records: number }

export class RunWriter {
  private records = 0
  private constructor (private readonly out: ChunkedFileWriter) {}

  static create (path: string): RunWriter {
    return new RunWriter(new ChunkedFileWriter(path))
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

  close (): RunStats {
    return { bytes: this.out.close(), records: this.records }
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
  private buf: Buffer
  private start = 0
  private end = 0
  private fileOffset = 0
  private eof = false

  private constructor (private readonly fd: number, private readonly path: string, chunk: number) {
    this.buf = Buffer.allocUnsafe(chunk)
  }

  static open (path: string, chunk = CHUNK): RunReader {
    return new RunReader(openSync(path, 'r'), path, chunk)
  }

  /** Makes at least `n` unread bytes available; false when the file ends first. */
  private ensure (n: number): boolean {
    if (this.end - this.start >= n) return true
    if (this.eof) return false
    const rest = this.end - this.start
    if (n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2))
      this.buf.copy(bigger, 0, this.start, this.end)
      this.buf = bigger
    } else {
      this.buf.copy(this.buf, 0, this.start, this.end)
    }
    this.start = 0
    this.end = rest
    while (this.end < n && !this.eof) {
      const got = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, this.fileOffset)
      if (got === 0) this.eof = true
      this.fileOffset += got
      this.end += got
    }
    return this.end - this.start >= n
  }

  private varint (): number {
    let n = 0
    let shift = 0
    for (;;) {
      if (!this.ensure(1)) throw new CorruptRunError(`truncated run file ${this.path}`)
      const b = this.buf[this.start++]
      n += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return n
      shift += 7
      if (shift > 35) throw new CorruptRunError(`bad length in run file ${this.path}`)
    }
  }

  next (): boolean {
    if (!this.ensure(1)) return false
    const kl = this.varint()
    if (!this.ensure(kl)) throw new CorruptRunError(`truncated run file ${this.path}`)
    this.key = this.buf.toString('utf8', this.start, this.start + kl)
    this.start += kl
    const vl = this.varint()
    if (!this.ensure(vl)) throw new CorruptRunError(`truncated run file ${this.path}`)
    this.value = this.buf.toString('utf8', this.start, this.start + vl)
    this.start += vl
    return true
  }

  close (): void {
    closeSync(this.fd)
  }
}
