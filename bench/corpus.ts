import { createWriteStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const SHARED_DATA = join(REPO_ROOT, '..', 'shared', 'data')
export const BENCH_DIR = join(REPO_ROOT, '.bench')

/** A corpus of at least `bytes`: the lab's eight books (or the bundled one) repeated, made once and reused. */
export async function corpus (bytes: number): Promise<string> {
  const path = join(BENCH_DIR, `corpus-${Math.round(bytes / 2 ** 20)}MiB.txt`)
  if (existsSync(path) && statSync(path).size >= bytes) return path
  await mkdir(dirname(path), { recursive: true })
  const books = existsSync(SHARED_DATA)
    ? readdirSync(SHARED_DATA).filter((f) => /^pg-.*\.txt$/.test(f)).sort().map((f) => readFileSync(join(SHARED_DATA, f)))
    : [readFileSync(join(REPO_ROOT, 'examples', 'data', 'metamorphosis.txt'))]
  const out = createWriteStream(path)
  let written = 0
  while (written < bytes) {
    for (const b of books) {
      if (!out.write(b)) await new Promise<void>((resolve) => out.once('drain', () => { resolve() }))
      written += b.length
    }
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => { if (err != null) reject(err); else resolve() }))
  return path
}
