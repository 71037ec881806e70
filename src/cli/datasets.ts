import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import type { Command } from 'commander'
import cliProgress from 'cli-progress'
import { DEFAULT_SUBMIT_SPLIT_SIZE } from '../mapreduce/splits.js'
import {
  datasetEntry, datasetHealth, DatasetError, listDatasets, meshViewOf, parseDatasetRef, putDataset, readFiles, removeDataset, selectFiles,
  type DatasetHealth, type MeshView, type PutFile
} from '../dataset/dataset-client.js'
import { byteSize, parseIntArg } from './arg-parsers.js'
import { resolveIdentity } from './identity-options.js'
import { addMeshClientOptions, withMeshClient, type MeshClient, type MeshClientFlags } from './mesh-client.js'

/** What a client needs of the mesh for datasets, from the asked node's view of its members. */
async function meshView (client: MeshClient): Promise<MeshView> {
  return await meshViewOf(client.opener, [client.target])
}

/**
 * The files `put` stores and the paths it records: a file as its name, a folder's files (recursively, in name
 * order) by their path under it. Every one must be a readable regular file, and no two may record the same path.
 */
export function filesToPut (paths: readonly string[], cwd = process.cwd()): PutFile[] {
  const out: PutFile[] = []
  const walk = (abs: string, recorded: string, given: string): void => {
    let st
    try {
      st = statSync(abs)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new DatasetError(code === 'ENOENT' ? `${given} does not exist` : `${given} cannot be read: ${code ?? String(err)}`)
    }
    if (st.isDirectory()) {
      for (const child of readdirSync(abs).sort()) walk(join(abs, child), recorded === '' ? child : `${recorded}/${child}`, join(given, child))
      return
    }
    if (!st.isFile()) throw new DatasetError(`${given} is not a regular file`)
    try {
      accessSync(abs, constants.R_OK)
    } catch {
      throw new DatasetError(`${given} is not readable (permission denied)`)
    }
    out.push({ path: abs, recorded: recorded === '' ? basename(abs) : recorded, size: st.size })
  }
  for (const p of paths) walk(resolve(cwd, p), '', p)
  if (out.length === 0) throw new DatasetError('nothing to put: the folders given hold no files')
  const seen = new Map<string, string>()
  for (const f of out) {
    const other = seen.get(f.recorded)
    if (other !== undefined) throw new DatasetError(`${other} and ${f.path} would both be stored as ${f.recorded}: put them as two datasets, or put their folder`)
    seen.set(f.recorded, f.path)
  }
  return out
}

