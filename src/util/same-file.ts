import { statSync, type BigIntStats } from 'node:fs'
// Types only: a task process (sandboxed, reading only what it needs) loads this file through splits.ts, not zod.
import type { FileIdentity } from './file-identity.js'

/** BigInt stats: an inode or device number past 2^53 is kept exact. */
export function identityOf (st: BigIntStats): FileIdentity {
  return { dev: st.dev.toString(), ino: st.ino.toString(), size: Number(st.size), mtimeNs: st.mtimeNs.toString() }
}

/** The identity of the file at `path` now; undefined when it cannot be stat'ed or is no regular file. */
export function fileIdentity (path: string): FileIdentity | undefined {
  try {
    const st = statSync(path, { bigint: true })
    return st.isFile() ? identityOf(st) : undefined
  } catch {
    return undefined
  }
}

export function sameIdentity (a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs
}
