import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/** `cat DIR/part-* | LC_ALL=C sort | grep .`: what the lab compares with its reference output. */
export function sortedOutput (dir: string): Buffer {
  const lines = readdirSync(dir).filter((f) => f.startsWith('part-')).sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => Buffer.from(l))
    .sort(Buffer.compare)
  return Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]))
}
