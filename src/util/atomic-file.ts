import { open, rename, rm } from 'node:fs/promises'
import type { AbortOptions } from '@libp2p/interface'

/**
 * Write a whole file or nothing: a reader (a script polling node.json, the
 * node itself after a crash) sees either the old content or the new, never a
 * torn one. fsync before rename so a power cut cannot leave an empty file
 * under the final name.
 */
export async function writeFileAtomic (path: string, data: string | Uint8Array, options: AbortOptions & { mode?: number } = {}): Promise<void> {
  options.signal?.throwIfAborted()
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`
  const handle = await open(tmp, 'w', options.mode ?? 0o644)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    options.signal?.throwIfAborted()
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
