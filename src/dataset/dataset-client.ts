import type { z } from 'zod'
import {
  BindResponse, BlocksResponse, CATALOG_MAX_FRAME_BYTES, DATASET_NAME_PATTERN, CatalogResponse, DATASET_PROTOCOLS, type BlockRef, type BlockState,
  type CatalogEntry, type Manifest, type ManifestFile
} from '../protocol/dataset-messages.js'
import { INFO_PROTOCOL } from '../protocol/ids.js'
import { InfoResponse } from '../protocol/info.js'
import { request, type RequestOptions, type StreamOpener } from '../protocol/reqresp.js'
import { withPeerId } from '../util/peer-addr.js'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { errorMessage, UserFacingError } from '../util/errors.js'
import { sleep } from '../util/sleep.js'
import { blockCuts, cutBlocks } from './cut-blocks.js'
import { PutSends } from './put-sends.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { sealBind } from '../protocol/job-seal.js'
import { manifestCid } from './block-cid.js'
import { fromFirstHolder, getBlock, putBlock, putOnFirst, type PeerRef } from './block-client.js'
import { placeBlocks, rankPeers } from './placement.js'

/** A dataset operation a person asked for that cannot be done: one line says why (exit 1). */
export class DatasetError extends UserFacingError {
  static readonly NAME = 'DatasetError'
  override readonly name = DatasetError.NAME
  readonly exitCode = 1
}

/** What a client knows of the mesh to work on datasets: the members that store blocks, and how to reach them. */
export interface MeshView {
  opener: StreamOpener
  /** Members that store blocks (live workers), each with the way to dial it. */
  storing: Array<{ peer: string, ref: PeerRef }>
  /** The node asked first (catalog reads go there). */
  target: PeerRef
  /** The coordinator as the mesh sees it now (asked again after a refusal); undefined while none is elected. */
  coordinator: () => Promise<PeerRef | undefined>
}

/** A member's advertised addresses, each ending in its /p2p part: ones to dial. */
function dialable (m: { peerId: string, addrs: string[] }): Multiaddr[] {
  return m.addrs.map((a) => multiaddr(withPeerId(a, m.peerId)))
}

/** The mesh as the first of `targets` that answers sees it: its live workers store blocks (itself too, when it is one). */
export async function meshViewOf (opener: StreamOpener, targets: readonly Multiaddr[], signal?: AbortSignal): Promise<MeshView> {
  const reasons: string[] = []
  for (const target of targets) {
    try {
      const info = await request(opener, target, INFO_PROTOCOL, {}, InfoResponse, { signal })
      return {
        opener,
        target,
        storing: [
          ...(info.worker ? [{ peer: info.peerId, ref: target }] : []),
          ...info.members.filter((m) => m.liveness === 'alive' && m.worker).map((m) => ({ peer: m.peerId, ref: dialable(m) }))
        ],
        coordinator: async () => {
          const now = await request(opener, target, INFO_PROTOCOL, {}, InfoResponse, { signal })
          if (now.coordinator === null) return undefined
          if (now.coordinator === now.peerId) return target
          const m = now.members.find((x) => x.peerId === now.coordinator)
          return m === undefined ? undefined : dialable(m)
        }
      }
    } catch (err) {
      if (signal?.aborted === true) throw err
      reasons.push(`${target.toString()}: ${errorMessage(err)}`)
    }
  }
  throw new DatasetError(`no node of the mesh answered: ${reasons.join('; ')}`)
}

/** `NAME` or `NAME/FILE`, checked. */
export function parseDatasetRef (raw: string): { name: string, file: string | undefined } {
  const slash = raw.indexOf('/')
  const name = slash === -1 ? raw : raw.slice(0, slash)
  const file = slash === -1 ? undefined : raw.slice(slash + 1).replace(/\/+$/, '')
  if (!DATASET_NAME_PATTERN.test(name)) throw new DatasetError(`'${name}' is not a dataset name (1-128 letters, digits, _ . and -, not starting with . or -)`)
  return { name, file: file === '' ? undefined : file }
}

const CALL: RequestOptions = { timeouts: { dialMs: 5_000, firstByteMs: 30_000, responseMs: 60_000 }, maxFrameBytes: CATALOG_MAX_FRAME_BYTES }

async function call<S extends z.ZodType> (mesh: MeshView, to: PeerRef, protocol: string, body: unknown, schema: S, signal?: AbortSignal): Promise<z.output<S>> {
  return await request(mesh.opener, to, protocol, body, schema, { ...CALL, signal })
}

/** A file to put: where it is, and the path the dataset records for it. */
export interface PutFile { path: string, recorded: string, size: number }

