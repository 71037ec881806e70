import { closeSync, openSync, readSync } from 'node:fs'
import { access, constants, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { InputError } from '../util/errors.js'
import type { FileIdentity } from '../util/file-identity.js'
import { identityOf } from '../util/same-file.js'
import type { SplitInfo } from './job-api.js'
import { withRoom } from './block-arena.js'
import { RUN_BLOCK } from './run-blocks.js'

/** Hadoop's default block is 128 MiB; a Node map task holds its split as a string, so ours is smaller. */
export const DEFAULT_SPLIT_SIZE = 16 * 1024 * 1024
/**
 * On the mesh every task also pays an order, a report and one more run file for each reducer to merge: wc on
 * 271 MB through 2 nodes took 1.62 s with 32 MiB splits against 1.9–2.1 s with 16 MiB (docs/performance.md).
 * Twice the split is twice the string a task holds, which `run` (one process, any input) keeps smaller.
 */
export const DEFAULT_SUBMIT_SPLIT_SIZE = 32 * 1024 * 1024

export interface InputSplit extends SplitInfo {
  /** Absolute path to read. `document` stays as the user wrote it. */
  readonly path: string
  readonly length: number
  /** The file as it was when the job was planned: a worker on this host reads it in place only while it still is. */
  readonly identity?: FileIdentity
  /** A block of a dataset in the mesh (`mesh:NAME`): `path` is then empty, and workers read the block from the mesh. */
  readonly block?: { readonly cid: string, readonly hosts: readonly string[] }
}

/** Checks every input before anything runs: a job that would fail on its last file should fail now. */
export async function checkInputs (inputs: readonly string[], cwd: string): Promise<Array<{ document: string, path: string, size: number, identity: FileIdentity }>> {
  if (inputs.length === 0) throw new InputError('no input given (use --input <paths...>)')
  const out = []
  for (const document of inputs) {
    const path = resolve(cwd, document)
    let identity: FileIdentity
    try {
      const st = await stat(path, { bigint: true })
      if (st.isDirectory()) throw new InputError(`input ${document} is a directory (give the files in it, e.g. ${document}/*)`)
      if (!st.isFile()) throw new InputError(`input ${document} is not a regular file`)
      await access(path, constants.R_OK)
      identity = identityOf(st)
    } catch (err) {
      if (err instanceof InputError) throw err
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw new InputError(`input ${document} does not exist`)
      if (code === 'EACCES' || code === 'EPERM') throw new InputError(`input ${document} is not readable (permission denied)`)
      throw new InputError(`input ${document} cannot be read: ${code ?? String(err)}`)
    }
    out.push({ document, path, size: identity.size, identity })
  }
  return out
}

/**
 * One split per file; a file larger than `splitSize` is cut just after the
 * first newline at or past each `splitSize` boundary, so no line (and so no
 * word) is cut in two. Cutting counts newlines to give each split its first
 * line number (for jobs such as grep).
 */
export async function planSplits (inputs: readonly string[], opts: { cwd: string, splitSize?: number }): Promise<InputSplit[]> {
  const splitSize = opts.splitSize ?? DEFAULT_SPLIT_SIZE
  const files = await checkInputs(inputs, opts.cwd)
  const splits: InputSplit[] = []
  for (const f of files) {
    const pieces = f.size > splitSize ? cutAtLines(f.path, f.size, splitSize) : [{ offset: 0, length: f.size, firstLine: 1 }]
    for (const p of pieces) splits.push({ document: f.document, path: f.path, index: splits.length, identity: f.identity, ...p })
  }
  return splits
}

function cutAtLines (path: string, size: number, splitSize: number): Array<{ offset: number, length: number, firstLine: number }> {
  const pieces = []
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(1 << 20)
    let start = 0
    let startLine = 1
    let line = 1
    let base = 0
    while (base < size) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - base), base)
      if (n === 0) break
      let i = 0
      while (i < n) {
        const nl = buf.indexOf(0x0a, i)
        if (nl === -1 || nl >= n) break
        line++
        const next = base + nl + 1
        if (next - start >= splitSize && next < size) {
          pieces.push({ offset: start, length: next - start, firstLine: startLine })
          start = next
          startLine = line
        }
        i = nl + 1
      }
      base += n
    }
    pieces.push({ offset: start, length: size - start, firstLine: startLine })
  } finally {
    closeSync(fd)
  }
  return pieces
}

/**
 * A split's text: UTF-8 (bytes that are not UTF-8 become U+FFFD, as Go's range over a string yields RuneError), or
 * `latin1` (a byte string, streaming-records.ts) for a streaming job.
 */
export function readSplit (split: Pick<InputSplit, 'path' | 'offset' | 'length'>, encoding: 'utf8' | 'latin1' = 'utf8'): string {
  return readSplitBytes(split).toString(encoding)
}

/**
 * Bytes read with a block's room after them, in the same ArrayBuffer: a map that keeps its records in its split
 * copies each into its runs' block within one buffer (block-arena.ts `roomAfter`).
 */
export const SPLIT_ROOM = RUN_BLOCK

/**
 * A split's bytes: what a module job's map task is given (map-task.ts decodes them for a map function). Read into
 * `into` when it holds them and their room, a buffer the caller no longer uses (task-runtime.ts), else a new one.
 */
export function readSplitBytes (split: Pick<InputSplit, 'path' | 'offset' | 'length'>, into?: Buffer): Buffer {
  const fd = openSync(split.path, 'r')
  try {
    const buf = into !== undefined && into.length >= split.length + SPLIT_ROOM ? into.subarray(0, split.length) : withRoom(split.length, SPLIT_ROOM)
    let off = 0
    while (off < split.length) {
      const n = readSync(fd, buf, off, split.length - off, split.offset + off)
      if (n === 0) throw new InputError(`input ${split.path} shrank while the job was reading it`)
      off += n
    }
    return buf
  } finally {
    closeSync(fd)
  }
}
