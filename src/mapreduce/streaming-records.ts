import { KWayMerge } from './merge.js'
import { RunReader } from './run-file.js'

/**
 * A streaming job's records between its commands and the engine. The engine keeps keys and values as strings; a
 * streaming job's are *byte strings*: each byte of the command's output is one character (latin1), so any bytes at
 * all (invalid UTF-8 included) go through the sort and the shuffle and come back out unchanged. Sorting byte
 * strings by code unit is byte order, the engine's key order; partitioning hashes the bytes themselves (below), so a
 * key goes to the same partition as the same key emitted by a module job.
 */

const NEWLINE = 0x0a
const TAB = 0x09

/**
 * Cuts a command's stdout into `key<TAB>value` records: at the first tab of each line (no tab: the whole line is
 * the key and the value is empty, as Hadoop Streaming does). A last line without its newline is still a record.
 */
export class RecordLineReader {
  private pending: Buffer[] = []
  /**
   * The next tab at or after the last line's start in `tabIn`: found once and reused by the lines before it, since
   * a search from each line's start would scan to the end of the chunk for every line that has none.
   */
  private tabIn: Buffer | undefined
  private tabAt = -1

  constructor (private readonly emit: (key: string, value: string) => void) {}

  push (chunk: Buffer): void {
    let start = 0
    let nl = chunk.indexOf(NEWLINE)
    if (nl !== -1 && this.pending.length > 0) {
      this.pending.push(chunk.subarray(0, nl))
      const line = Buffer.concat(this.pending)
      this.pending = []
      this.line(line, 0, line.length)
      start = nl + 1
      nl = chunk.indexOf(NEWLINE, start)
    }
    while (nl !== -1) {
      this.line(chunk, start, nl)
      start = nl + 1
      nl = chunk.indexOf(NEWLINE, start)
    }
    if (start < chunk.length) this.pending.push(chunk.subarray(start))
  }

  end (): void {
    if (this.pending.length === 0) return
    const line = Buffer.concat(this.pending)
    this.pending = []
    this.line(line, 0, line.length)
  }

  private line (buf: Buffer, start: number, end: number): void {
    if (buf !== this.tabIn || (this.tabAt !== -1 && this.tabAt < start)) {
      this.tabIn = buf
      this.tabAt = buf.indexOf(TAB, start)
    }
    const tab = this.tabAt
    if (tab === -1 || tab >= end) this.emit(buf.toString('latin1', start, end), '')
    else this.emit(buf.toString('latin1', start, tab), buf.toString('latin1', tab + 1, end))
  }
}

/** Batches `key<TAB>value\n` lines of byte strings into large writes for a command's stdin. */
export class RecordLineWriter {
  private buf: Buffer
  private pos = 0

  constructor (private readonly write: (chunk: Buffer) => Promise<boolean>, private readonly size = 256 * 1024) {
    this.buf = Buffer.allocUnsafe(size)
  }

  /** False once the command stopped reading. */
  async add (key: string, value: string): Promise<boolean> {
    const need = key.length + value.length + 2
    if (this.pos + need > this.buf.length) {
      if (!await this.flush()) return false
      if (need > this.buf.length) this.buf = Buffer.allocUnsafe(need)
    }
    let p = this.pos
    p += this.buf.write(key, p, 'latin1')
    this.buf[p++] = TAB
    p += this.buf.write(value, p, 'latin1')
    this.buf[p++] = NEWLINE
    this.pos = p
    return true
  }

  async flush (): Promise<boolean> {
    if (this.pos === 0) return true
    // A new buffer for the next lines: the pipe may still hold this one.
    const chunk = this.buf.subarray(0, this.pos)
    this.buf = Buffer.allocUnsafe(this.size)
    this.pos = 0
    return await this.write(chunk)
  }
}

/**
 * Writes sorted runs, merged in key order (a key's values in run order, then each run's own), as `key<TAB>value`
 * lines: the combiner's input (one map's partitions) and the reducer's (every map's partition). Returns the records
 * written; it stops early, without error, once the command stops reading.
 */
export async function writeMergedRuns (paths: readonly string[], write: (chunk: Buffer) => Promise<boolean>): Promise<number> {
  const readers: RunReader[] = []
  let records = 0
  try {
    for (const path of paths) readers.push(RunReader.open(path))
    const merge = new KWayMerge(readers)
    const out = new RecordLineWriter(write)
    while (merge.next()) {
      records++
      if (!await out.add(merge.key, merge.value)) return records
    }
    await out.flush()
    return records
  } finally {
    for (const r of readers) r.close()
  }
}

const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

/** The default partition (FNV-1a 32 of the key's bytes mod R, fnv1a.ts) of a byte-string key. */
export function bytePartition (key: string, reduces: number): number {
  let h = FNV_OFFSET
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), FNV_PRIME)
  return ((h >>> 0) & 0x7fffffff) % reduces
}
