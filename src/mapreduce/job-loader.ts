import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Message, Plugin } from 'esbuild'
import { JobLoadError } from '../util/errors.js'
import { cachedBundle, sourceHash, storeBundle } from './bundle-cache.js'
import type { Job } from './job-api.js'

/** The package root, found from this file whether it runs from src/ (tests) or dist/src/ (the CLI). */
function packageRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'examples'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('mrp2p package root not found')
    dir = up
  }
  return dir
}

const ROOT = packageRoot()
export const BUILTIN_JOBS = ['wc', 'indexer', 'grep', 'sort', 'top'] as const

/** A job ready to run: its code travels between nodes as one ESM file named by its hash. */
export interface LoadedJob {
  name: string
  /** sha256 of `code`, hex. */
  hash: string
  /** The bundled module (ESM, inline source map). */
  code: string
  job: Job
}

function jobSourcePath (spec: string, cwd: string): string {
  if ((BUILTIN_JOBS as readonly string[]).includes(spec)) return join(ROOT, 'examples', `${spec}.ts`)
  const looksLikePath = spec.includes('/') || spec.includes('\\') || /\.(c|m)?(t|j)s$/.test(spec)
  if (!looksLikePath) {
    throw new JobLoadError(`unknown job '${spec}' (built-in jobs: ${BUILTIN_JOBS.join(', ')}; or give a path to a .ts/.js module)`)
  }
  return resolve(cwd, spec)
}

function describe (m: Message): string {
  const where = m.location === null ? '' : `${m.location.file}:${m.location.line}:${m.location.column + 1}: `
  return `${where}${m.text}`
}

/** Bundles a job module into one ESM file: TypeScript runs without a build step, and the file can be shipped to workers. */
export async function bundleJob (spec: string, cwd = process.cwd()): Promise<{ name: string, code: string, hash: string }> {
  const entry = jobSourcePath(spec, cwd)
  try {
    const st = await stat(entry)
    if (!st.isFile()) throw new JobLoadError(`job module ${spec} is not a file`)
  } catch (err) {
    if (err instanceof JobLoadError) throw err
    throw new JobLoadError(`job module ${spec} not found`)
  }
  const code = await cachedBundle(entry, BUILDER) ?? await buildBundle(spec, entry)
  const hash = createHash('sha256').update(code).digest('hex')
  return { name: jobName(spec), code, hash }
}

const ESBUILD_VERSION = (createRequire(import.meta.url)('esbuild/package.json') as { version: string }).version

/** What a cached bundle must have been built by: this esbuild, these options (bump the tag when they change). */
const BUILDER = `esbuild ${ESBUILD_VERSION} node20 esm inline-map alias:${join(ROOT, 'src', 'mapreduce', 'job-api.ts')} v1`

const LOADERS: Record<string, 'ts' | 'tsx' | 'js' | 'jsx' | 'json'> = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.tsx': 'tsx', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.jsx': 'jsx', '.json': 'json' }

/**
 * Reads every source for esbuild and hashes exactly what it read, for the bundle cache; a file of another kind is
 * left to esbuild and makes the bundle uncacheable.
 */
function hashingLoader (hashes: Record<string, string>, uncached: { any: boolean }): Plugin {
  return {
    name: 'mrp2p-hashing-loader',
    setup (b) {
      b.onLoad({ filter: /.*/, namespace: 'file' }, async (args) => {
        const loader = LOADERS[extname(args.path)]
        if (loader === undefined) { uncached.any = true; return undefined }
        const contents = await readFile(args.path)
        hashes[args.path] = sourceHash(contents)
        return { contents, loader, resolveDir: dirname(args.path) }
      })
    }
  }
}

async function buildBundle (spec: string, entry: string): Promise<string> {
  // Loaded only on a miss: a cached job starts without esbuild.
  const { build } = await import('esbuild')
  const hashes: Record<string, string> = {}
  const uncached = { any: false }
  let code: string
  try {
    const out = await build({
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      sourcemap: 'inline',
      // Absolute source paths, so the user's stack names their own file wherever the bundle is cached.
      absWorkingDir: '/',
      sourceRoot: '/',
      logLevel: 'silent',
      alias: { mrp2p: join(ROOT, 'src', 'mapreduce', 'job-api.ts') },
      plugins: [hashingLoader(hashes, uncached)]
    })
    code = out.outputFiles[0].text
  } catch (err) {
    const errors = (err as { errors?: Message[] }).errors
    const first = errors?.[0]
    throw new JobLoadError(`job module ${spec} does not build: ${first !== undefined ? describe(first) : String(err)}`)
  }
  if (!uncached.any) await storeBundle(entry, BUILDER, hashes, code)
  return code
}

function jobName (spec: string): string {
  const base = spec.split(/[\\/]/).pop() ?? spec
  return base.replace(/\.(c|m)?(t|j)s$/, '')
}

/** Imports bundled job code (cached on disk by hash) and checks that it is a job. */
export async function importJob (bundle: { name: string, code: string, hash: string }, cacheDir = join(tmpdir(), 'mrp2p-jobs')): Promise<LoadedJob> {
  await mkdir(cacheDir, { recursive: true })
  const file = join(cacheDir, `${bundle.hash}.mjs`)
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`
    await writeFile(tmp, bundle.code)
    await rename(tmp, file)
  }
  // Stacks of the user's code then point at their own .ts lines, not the bundle.
  process.setSourceMapsEnabled(true)
  let mod: Record<string, unknown>
  try {
    mod = await import(pathToFileURL(file).href) as Record<string, unknown>
  } catch (err) {
    throw new JobLoadError(`job module ${bundle.name} failed to load: ${err instanceof Error ? err.message : String(err)}`)
  }
  const candidate = (typeof mod.default === 'object' && mod.default !== null ? mod.default : mod) as Record<string, unknown>
  const separator = candidate.keyValueSeparator
  if (candidate.map === undefined && separator === undefined) throw new JobLoadError(`job module ${bundle.name} does not export a map function or a keyValueSeparator`)
  if (candidate.map !== undefined && separator !== undefined) throw new JobLoadError(`job module ${bundle.name} exports both map and keyValueSeparator: give one (a map reads a split's text, keyValueSeparator reads its lines as key-value records)`)
  if (candidate.map !== undefined && typeof candidate.map !== 'function') throw new JobLoadError(`job module ${bundle.name} exports map, but it is not a function`)
  if (separator !== undefined && (typeof separator !== 'string' || !/^[\x00-\x09\x0b-\x7f]$/.test(separator))) {
    throw new JobLoadError(`job module ${bundle.name}: keyValueSeparator must be one ASCII character other than a newline, got ${JSON.stringify(separator)}`)
  }
  for (const fn of ['reduce', 'combine', 'partition', 'sample'] as const) {
    if (candidate[fn] !== undefined && typeof candidate[fn] !== 'function') throw new JobLoadError(`job module ${bundle.name} exports ${fn}, but it is not a function`)
  }
  // Without a reduce every value is written as it is, and how many a combiner leaves depends on where spills fell.
  if (candidate.combine !== undefined && candidate.reduce === undefined) throw new JobLoadError(`job module ${bundle.name} exports combine but no reduce: a combiner's values need a reduce to fold them`)
  return { ...bundle, job: candidate as unknown as Job }
}

export async function loadJob (spec: string, opts: { cwd?: string, cacheDir?: string } = {}): Promise<LoadedJob> {
  return await importJob(await bundleJob(spec, opts.cwd), opts.cacheDir)
}
