import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Job code and a streaming job's files, by hash: fetched once per node, checked against the hash, shared by every task that needs them. */
export class CodeCache {
  private readonly dir: string
  private readonly inflight = new Map<string, Promise<string>>()

  constructor (dataDir: string) {
    this.dir = join(dataDir, 'code')
    mkdirSync(this.dir, { recursive: true })
  }

  /** `ext`: `.mjs` for a job module (imported by its name), none for a `--file`. */
  async get (hash: string, fetch: () => Promise<Uint8Array>, ext = '.mjs'): Promise<string> {
    const file = join(this.dir, `${hash}${ext}`)
    if (existsSync(file)) return file
    let p = this.inflight.get(file)
    if (p === undefined) {
      p = (async () => {
        const code = await fetch()
        const actual = createHash('sha256').update(code).digest('hex')
        if (actual !== hash) throw new Error(`${ext === '' ? 'job file' : 'job code'} does not match its hash (${actual.slice(0, 12)} ≠ ${hash.slice(0, 12)})`)
        const tmp = `${file}.${process.pid}.tmp`
        writeFileSync(tmp, code)
        renameSync(tmp, file)
        return file
      })().finally(() => { this.inflight.delete(file) })
      this.inflight.set(file, p)
    }
    return await p
  }
}
