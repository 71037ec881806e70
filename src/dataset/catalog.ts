import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { CatalogEntrySchema, type CatalogEntry, type CatalogVersion } from '../protocol/dataset-messages.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import type { Logger } from '../util/logger.js'
import { manifestCid } from './block-cid.js'

const CatalogFileSchema = z.object({ entries: z.array(CatalogEntrySchema) })

export function compareVersions (a: CatalogVersion, b: CatalogVersion): number {
  return a.epoch - b.epoch || a.seq - b.seq
}

/** An entry is whole when its manifest is the one its CID names (and a tombstone carries neither). */
export function entryIsWhole (e: CatalogEntry): boolean {
  if (e.manifest === undefined) return e.manifestCid === undefined
  return e.manifestCid === manifestCid(e.manifest)
}

/**
 * The name → manifest bindings, a copy on every node. Entries merge by version (last writer wins: the coordinator
 * of the highest epoch, then its latest binding), so copies that hear the same entries in any order agree.
 * Kept in `<data>/datasets.json`, written whole on each change.
 */
export class Catalog {
  private readonly entries = new Map<string, CatalogEntry>()
  private saving: Promise<void> = Promise.resolve()
  private readonly listeners: Array<(changed: CatalogEntry[], replaced: CatalogEntry[]) => void> = []

  constructor (private readonly file: string, private readonly log: Logger) {}

  load (): void {
    let text: string
    try {
      text = readFileSync(this.file, 'utf8')
    } catch {
      return
    }
    const parsed = CatalogFileSchema.safeParse((() => { try { return JSON.parse(text) as unknown } catch { return undefined } })())
    if (!parsed.success) {
      this.log.warn({ file: this.file }, 'catalog file unreadable: starting empty, members will send theirs')
      return
    }
    this.merge(parsed.data.entries, false)
  }

  get (name: string): CatalogEntry | undefined {
    return this.entries.get(name)
  }

  all (): CatalogEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  /** Bound names (not removed), by name. */
  live (): CatalogEntry[] {
    return this.all().filter((e) => e.manifest !== undefined)
  }

  /** The version a coordinator of `epoch` gives its next binding: past every version seen. */
  nextVersion (epoch: number): CatalogVersion {
    let seq = 0
    for (const e of this.entries.values()) if (e.version.epoch === epoch) seq = Math.max(seq, e.version.seq)
    return { epoch, seq: seq + 1 }
  }

  /** Told of each merge that changed something: the entries now held, and those they replaced. */
  onChange (listener: (changed: CatalogEntry[], replaced: CatalogEntry[]) => void): void {
    this.listeners.push(listener)
  }

  /** Keeps each entry newer than the one held (an entry whose manifest is not what its CID names is dropped); the entries that changed. */
  merge (incoming: readonly CatalogEntry[], save = true): CatalogEntry[] {
    const changed: CatalogEntry[] = []
    const replaced: CatalogEntry[] = []
    for (const e of incoming) {
      if (!entryIsWhole(e)) {
        this.log.warn({ name: e.name }, 'catalog entry whose manifest does not match its CID: dropped')
        continue
      }
      const held = this.entries.get(e.name)
      if (held !== undefined && compareVersions(held.version, e.version) >= 0) continue
      this.entries.set(e.name, e)
      changed.push(e)
      if (held !== undefined) replaced.push(held)
    }
    if (changed.length > 0) {
      if (save) this.save()
      for (const l of this.listeners) l(changed, replaced)
    }
    return changed
  }

  /** Resolves once every change so far is on disk. */
  async flushed (): Promise<void> {
    await this.saving
  }

  private save (): void {
    const text = JSON.stringify({ entries: this.all() })
    this.saving = this.saving.then(async () => { await writeFileAtomic(this.file, text) }).catch((err: unknown) => {
      this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'cannot save the catalog')
    })
  }
}
