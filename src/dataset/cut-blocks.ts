import { createHash, type Hash } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'
import type { BlockRef } from '../protocol/dataset-messages.js'
import { blockCidOfDigest } from './block-cid.js'

/** A file changed while it was being cut. */
export class FileChangedError extends Error {
  static readonly NAME = 'FileChangedError'
  override readonly name = FileChangedError.NAME
}

/**
 * Cuts a file into blocks in one read: a block ends just after the first newline at or past `blockSize` bytes
 * (so no line is cut in two, as splits are), and each is hashed as it is read.
 */
export function cutBlocks (path: string, size: number, blockSize: number, readBytes = 4 * 2 ** 20): BlockRef[] {
  return [...blockCuts(path, size, blockSize, readBytes)].flat()
}

/**
 * {@link cutBlocks} a read at a time: each step reads up to `readBytes` and yields the blocks it finished (often
 * none), so that a caller can let other work run between steps and act on a block as soon as it is cut.
 */
export function * blockCuts (path: string, size: number, blockSize: number, readBytes = 4 * 2 ** 20): Generator<BlockRef[], void, undefined> {
  if (size === 0) return
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(readBytes)
    let start = 0
    let startLine = 1
    let line = 1
    let hash: Hash = createHash('sha256')
    let base = 0
    const take = (from: number, to: number): void => {
      hash.update(buf.subarray(from, to))
      for (let i = buf.indexOf(0x0a, from); i !== -1 && i < to; i = buf.indexOf(0x0a, i + 1)) line++
    }
    while (base < size) {
      const done: BlockRef[] = []
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - base), base)
      if (n === 0) throw new FileChangedError(`${path} shrank while it was being cut into blocks`)
      let i = 0
      while (i < n) {
        const earliest = start + blockSize - 1 - base
        const nl = earliest >= n ? -1 : buf.indexOf(0x0a, Math.max(i, earliest))
        if (nl === -1 || nl >= n) {
          take(i, n)
          break
        }
        take(i, nl + 1)
        const end = base + nl + 1
        if (end < size) {
          done.push({ cid: blockCidOfDigest(hash.digest()), bytes: end - start, offset: start, firstLine: startLine })
          hash = createHash('sha256')
          start = end
          startLine = line
        }
        i = nl + 1
      }
      base += n
      if (base === size) done.push({ cid: blockCidOfDigest(hash.digest()), bytes: size - start, offset: start, firstLine: startLine })
      yield done
    }
  } finally {
    closeSync(fd)
  }
}
