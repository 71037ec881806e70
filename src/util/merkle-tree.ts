import { createHash } from 'node:crypto'

/**
 * A binary Merkle tree over byte leaves (sha-256; leaves and inner nodes hashed under different prefixes, so that
 * no inner node can pass for a leaf). An odd node at the end of a level moves up unpaired. One signature over the
 * root vouches for every leaf: a holder of one leaf proves it with about log2(n) sibling hashes, without the rest.
 */
export class MerkleTree {
  /** levels[0] are the leaf hashes, the last level is [root]. */
  private readonly levels: Buffer[][]

  constructor (leaves: readonly Uint8Array[]) {
    if (leaves.length === 0) throw new RangeError('MerkleTree: at least one leaf')
    let level = leaves.map(leafHash)
    this.levels = [level]
    while (level.length > 1) {
      const next: Buffer[] = []
      for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? innerHash(level[i], level[i + 1]) : level[i])
      this.levels.push(next)
      level = next
    }
  }

  get root (): string {
    return this.levels[this.levels.length - 1][0].toString('hex')
  }

  get size (): number {
    return this.levels[0].length
  }

  /** The sibling hashes (hex) from leaf `index` up to the root, skipping levels where it has none. */
  proof (index: number): string[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`MerkleTree: no leaf ${index} of ${this.size}`)
    const out: string[] = []
    for (let l = 0, i = index; l < this.levels.length - 1; l++, i = Math.floor(i / 2)) {
      const sibling = i % 2 === 0 ? i + 1 : i - 1
      if (sibling < this.levels[l].length) out.push(this.levels[l][sibling].toString('hex'))
    }
    return out
  }
}

/** Whether `leaf` is leaf `index` of the `size`-leaf tree whose root is `root`, by `proof`. */
export function verifyMerkleProof (leaf: Uint8Array, index: number, size: number, proof: readonly string[], root: string): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false
  let hash = leafHash(leaf)
  let used = 0
  for (let i = index, width = size; width > 1; i = Math.floor(i / 2), width = Math.ceil(width / 2)) {
    const sibling = i % 2 === 0 ? i + 1 : i - 1
    if (sibling >= width) continue
    const h = proof[used++]
    if (h === undefined || !/^[0-9a-f]{64}$/.test(h)) return false
    const other = Buffer.from(h, 'hex')
    hash = i % 2 === 0 ? innerHash(hash, other) : innerHash(other, hash)
  }
  return used === proof.length && hash.toString('hex') === root
}

function leafHash (leaf: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF).update(leaf).digest()
}

function innerHash (left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(INNER).update(left).update(right).digest()
}

const LEAF = Buffer.from([0])
const INNER = Buffer.from([1])
