import { statfsSync } from 'node:fs'

/**
 * Free disk an attempt needs under the data dir beyond its input, when the node is not told otherwise
 * (`join --min-free-disk`, in MiB): the one definition of that default.
 */
export const DEFAULT_MIN_FREE_DISK_BYTES = 64 * 2 ** 20

/** The node lacks the disk an attempt needs. */
export class DiskFullError extends Error {
  static readonly NAME = 'DiskFullError'
  override readonly name = DiskFullError.NAME
}

function mib (bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1)
}

/**
 * Throws {@link DiskFullError} unless `dir`'s file system has `reserveBytes` free beyond `inputBytes`: an
 * attempt refused up front is a clear failure, where one that fills the disk leaves a half-written run.
 */
export function checkFreeDisk (dir: string, reserveBytes: number, inputBytes: number): void {
  const fs = statfsSync(dir)
  const free = fs.bavail * fs.bsize
  if (free < reserveBytes + inputBytes) {
    throw new DiskFullError(`not enough free disk on this node: ${mib(free)} MiB free under ${dir}, an attempt needs ${mib(reserveBytes + inputBytes)} MiB (its input plus a ${mib(reserveBytes)} MiB reserve)`)
  }
}
