import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Job code by hash: fetched once per node, checked against its hash, shared by all tasks of the job. */
export class CodeCache {
  private readonly dir: string
  private readonly inflight = new Map<string, Promise<string>>()

  constructor (dataDir: string) {
    this.dir = join(dataDir, 'code')
    mkdirSync(this.dir, { recursive: true })
  }

  async get (hash: string, fetch: () => Promise<Uint8Array>): Promise<string> {
    const file = join(this.dir, `${hash}.mjs`)
    if (existsSync(file)) return file
    let p = this.inflight.get(hash)
    if (p === undefined) {
      p = (async () => {
        const code = await fetch()
        const actual = createHash('sha256').update(code).digest('hex')
        if (actual !== hash) throw new Error(`job code does not match its hash (${actual.slice(0, 12)} ≠ ${hash.slice(0, 12)})`)
        const tmp = `${file}.${process.pid}.tmp`
        writeFileSync(tmp, code)
        renameSync(tmp, file)
        return file
      })().finally(() => { this.inflight.delete(hash) })
      this.inflight.set(hash, p)
    }
    return await p
  }
}
