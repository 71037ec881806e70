import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { EMPTY_BLOCK_CID } from '../dataset/block-cid.js'
import { fromFirstHolder, getBlockPrefix } from '../dataset/block-client.js'
import { datasetEntry, datasetHealth, DatasetError, parseDatasetRef, selectFiles, type MeshView } from '../dataset/dataset-client.js'
import type { InputSplit } from '../mapreduce/splits.js'

/** An input or output that names a dataset in the mesh: `mesh:NAME` (or an input's `mesh:NAME/FILE`). */
export const MESH_PREFIX = 'mesh:'

export function isMeshRef (input: string): boolean {
  return input.startsWith(MESH_PREFIX)
}

/** At most this many holders ride in a split: the scheduler's first choices. */
const MAX_HOSTS = 16

/**
 * One split per block of each named dataset (file by file, in the order `put` recorded them): a map's `document`
 * is the file's recorded path, its offset and first line the block's in that file. Each split names the nodes that
 * hold its block now, for the scheduler's locality. A block no live node holds fails the submit here, before the
 * job starts.
 */
export async function planMeshSplits (mesh: MeshView, inputs: readonly string[], firstIndex: number, signal?: AbortSignal): Promise<InputSplit[]> {
  const splits: InputSplit[] = []
  for (const input of inputs) {
    const { name, file } = parseDatasetRef(input.slice(MESH_PREFIX.length))
    const entry = await datasetEntry(mesh, name, signal)
    const files = selectFiles(entry.manifest, name, file)
    const health = await datasetHealth(mesh, { ...entry, manifest: { ...entry.manifest, files } }, false, signal)
    const holders = new Map(health.blocks.map((b) => [b.block.cid, b.holders]))
    for (const f of files) {
      // An empty file is one empty split, as a local input is: map still sees its document.
      if (f.blocks.length === 0) splits.push({ document: f.path, path: '', index: firstIndex + splits.length, offset: 0, length: 0, firstLine: 1, block: { cid: EMPTY_BLOCK_CID, hosts: [] } })
      for (const b of f.blocks) {
        const hosts = holders.get(b.cid) ?? []
        if (hosts.length === 0) throw new DatasetError(`input ${input}: block ${b.cid} of ${f.path} is on no live node (mrp2p fsck ${name} tells more)`)
        splits.push({ document: f.path, path: '', index: firstIndex + splits.length, offset: b.offset, length: b.bytes, firstLine: b.firstLine, block: { cid: b.cid, hosts: hosts.slice(0, MAX_HOSTS) } })
      }
    }
  }
  return splits
}

/**
 * For a job's sample hook (the sort's): the first `bytes` of each block split, fetched into `dir`, as splits that
 * read those files. Only the prefix travels, never the whole dataset.
 */
export async function samplePrefixes (mesh: MeshView, splits: readonly InputSplit[], bytes: number, dir: string, signal?: AbortSignal): Promise<InputSplit[]> {
  const refs = new Map(mesh.storing.map((m) => [m.peer, m.ref]))
  const s = signal ?? new AbortController().signal
  const out: InputSplit[] = []
  for (const split of splits) {
    if (split.block === undefined || split.length === 0) {
      out.push(split)
      continue
    }
    const { cid } = split.block
    const holders = split.block.hosts.flatMap((peer) => { const ref = refs.get(peer); return ref === undefined ? [] : [{ peer, ref }] })
    const got = await fromFirstHolder(holders, s, async (ref) => await getBlockPrefix(mesh.opener, ref, cid, Math.min(bytes, split.length), s),
      (reasons) => new DatasetError(`cannot sample block ${cid} of ${split.document}: ${reasons || 'no holder reachable'}`))
    const path = join(dir, `sample-${split.index}`)
    writeFileSync(path, got.value)
    // The split's length stays: the sample reads at most `bytes` of it, and drops a line the prefix cut.
    out.push({ ...split, path, offset: 0, block: undefined })
  }
  return out
}
