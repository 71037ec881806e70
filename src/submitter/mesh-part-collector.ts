import { partFileName } from '../mapreduce/output-dir.js'
import type { BlockRef, Manifest } from '../protocol/dataset-messages.js'

/**
 * Receives the parts of a job whose output is a dataset in the mesh (`--output mesh:NAME`): each reducer stored its
 * part as blocks and sends only their list. Exactly one commit per partition (the first) is kept; the manifest of
 * all of them is bound to NAME only once every part is in, so no half-written dataset is ever listed.
 */
export class MeshPartCollector {
  private readonly parts = new Map<number, { size: number, blocks: BlockRef[] }>()

  constructor (readonly name: string, readonly reduces: number, readonly layout: { replicas: number, blockSize: number }) {}

  get count (): number {
    return this.parts.size
  }

  get complete (): boolean {
    return this.parts.size === this.reduces
  }

  /** The partitions committed so far, in order. */
  list (): number[] {
    return [...this.parts.keys()].sort((a, b) => a - b)
  }

  offer (partition: number, part: { size: number, blocks: BlockRef[] }): boolean {
    if (this.parts.has(partition) || partition >= this.reduces) return false
    this.parts.set(partition, part)
    return true
  }

  /** The dataset the job wrote: `part-00000`… in order, as `--output DIR` names them. */
  manifest (): Manifest {
    const files = []
    for (let r = 0; r < this.reduces; r++) {
      const part = this.parts.get(r)
      if (part === undefined) throw new Error(`part ${r} was never committed`)
      files.push({ path: partFileName(r), size: part.size, blocks: part.blocks })
    }
    return { files, replicas: this.layout.replicas, blockSize: this.layout.blockSize }
  }
}
