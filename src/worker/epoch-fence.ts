import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The highest coordinator epoch this worker has obeyed, kept on disk so that a
 * restart does not let a deposed coordinator's orders back in.
 */
export class EpochFence {
  private highest = 0
  private readonly file: string
  refusals = 0

  constructor (dataDir: string) {
    this.file = join(dataDir, 'worker-epoch.json')
    try {
      const v = (JSON.parse(readFileSync(this.file, 'utf8')) as { highest?: unknown }).highest
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) this.highest = v
    } catch {
      // first start, or an unreadable file: start from 0 (the election's own persisted epoch still fences claims)
    }
  }

  get value (): number {
    return this.highest
  }

  /** True when an order of `epoch` comes from a deposed coordinator; counted as a refusal. */
  isStale (epoch: number): boolean {
    if (epoch >= this.highest) return false
    this.refusals++
    return true
  }

  /** Raises the fence to `epoch` (a newer coordinator is known); never lowers it. */
  raise (epoch: number): void {
    if (epoch <= this.highest) return
    this.highest = epoch
    const tmp = `${this.file}.tmp`
    writeFileSync(tmp, JSON.stringify({ highest: epoch }))
    renameSync(tmp, this.file)
  }
}