function mib (bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`
}

function healthText (h: DatasetHealth): string {
  if (h.missing > 0) return `MISSING ${h.missing} block${h.missing === 1 ? '' : 's'}`
  if (h.underReplicated > 0) return `under-replicated ${h.underReplicated}`
  return 'healthy'
}

interface PutFlags extends MeshClientFlags { name: string, replicas?: string, blockSize?: number, replace?: boolean, identity?: string }

const IDENTITY_HELP = 'the identity to ask as (mrp2p keygen --identity; env MRP2P_IDENTITY): a mesh with --submitters changes datasets only for those it lists'

/** `mrp2p put`, `ls`, `cat`, `get`, `rm`, `fsck`: datasets in the mesh (docs/datasets.md). */
export function registerDatasetCommands (program: Command): void {
  addMeshClientOptions(program
    .command('put')
    .description('store files (folders recursively) in the mesh as a dataset: cut at line ends into blocks, each named by its content and kept on several nodes')
    .argument('<paths...>', 'files or folders to store')
    .requiredOption('--name <name>', 'the dataset\'s name (jobs read it as --input mesh:NAME)')
    .option('--replicas <n>', 'copies of each block, on distinct nodes (default: 2, or 1 in a 1-node mesh)')
    .option('--block-size <bytes>', `block size, e.g. 32MiB; blocks end at a line end at or past it (default ${DEFAULT_SUBMIT_SPLIT_SIZE / 2 ** 20} MiB)`, byteSize('--block-size'))
    .option('--replace', 'replace a dataset of that name (default: refuse)')
    .option('--identity <file>', IDENTITY_HELP))
    .action(async (paths: string[], flags: PutFlags) => {
      const { name } = parseDatasetRef(flags.name)
      if (flags.name.includes('/')) throw new DatasetError(`--name takes a dataset name, without /: got ${flags.name}`)
      const files = filesToPut(paths)
      const replicasAsked = flags.replicas === undefined ? undefined : parseIntArg(flags.replicas, '--replicas', 1, 16)
      const identity = resolveIdentity(flags.identity)
      const started = performance.now()
      const result = await withMeshClient('put', flags, async (client) => {
        const mesh = await meshView(client)
        const replicas = replicasAsked ?? Math.max(1, Math.min(2, mesh.storing.length))
        const bar = process.stderr.isTTY === true && flags.json !== true ? new cliProgress.SingleBar({ format: `put ${name} [{bar}] {value}/{total} MiB | {duration}s`, hideCursor: true }, cliProgress.Presets.shades_classic) : undefined
        try {
          return await putDataset(mesh, {
            name,
            files,
            replicas,
            blockSize: flags.blockSize ?? DEFAULT_SUBMIT_SPLIT_SIZE,
            replace: flags.replace === true,
            identity,
            onProgress: (p) => {
              if (bar === undefined) return
              if (p.doneBytes === 0) bar.start(Math.ceil(p.totalBytes / 2 ** 20), 0)
              else bar.update(Math.floor(p.doneBytes / 2 ** 20))
            }
          })
        } finally {
          bar?.stop()
        }
      })
      const m = result.entry.manifest
      const size = m?.files.reduce((n, f) => n + f.size, 0) ?? 0
      const blocks = m?.files.reduce((n, f) => n + f.blocks.length, 0) ?? 0
      const secs = (performance.now() - started) / 1000
      if (flags.json === true) process.stdout.write(`${JSON.stringify({ name, manifestCid: result.entry.manifestCid, files: m?.files.length, bytes: size, blocks, replicas: m?.replicas, sentBytes: result.sentBytes, skippedBytes: result.skippedBytes, seconds: secs })}\n`)
      else process.stdout.write(`put ${name}: ${m?.files.length ?? 0} file${m?.files.length === 1 ? '' : 's'}, ${mib(size)} in ${blocks} block${blocks === 1 ? '' : 's'}, ${m?.replicas ?? 0} replica${m?.replicas === 1 ? '' : 's'} each; sent ${mib(result.sentBytes)} in ${secs.toFixed(1)} s${result.skippedBytes > 0 ? ` (${mib(result.skippedBytes)} already held)` : ''}\n`)
    })

  addMeshClientOptions(program
    .command('ls')
    .description('list the datasets in the mesh (size, files, blocks, replicas, health), or the files of one')
    .argument('[name]', 'a dataset: list its files'))
    .action(async (raw: string | undefined, flags: MeshClientFlags) => {
      await withMeshClient('ls', flags, async (client) => {
        const mesh = await meshView(client)
        if (raw !== undefined) {
          const { name, file } = parseDatasetRef(raw)
          const entry = await datasetEntry(mesh, name)
          const files = selectFiles(entry.manifest, name, file)
          if (flags.json === true) process.stdout.write(`${JSON.stringify({ name, manifestCid: entry.manifestCid, replicas: entry.manifest.replicas, files: files.map((f) => ({ path: f.path, size: f.size, blocks: f.blocks.length })) })}\n`)
          else for (const f of files) process.stdout.write(`${String(f.size).padStart(12)}  ${String(f.blocks.length).padStart(5)} blocks  ${f.path}\n`)
          return
        }
        const entries = await listDatasets(mesh)
        const rows = await Promise.all(entries.map(async (e) => ({ e, h: await datasetHealth(mesh, e, false) })))
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify(rows.map(({ e, h }) => ({ name: e.name, manifestCid: e.manifestCid, bytes: e.manifest.files.reduce((n, f) => n + f.size, 0), files: e.manifest.files.length, blocks: h.blocks.length, replicas: e.manifest.replicas, underReplicated: h.underReplicated, missing: h.missing, at: new Date(e.at).toISOString() })))}\n`)
          return
        }
        if (rows.length === 0) {
          process.stdout.write('no datasets in this mesh (mrp2p put stores one)\n')
          return
        }
        process.stdout.write(`${'NAME'.padEnd(24)} ${'SIZE'.padStart(11)} ${'FILES'.padStart(6)} ${'BLOCKS'.padStart(7)} ${'REPLICAS'.padStart(8)}  HEALTH\n`)
        for (const { e, h } of rows) {
          process.stdout.write(`${e.name.padEnd(24)} ${mib(e.manifest.files.reduce((n, f) => n + f.size, 0)).padStart(11)} ${String(e.manifest.files.length).padStart(6)} ${String(h.blocks.length).padStart(7)} ${String(e.manifest.replicas).padStart(8)}  ${healthText(h)}\n`)
        }
      })
    })

  addMeshClientOptions(program
    .command('cat')
    .description('write a dataset\'s bytes (or one file\'s) to stdout, each block checked against its CID')
    .argument('<name>', 'NAME or NAME/FILE'))
    .action(async (raw: string, flags: MeshClientFlags) => {
      const { name, file } = parseDatasetRef(raw)
      // A reader that has had enough (`| head`) closes the pipe: that ends `cat` quietly, as it ends cat(1).
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EPIPE') process.exit(0)
        throw err
      })
      await withMeshClient('cat', flags, async (client) => {
        const mesh = await meshView(client)
        const entry = await datasetEntry(mesh, name)
        await readFiles(mesh, selectFiles(entry.manifest, name, file), async (_f, bytes) => { await writeOut(bytes) })
      })
    })

  addMeshClientOptions(program
    .command('get')
    .description('copy a dataset (or one file of it) into a folder, each block checked against its CID')
    .argument('<name>', 'NAME or NAME/FILE')
    .argument('<dir>', 'a folder that does not exist yet, or is empty'))
    .action(async (raw: string, dir: string, flags: MeshClientFlags) => {
      const { name, file } = parseDatasetRef(raw)
      const out = resolve(dir)
      if (existsSync(out) && (!statSync(out).isDirectory() || readdirSync(out).length > 0)) throw new DatasetError(`${dir} exists and is not an empty folder: give a new one`)
      await withMeshClient('get', flags, async (client) => {
        const mesh = await meshView(client)
        const entry = await datasetEntry(mesh, name)
        const files = selectFiles(entry.manifest, name, file)
        for (const f of files) {
          if (f.path.split('/').some((s) => s === '..' || s === '') || f.path.startsWith('/')) throw new DatasetError(`dataset ${name} records a file as ${f.path}: not a path under a folder`)
        }
        mkdirSync(out, { recursive: true })
        let fd: number | undefined
        let current: string | undefined
        const finish = (): void => {
          if (fd === undefined || current === undefined) return
          closeSync(fd)
          renameSync(`${current}.partial`, current)
          fd = undefined
        }
        try {
          await readFiles(mesh, files, async (f, bytes) => {
            const target = join(out, f.path)
            if (target !== current) {
              finish()
              current = target
              mkdirSync(dirname(target), { recursive: true })
              fd = openSync(`${target}.partial`, 'w')
            }
            let off = 0
            while (off < bytes.byteLength) off += writeSync(fd as number, bytes, off)
          })
          finish()
        } catch (err) {
          if (fd !== undefined) closeSync(fd)
          if (current !== undefined) rmSync(`${current}.partial`, { force: true })
          throw err
        }
        if (flags.json !== true) process.stderr.write(`got ${name}${file === undefined ? '' : `/${file}`}: ${files.length} file${files.length === 1 ? '' : 's'} into ${dir}\n`)
      })
    })

  addMeshClientOptions(program
    .command('rm')
    .description('remove a dataset: its name goes at once, and every node deletes the blocks no other dataset uses')
    .argument('<name>', 'the dataset')
    .option('--identity <file>', IDENTITY_HELP))
    .action(async (raw: string, flags: MeshClientFlags & { identity?: string }) => {
      const { name, file } = parseDatasetRef(raw)
      if (file !== undefined) throw new DatasetError(`rm removes whole datasets: give ${name}, not ${raw}`)
      const identity = resolveIdentity(flags.identity)
      await withMeshClient('rm', flags, async (client) => {
        await removeDataset(await meshView(client), name, undefined, identity)
      })
      process.stdout.write(flags.json === true ? `${JSON.stringify({ removed: name })}\n` : `removed ${name}\n`)
    })

  addMeshClientOptions(program
    .command('fsck')
    .description('check every block of the datasets (or of one): copies found, each read through and checked against its CID; under-replicated, missing and corrupt blocks')
    .argument('[name]', 'one dataset'))
    .action(async (raw: string | undefined, flags: MeshClientFlags) => {
      const healths = await withMeshClient('fsck', flags, async (client) => {
        const mesh = await meshView(client)
        const entries = raw === undefined ? await listDatasets(mesh) : [await datasetEntry(mesh, parseDatasetRef(raw).name)]
        return await Promise.all(entries.map(async (e) => await datasetHealth(mesh, e, true)))
      })
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify(healths.map((h) => ({ name: h.name, blocks: h.blocks.length, replicas: h.replicas, underReplicated: h.underReplicated, missing: h.missing, corrupt: h.corrupt, problems: h.blocks.filter((b) => b.holders.length < h.replicas || b.corrupt.length > 0).map((b) => ({ cid: b.block.cid, file: b.file, holders: b.holders, corrupt: b.corrupt })) })))}\n`)
      } else {
        for (const h of healths) {
          process.stdout.write(`${h.name}: ${h.blocks.length} blocks, ${h.replicas} replicas wanted; under-replicated ${h.underReplicated}, missing ${h.missing}, corrupt copies found ${h.corrupt}: ${h.missing > 0 ? 'MISSING' : h.underReplicated > 0 ? 'UNDER-REPLICATED' : 'HEALTHY'}\n`)
          for (const b of h.blocks) {
            if (b.holders.length >= h.replicas && b.corrupt.length === 0) continue
            process.stdout.write(`  ${b.file} @${b.block.offset} ${b.block.cid}: ${b.holders.length} of ${h.replicas} intact${b.corrupt.length > 0 ? `, corrupt on ${b.corrupt.join(', ')} (dropped; copied again from an intact one)` : ''}\n`)
          }
        }
      }
      if (healths.some((h) => h.missing > 0)) process.exitCode = 1
    })
}

/** Writes to stdout, waiting for it to drain. */
async function writeOut (bytes: Uint8Array): Promise<void> {
  if (bytes.byteLength === 0) return
  if (process.stdout.write(bytes)) return
  await new Promise<void>((resolve) => process.stdout.once('drain', resolve))
}
