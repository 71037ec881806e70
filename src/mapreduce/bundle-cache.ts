import { createHash } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { writeFileAtomic } from '../util/atomic-file.js'

/**
 * Bundles of job modules kept across commands (docs/jobs.md, "Bundle cache"), so that a `submit` or `run` of an
 * unchanged job neither loads esbuild nor builds: one file per entry module, holding the bundle and the sha256 of
 * every source file that went into it. A bundle is reused only while each of those files still has its hash; any
 * other case (no entry, a changed or missing source, an unreadable or foreign file) is a miss, and the caller
 * builds as before. Where: $XDG_CACHE_HOME/mrp2p/bundles, else ~/.cache/mrp2p/bundles, or MRP2P_BUNDLE_CACHE.
 */

const CacheEntrySchema = z.object({
  /** What built it: a bundle from another esbuild or other build options is a miss. */
  builder: z.string(),
  /** Every source file of the bundle (absolute path) and its sha256, hex. */
  inputs: z.record(z.string(), z.string()),
  code: z.string()
})

export function bundleCacheDir (env: NodeJS.ProcessEnv = process.env): string {
  if (env.MRP2P_BUNDLE_CACHE !== undefined && env.MRP2P_BUNDLE_CACHE !== '') return env.MRP2P_BUNDLE_CACHE
  const base = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'mrp2p', 'bundles')
}

function entryFile (dir: string, entry: string): string {
  return join(dir, `${createHash('sha256').update(entry).digest('hex').slice(0, 32)}.json`)
}

async function fileHash (path: string): Promise<string | undefined> {
  try {
    return sourceHash(await readFile(path))
  } catch {
    return undefined
  }
}

/** The cached bundle of `entry` built by `builder`, if every source of it is unchanged. */
export async function cachedBundle (entry: string, builder: string, dir = bundleCacheDir()): Promise<string | undefined> {
  let parsed: z.infer<typeof CacheEntrySchema>
  try {
    parsed = CacheEntrySchema.parse(JSON.parse(await readFile(entryFile(dir, entry), 'utf8')))
  } catch {
    return undefined
  }
  if (parsed.builder !== builder || parsed.inputs[entry] === undefined) return undefined
  for (const [path, hash] of Object.entries(parsed.inputs)) {
    if (await fileHash(path) !== hash) return undefined
  }
  return parsed.code
}

/**
 * Keeps `code` for the next command, with the hash of each source as the build read it (the build's loader hashes
 * what it hands esbuild, so a file saved during the build cannot pair new hashes with old code).
 */
export async function storeBundle (entry: string, builder: string, inputs: Record<string, string>, code: string, dir = bundleCacheDir()): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(entryFile(dir, entry), JSON.stringify({ builder, inputs, code }), { mode: 0o600 })
  } catch {
    // A cache that cannot be written (read-only home, full disk) costs the next command a build, nothing more.
  }
}

/** sha256 of bytes, hex: what the cache records of each source. */
export function sourceHash (data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex')
}
