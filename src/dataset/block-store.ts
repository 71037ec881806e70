import { closeSync, fsync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Startable } from '@libp2p/interface'
import { writeAllSync } from '../protocol/bulk.js'
import type { Logger } from '../util/logger.js'
import { BlockHasher, blockDigest, CorruptBlockError } from './block-cid.js'

const fsyncAsync = promisify(fsync)

/** The store would pass its `--store-max` (or the disk would fill) with this block. */
export class StoreFullError extends Error {
  static readonly NAME = 'StoreFullError'
  override readonly name = StoreFullError.NAME
}

/** What a disk without `--store-max` keeps free for the rest of the node (intermediate files, logs). */
const DISK_MARGIN_BYTES = 256 * 2 ** 20

export interface BlockStoreInit {
  dir: string
  /** Bytes of blocks this node may hold (`join --store-max`); unset: what the disk has, less a margin. */
  maxBytes?: number
  log: Logger
}

/** A block being received: pieces are written and hashed as they come; `commit` makes it visible only if it is what its CID names. */
export interface BlockWrite {
  write: (pieces: Uint8Array[]) => void
  /** Checks the bytes against the CID and makes the block durable and held (the flush runs off the event loop). */
  commit: () => Promise<void>
  abort: () => void
}

/**
 * This node's blocks, one file each under `<data>/blocks/<last two characters of the CID>/<CID>`: a map task reads
 * its block in place, by path. A block enters only whole and verified (written under `tmp/`, hashed as it is
 * written, renamed into place), so a reader never meets a torn or unverified one; every read checks it again.
 *
 * blockstore-fs was the maintained alternative; it writes every put of one CID through the same temporary name
 * (steno's `.<name>.tmp`), so two holders repairing one block onto this node at once would interleave into one
 * file, and it could not hand a task thread a path (docs/datasets.md).
 */
export class BlockStore implements Startable {
  private readonly sizes = new Map<string, number>()
  private reserved = 0
  private readonly tmp: string

  constructor (private readonly init: BlockStoreInit) {
    this.tmp = join(init.dir, 'tmp')
  }

  start (): void {
    mkdirSync(this.init.dir, { recursive: true })
    // Blocks half-received when the node last stopped were never visible: drop them.
    rmSync(this.tmp, { recursive: true, force: true })
    mkdirSync(this.tmp, { recursive: true })
    for (const shard of readdirSync(this.init.dir)) {
      if (shard === 'tmp') continue
      for (const name of readdirSync(join(this.init.dir, shard))) {
        try {
          blockDigest(name)
          this.sizes.set(name, statSync(join(this.init.dir, shard, name)).size)
        } catch {
          this.init.log.warn({ file: join(shard, name) }, 'not a block: left alone')
        }
      }
    }
    this.init.log.info({ blocks: this.sizes.size, bytes: this.storedBytes() }, 'block store open')
  }

  stop (): void {}

  pathOf (cid: string): string {
    return join(this.init.dir, cid.slice(-2), cid)
  }

  has (cid: string): boolean {
    return this.sizes.has(cid)
  }

  /** When the block was written here, ms since the epoch (0 when not held or gone). */
  modifiedAt (cid: string): number {
    if (!this.sizes.has(cid)) return 0
    try {
      return statSync(this.pathOf(cid)).mtimeMs
    } catch {
      return 0
    }
  }

  /** The size of a held block (0 when not held). */
  sizeOf (cid: string): number {
    return this.sizes.get(cid) ?? 0
  }

  list (): string[] {
    return [...this.sizes.keys()]
  }

  storedBytes (): number {
    let n = 0
    for (const b of this.sizes.values()) n += b
    return n
  }

  /** Bytes a new block may still take. */
  free (): number {
    const max = this.init.maxBytes
    if (max !== undefined) return Math.max(0, max - this.storedBytes() - this.reserved)
    const fs = statfsSync(this.init.dir)
    return Math.max(0, fs.bavail * fs.bsize - DISK_MARGIN_BYTES - this.reserved)
  }

  /** Starts receiving block `cid` of `bytes` bytes; refused up front when there is no room for it. */
  begin (cid: string, bytes: number): BlockWrite {
    const hasher = new BlockHasher(cid)
    if (bytes > this.free()) throw new StoreFullError(`no room for block ${cid} (${bytes} bytes; ${this.free()} free)`)
    this.reserved += bytes
    const tmp = join(this.tmp, `${cid}.${process.pid}.${Math.random().toString(36).slice(2, 10)}`)
    const fd = openSync(tmp, 'w')
    let written = 0
    let open = true
    const finish = (): void => {
      if (!open) return
      open = false
      this.reserved -= bytes
      closeSync(fd)
    }
    return {
      write: (pieces) => {
        for (const p of pieces) {
          hasher.update(p)
          written += p.byteLength
        }
        if (written > bytes) throw new CorruptBlockError(`block ${cid} is longer than its announced ${bytes} bytes`)
        writeAllSync(fd, pieces)
      },
      commit: async () => {
        try {
          if (written !== bytes) throw new CorruptBlockError(`block ${cid}: ${written} of ${bytes} bytes received`)
          hasher.check()
          await fsyncAsync(fd)
          finish()
          const path = this.pathOf(cid)
          mkdirSync(join(this.init.dir, cid.slice(-2)), { recursive: true })
          renameSync(tmp, path)
          this.sizes.set(cid, bytes)
        } catch (err) {
          finish()
          rmSync(tmp, { force: true })
          throw err
        }
      },
      abort: () => {
        finish()
        rmSync(tmp, { force: true })
      }
    }
  }

  /**
   * Reads block `cid` through, checking it against its CID: its path when intact. A corrupt copy is dropped at
   * once (so it is neither served nor counted) and CorruptBlockError thrown; the repair loop restores the count.
   */
  async verified (cid: string): Promise<string> {
    const path = this.pathOf(cid)
    if (!this.sizes.has(cid)) throw new CorruptBlockError(`block ${cid} is not held here`)
    const hasher = new BlockHasher(cid)
    let file
    try {
      file = await open(path, 'r')
    } catch (err) {
      this.sizes.delete(cid)
      throw new CorruptBlockError(`block ${cid} is gone from this node's disk: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
    try {
      const buf = Buffer.allocUnsafe(4 * 2 ** 20)
      for (;;) {
        const { bytesRead } = await file.read(buf, 0, buf.length, null)
        if (bytesRead === 0) break
        hasher.update(buf.subarray(0, bytesRead))
      }
    } finally {
      await file.close()
    }
    try {
      hasher.check()
    } catch (err) {
      this.init.log.warn({ cid }, 'corrupt block dropped')
      this.remove(cid)
      throw err
    }
    return path
  }

  remove (cid: string): void {
    if (!this.sizes.delete(cid)) return
    rmSync(this.pathOf(cid), { force: true })
  }
}
