import { renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
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

  /** Renames every part into place and writes _SUCCESS. */
  publish (): void {
    this.output.commit(this.reduces)
  }
}