/** `doneBytes`: bytes of copies sent or found already held, of `totalBytes` (the files' size times the replicas). */
export interface PutProgress { doneBytes: number, totalBytes: number }

export interface PutOptions {
  name: string
  files: readonly PutFile[]
  replicas: number
  blockSize: number
  replace: boolean
  signal?: AbortSignal
  onProgress?: (p: PutProgress) => void
  /** Transfers in flight at once. */
  concurrency?: number
  /** Who asks (`--identity`): a mesh with `--submitters` binds only for those it lists. Default: a fresh identity. */
  identity?: PrivateKey
}

export interface PutResult { entry: CatalogEntry, sentBytes: number, skippedBytes: number }

/**
 * `mrp2p put`: cuts each file at line ends into blocks and names each by its SHA-256 (one read), places every block
 * on `replicas` distinct storing nodes (rendezvous order, skipping full ones), sends each copy a holder lacks, and
 * only then asks the coordinator to bind the name. A put that cannot place every block fails before it sends a
 * byte; one that fails later leaves blocks no name uses, and nothing listed.
 *
 * When every storing node has room for all the files, no node can fill up, so each block's holders are the top of
 * its rank, known as soon as it is cut: its copies go out while the rest is cut (a 1 GiB cut takes some 2 s).
 * Otherwise the whole placement is made first, so that a put that cannot fit fails before it sends a byte.
 */
