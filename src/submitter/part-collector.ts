import { constants, linkSync, lstatSync, renameSync, rmSync, statSync } from 'node:fs'
import { copyFile } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import type { OutputDir } from '../mapreduce/output-dir.js'

/**
 * Receives reduce output at the submitter: exactly one commit per partition
 * (the first complete one), written under the output's _temporary folder and
 * published only when every part is there.
 */
export class PartCollector {
  private readonly committed = new Set<number>()
  private incoming = 0

  constructor (readonly output: OutputDir, readonly reduces: number) {}

  get count (): number {
    return this.committed.size
  }

  get complete (): boolean {
    return this.committed.size === this.reduces
  }

  /** The partitions committed so far, in order. */
  list (): number[] {
    return [...this.committed].sort((a, b) => a - b)
  }

  has (partition: number): boolean {
    return this.committed.has(partition)
  }

  /** A scratch path for one incoming transfer. */
  incomingPath (partition: number): string {
    return join(this.output.temporary, `incoming-${partition}-${this.incoming++}`)
  }

  /** Keeps a fully received part unless another commit of it won first. */
  offer (partition: number, receivedPath: string): boolean {
    if (this.committed.has(partition) || partition >= this.reduces) {
      rmSync(receivedPath, { force: true })
      return false
    }
    renameSync(receivedPath, this.output.tempPart(partition))
    this.committed.add(partition)
    return true
  }

  /**
   * Keeps a part that a reducer on this host wrote at `path`, taken from where it lies: linked when the two folders
   * share a file system, else copied by the kernel. No byte crosses a stream, is encrypted, or passes through this
   * process. Throws, taking nothing, when `path` is not a regular file of `bytes` bytes (the reducer then streams it).
   */
  async takeInPlace (partition: number, path: string, bytes: number): Promise<boolean> {
    if (this.committed.has(partition) || partition >= this.reduces) return false
    if (!isAbsolute(path)) throw new Error(`${path} is not an absolute path`)
    const st = lstatSync(path, { throwIfNoEntry: false })
    if (st === undefined || !st.isFile()) throw new Error(`${path} is not a regular file here`)
    if (st.size !== bytes) throw new Error(`${path} holds ${st.size} bytes, not ${bytes}`)
    const incoming = this.incomingPath(partition)
    try {
      try {
        linkSync(path, incoming)
      } catch {
        await copyFile(path, incoming, constants.COPYFILE_EXCL)
      }
      const size = statSync(incoming).size
      if (size !== bytes) throw new Error(`${path} changed while it was taken: ${size} bytes, not ${bytes}`)
    } catch (err) {
      rmSync(incoming, { force: true })
      throw err
    }
    return this.offer(partition, incoming)
  }

  /** Renames every part into place and writes _SUCCESS. */
  publish (): void {
    this.output.commit(this.reduces)
  }
}
