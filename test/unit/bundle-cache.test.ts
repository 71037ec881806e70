import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cachedBundle } from '../../src/mapreduce/bundle-cache.js'
import { bundleJob } from '../../src/mapreduce/job-loader.js'

describe('bundle cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mrp2p-bundle-cache-'))
  const cache = join(dir, 'cache')
  const before = process.env.MRP2P_BUNDLE_CACHE
  beforeAll(() => { process.env.MRP2P_BUNDLE_CACHE = cache })
  afterAll(() => {
    if (before === undefined) delete process.env.MRP2P_BUNDLE_CACHE
    else process.env.MRP2P_BUNDLE_CACHE = before
    rmSync(dir, { recursive: true, force: true })
  })
  const job = join(dir, 'job.ts')
  const helper = join(dir, 'helper.ts')
  const write = (word: string, n: number): void => {
    writeFileSync(helper, `export const WORD: string = '${word}'\n`)
    writeFileSync(job, `import { defineJob } from 'mrp2p'\nimport { WORD } from './helper.js'\nexport default defineJob({ map (_d, _c, emit) { emit(WORD, '${n}') }, reduce (_k, v) { return String(v.length) } })\n`)
  }
  const builder = async (): Promise<string> => {
    const files = readdirSync(cache)
    expect(files).toHaveLength(1)
    return JSON.parse((await import('node:fs')).readFileSync(join(cache, files[0]), 'utf8')).builder as string
  }

  it('keeps a bundle with the hash of every source, and reuses it only while none changed', async () => {
    write('alpha', 1)
    const first = await bundleJob(job)
    expect(first.code).toContain('alpha')
    const by = await builder()
    // Unchanged: the cache answers with the very code, and a second bundle is the same.
    expect(await cachedBundle(job, by)).toBe(first.code)
    expect((await bundleJob(job)).hash).toBe(first.hash)
    // A changed import (not the entry) is a miss, and the rebuilt bundle has the new source.
    writeFileSync(helper, "export const WORD: string = 'beta'\n")
    expect(await cachedBundle(job, by)).toBeUndefined()
    const second = await bundleJob(job)
    expect(second.code).toContain('beta')
    expect(second.hash).not.toBe(first.hash)
    expect(await cachedBundle(job, by)).toBe(second.code)
    // Another builder's bundle, a missing source, a torn cache file: each a miss, never an error.
    expect(await cachedBundle(job, `${by} other`)).toBeUndefined()
    rmSync(helper)
    expect(await cachedBundle(job, by)).toBeUndefined()
    write('gamma', 3)
    await bundleJob(job)
    writeFileSync(join(cache, readdirSync(cache)[0]), '{"builder":')
    expect(await cachedBundle(job, by)).toBeUndefined()
    expect((await bundleJob(job)).code).toContain('gamma')
  })
})