export async function putDataset (mesh: MeshView, opts: PutOptions): Promise<PutResult> {
  // Refused before a byte is read or sent; the coordinator checks again when it binds (two puts may race).
  if (await boundEntry(mesh, opts.name, opts.signal) !== undefined && !opts.replace) throw new DatasetError(`dataset ${opts.name} exists (put --replace to replace it)`)
  const signal = opts.signal ?? new AbortController().signal
  const answers = await Promise.all(mesh.storing.map(async (m) => ({ ...m, res: await call(mesh, m.ref, DATASET_PROTOCOLS.blocks, { cids: [] }, BlocksResponse, signal) })))
  const storing = answers.filter((a) => a.res.worker).map((a) => ({ peer: a.peer, ref: a.ref, free: a.res.free }))
  const enough = placeBlocks([], storing, opts.replicas)
  if (!enough.ok) throw new DatasetError(`cannot put ${opts.name}: ${enough.shortfall}`)
  const refs = new Map(storing.map((s) => [s.peer, s.ref]))
  const size = opts.files.reduce((n, f) => n + f.size, 0)
  const totalBytes = size * opts.replicas
  opts.onProgress?.({ doneBytes: 0, totalBytes })
  const sends = new PutSends({
    concurrency: opts.concurrency ?? 4,
    holds: async (to, cid, s) => (await call(mesh, refs.get(to) as PeerRef, DATASET_PROTOCOLS.blocks, { cids: [cid] }, BlocksResponse, s)).states[0] === 'held',
    send: async (copy, s) => { await putBlock(mesh.opener, refs.get(copy.to) as PeerRef, copy.block, { path: copy.path, offset: copy.block.offset }, s) },
    onCopied: (doneBytes) => { opts.onProgress?.({ doneBytes, totalBytes }) }
  }, signal, (copy, err) => new DatasetError(`cannot put ${opts.name}: block ${copy.block.cid} of ${copy.recorded} to node ${copy.to}: ${errorMessage(err)}`))
  const manifest: Manifest = { files: opts.files.map((f) => ({ path: f.recorded, size: f.size, blocks: [] })), replicas: opts.replicas, blockSize: opts.blockSize }
  if (storing.every((s) => s.free >= size)) {
    const peers = storing.map((s) => s.peer)
    try {
      for (const [i, f] of opts.files.entries()) {
        for (const cut of blockCuts(f.path, f.size, opts.blockSize)) {
          for (const b of cut) {
            manifest.files[i].blocks.push(b)
            sends.add(b, f, rankPeers(b.cid, peers).slice(0, opts.replicas))
          }
          // Lets the copies in flight go on between reads.
          await new Promise((resolve) => setImmediate(resolve))
          sends.throwIfFailed()
        }
      }
    } catch (err) {
      sends.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  } else {
    opts.files.forEach((f, i) => { manifest.files[i].blocks = cutBlocks(f.path, f.size, opts.blockSize) })
    const blocks = uniqueBlocks(manifest, opts.files)
    const placement = placeBlocks(blocks.map((b) => b.block), storing, opts.replicas)
    if (!placement.ok) throw new DatasetError(`cannot put ${opts.name}: ${placement.shortfall}`)
    blocks.forEach((b, i) => { sends.add(b.block, b.file, placement.holders[i]) })
  }
  await sends.done()
  const entry = await bind(mesh, { name: opts.name, manifest, replace: opts.replace }, signal, opts.identity)
  return { entry, sentBytes: sends.sentBytes, skippedBytes: sends.skippedBytes }
}

/** `mrp2p rm`: removes the name; every node deletes the blocks no other dataset uses. */
export async function removeDataset (mesh: MeshView, name: string, signal?: AbortSignal, identity?: PrivateKey): Promise<CatalogEntry> {
  return await bind(mesh, { name }, signal ?? new AbortController().signal, identity)
}

/** Binds `name` to a manifest whose blocks are already stored (a job's output), refusing a name that is bound. */
export async function bindManifest (mesh: MeshView, name: string, manifest: Manifest, signal?: AbortSignal, identity?: PrivateKey): Promise<CatalogEntry> {
  return await bind(mesh, { name, manifest }, signal ?? new AbortController().signal, identity)
}

/** Asks the coordinator to bind (or remove) a name; waits out an election (up to 30 s) rather than fail in one. */
async function bind (mesh: MeshView, unsigned: { name: string, manifest?: Manifest, replace?: boolean }, signal: AbortSignal, identity?: PrivateKey): Promise<CatalogEntry> {
  const seal = await sealBind(unsigned.name, unsigned.manifest === undefined ? undefined : manifestCid(unsigned.manifest), identity ?? await generateKeyPair('Ed25519'))
  const req = { ...unsigned, seal }
  const deadline = performance.now() + 30_000
  let last = 'no coordinator elected'
  while (performance.now() < deadline) {
    const to = await mesh.coordinator()
    if (to !== undefined) {
      try {
        const res = await call(mesh, to, DATASET_PROTOCOLS.bind, req, BindResponse, signal)
        if (res.ok) return res.entry
        if (res.notCoordinator !== true) throw new DatasetError(res.error)
        last = res.error
      } catch (err) {
        if (err instanceof DatasetError || signal.aborted) throw err
        last = errorMessage(err)
      }
    }
    await sleep(500, { signal })
  }
  throw new DatasetError(`cannot ${req.manifest === undefined ? 'remove' : 'bind'} ${req.name}: ${last}`)
}

/** The catalog entry of `name` as the target node holds it; throws a one-line error when no such dataset is bound. */
export async function datasetEntry (mesh: MeshView, name: string, signal?: AbortSignal): Promise<CatalogEntry & { manifest: Manifest }> {
  const e = await boundEntry(mesh, name, signal)
  if (e === undefined) throw new DatasetError(`no dataset ${name} in this mesh (mrp2p ls lists them)`)
  return e
}

/** `name`'s entry as the target node holds it, when the name is bound (not removed, not unknown). */
async function boundEntry (mesh: MeshView, name: string, signal?: AbortSignal): Promise<(CatalogEntry & { manifest: Manifest }) | undefined> {
  const e = (await call(mesh, mesh.target, DATASET_PROTOCOLS.catalog, { name }, CatalogResponse, signal)).entries[0]
  return e?.manifest === undefined ? undefined : { ...e, manifest: e.manifest }
}

/**
 * One block of `bytes` named `cid` onto `replicas` storing nodes, the first in its rank order that take it (a
 * detached job's code): the nodes it is on.
 */
export async function putBytes (mesh: MeshView, cid: string, bytes: Uint8Array, replicas: number, signal?: AbortSignal): Promise<string[]> {
  const s = signal ?? new AbortController().signal
  const refs = new Map(mesh.storing.map((m) => [m.peer, m.ref]))
  const { on, reasons } = await putOnFirst(rankPeers(cid, [...refs.keys()]), replicas, s, async (peer) => {
    await putBlock(mesh.opener, refs.get(peer) as PeerRef, { cid, bytes: bytes.byteLength }, bytes, s)
  })
  if (on.length === 0) throw new DatasetError(`no node of the mesh took block ${cid}: ${reasons || 'no node stores blocks'}`)
  return on
}

/** Refuses, in one line, a name that is bound now: a job's `--output mesh:NAME` must name a new dataset. */
export async function checkNameFree (mesh: MeshView, name: string, signal?: AbortSignal): Promise<void> {
  if (await boundEntry(mesh, name, signal) !== undefined) throw new DatasetError(`dataset ${name} exists: give the job's output a new name, or mrp2p rm ${name} first`)
}

/** Every bound dataset, by name. */
export async function listDatasets (mesh: MeshView, signal?: AbortSignal): Promise<Array<CatalogEntry & { manifest: Manifest }>> {
  const res = await call(mesh, mesh.target, DATASET_PROTOCOLS.catalog, {}, CatalogResponse, signal)
  return res.entries.flatMap((e) => (e.manifest === undefined ? [] : [{ ...e, manifest: e.manifest }]))
}

/** The files of a dataset that `NAME/FILE` names: all of them without FILE, else the one recorded so (or those under it as a folder). */
export function selectFiles (manifest: Manifest, name: string, file: string | undefined): ManifestFile[] {
  if (file === undefined) return manifest.files
  const picked = manifest.files.filter((f) => f.path === file || f.path.startsWith(`${file}/`))
  if (picked.length === 0) throw new DatasetError(`dataset ${name} has no file ${file}`)
  return picked
}

/**
 * The blocks of `files` in order, each checked against its CID, from the first holder that has it intact
 * (rank order among the storing members); `sink` gets each block whole, in order.
 */
export async function readFiles (mesh: MeshView, files: readonly ManifestFile[], sink: (file: ManifestFile, bytes: Uint8Array) => Promise<void>, signal?: AbortSignal): Promise<void> {
  const s = signal ?? new AbortController().signal
  const refs = new Map(mesh.storing.map((m) => [m.peer, m.ref]))
  for (const file of files) {
    for (const block of file.blocks) {
      const holders = rankPeers(block.cid, [...refs.keys()]).map((peer) => ({ peer, ref: refs.get(peer) as PeerRef }))
      const got = await fromFirstHolder(holders, s, async (ref) => {
        // The pieces are the received messages themselves: kept as they are, joined once.
        const parts: Uint8Array[] = []
        await getBlock(mesh.opener, ref, block, (pieces) => { parts.push(...pieces) }, s)
        return Buffer.concat(parts)
      }, (reasons) => new DatasetError(`block ${block.cid} of ${file.path} is on no live node (${reasons || 'no storing node'}): mrp2p fsck tells more`))
      await sink(file, got.value)
    }
    if (file.blocks.length === 0) await sink(file, new Uint8Array(0))
  }
}

/** One block's replicas as found: intact copies, and the nodes whose copy was corrupt. */
export interface BlockHealth { block: BlockRef, file: string, holders: string[], corrupt: string[] }

export interface DatasetHealth {
  name: string
  replicas: number
  blocks: BlockHealth[]
  underReplicated: number
  missing: number
  corrupt: number
}

/**
 * Where each block of the dataset is, asking every storing member (with `verify`, each copy is read through and
 * checked against its CID, and a corrupt one dropped there): `ls` and `fsck`.
 */
export async function datasetHealth (mesh: MeshView, entry: CatalogEntry & { manifest: Manifest }, verify: boolean, signal?: AbortSignal): Promise<DatasetHealth> {
  const all = entry.manifest.files.flatMap((f) => f.blocks.map((b) => ({ file: f.path, block: b })))
  const cids = [...new Set(all.map((x) => x.block.cid))]
  const found = new Map<string, { holders: string[], corrupt: string[] }>(cids.map((c) => [c, { holders: [], corrupt: [] }]))
  await Promise.all(mesh.storing.map(async (m) => {
    let states: BlockState[]
    try {
      states = (await call(mesh, m.ref, DATASET_PROTOCOLS.blocks, { cids, verify }, BlocksResponse, signal)).states
    } catch {
      return
    }
    cids.forEach((cid, i) => {
      const f = found.get(cid)
      if (f === undefined) return
      if (states[i] === 'held') f.holders.push(m.peer)
      else if (states[i] === 'corrupt') f.corrupt.push(m.peer)
    })
  }))
  const blocks = all.map((x) => ({ ...x, holders: found.get(x.block.cid)?.holders ?? [], corrupt: found.get(x.block.cid)?.corrupt ?? [] }))
  const replicas = entry.manifest.replicas
  return {
    name: entry.name,
    replicas,
    blocks,
    underReplicated: blocks.filter((b) => b.holders.length > 0 && b.holders.length < replicas).length,
    missing: blocks.filter((b) => b.holders.length === 0).length,
    corrupt: blocks.filter((b) => b.corrupt.length > 0).length
  }
}

/** Each distinct block once (a block two files share is sent once), with the file it is read from. */
function uniqueBlocks (manifest: Manifest, files: readonly PutFile[]): Array<{ block: BlockRef, file: PutFile }> {
  const seen = new Set<string>()
  const out: Array<{ block: BlockRef, file: PutFile }> = []
  manifest.files.forEach((f, i) => {
    for (const b of f.blocks) {
      if (seen.has(b.cid)) continue
      seen.add(b.cid)
      out.push({ block: b, file: files[i] })
    }
  })
  return out
}
