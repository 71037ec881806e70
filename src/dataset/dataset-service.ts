import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Startable } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { z } from 'zod'
import { receiveFrames, sendFileRange, writeJsonFrame } from '../protocol/bulk.js'
import { handleBulk, type BulkHandlerContext, type BulkHandlerRegistration } from '../protocol/bulk-rpc.js'
import {
  BindRequest, BlocksRequest, BlocksResponse, CATALOG_MAX_FRAME_BYTES, CatalogRequest, DATASET_PROTOCOLS, GetBlockRequest,
  PushRequest, PushResponse, PutBlockRequest, CatalogResponse, type BindResponse, type BlockRef, type BlockState, type Manifest, type CatalogEntry, type PutBlockResponse
} from '../protocol/dataset-messages.js'
import { JobSpecSchema, type BulkResponseHeader, type JobSpec } from '../protocol/job-messages.js'
import type { HandlerRegistrar, RegisteredHandler, StreamOpener } from '../protocol/reqresp.js'
import type { Rpc } from '../protocol/rpc.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { sleep } from '../util/sleep.js'
import { checkBindSeal } from '../protocol/job-seal.js'
import { CorruptBlockError, EMPTY_BLOCK_CID, manifestCid } from './block-cid.js'
import { fetchBlockToFile, putBlock, putOnFirst } from './block-client.js'
import type { BlockStore } from './block-store.js'
import { cutBlocks } from './cut-blocks.js'
import type { Catalog } from './catalog.js'
import { DEFAULT_REPAIR_AFTER_MS, DepartureGrace } from './departure-grace.js'
import { rankPeers } from './placement.js'

export interface DatasetServiceComponents {
  self: string
  rpc: Rpc
  network: StreamOpener & HandlerRegistrar
  /** This node's blocks; undefined on a node that stores none (`--no-worker`). */
  store: BlockStore | undefined
  catalog: Catalog
  /** The fencing epoch while this node holds the coordinator's lease. */
  lease: () => number | undefined
  /** The members alive now, this node excluded, and whether each stores blocks (runs a worker). */
  members: () => Array<{ peer: string, worker: boolean }>
  /** Set: only these identities may bind or remove names here (`join --submitters`); undefined: any member or client. */
  submitters?: ReadonlySet<string>
  /** Blocks no dataset lists that must be kept (at 2 copies) all the same: running detached jobs' specs and code. */
  pinned?: () => Iterable<string>
  log: Logger
}

export interface DatasetServiceInit {
  /** How often the catalog is compared with a random member's, ms. */
  syncMs?: number
  /** How often held blocks are checked against their replica counts (and at once when the members change), ms. */
  repairMs?: number
  /** How long a storing member that left still counts for its blocks before they are copied elsewhere, ms (default {@link DEFAULT_REPAIR_AFTER_MS}). */
  repairAfterMs?: number
  /** How old a block no dataset uses must be before it is deleted, ms (default {@link ORPHAN_GRACE_MS}). */
  orphanGraceMs?: number
}

/**
 * A held block that no bound dataset uses is deleted once it is this old: it is what a put that failed before
 * binding left, or an output of a job that never finished. Younger ones may belong to a put or a job in progress.
 */
export const ORPHAN_GRACE_MS = 60 * 60_000

const CALL = { timeouts: { dialMs: 3_000, firstByteMs: 10_000, responseMs: 30_000 }, maxFrameBytes: CATALOG_MAX_FRAME_BYTES }

/** What the repair loop did, for tests and the benchmark. */
export interface RepairStats {
  passes: number
  copied: number
  copiedBytes: number
  failed: number
}

/**
 * One node's side of the datasets (docs/datasets.md): serves its blocks (put, get, which are held), its copy of the
 * catalog, and, while it holds the lease, the bindings of names; keeps its catalog in step with the members'; and
 * keeps each block it holds at its replica count on the nodes that rank first for it.
 */
export class DatasetService implements Startable {
  private handlers: Array<RegisteredHandler | BulkHandlerRegistration> = []
  private lifetime = new AbortController()
  private loops: Array<Promise<void>> = []
  private wakeRepair: (() => void) | undefined
  /** Whether the catalog was compared with a member's since start: before that, no block is judged an orphan. */
  private synced = false
  readonly repairs: RepairStats = { passes: 0, copied: 0, copiedBytes: 0, failed: 0 }

  constructor (private readonly c: DatasetServiceComponents, private readonly init: DatasetServiceInit = {}) {}

  async start (): Promise<void> {
    const { rpc, network, catalog, log } = this.c
    this.lifetime = new AbortController()
    catalog.onChange((_changed, replaced) => { this.dropUnused(replaced) })
    this.handlers = [
      await handleBulk(network, { protocol: DATASET_PROTOCOLS.putBlock, requestSchema: PutBlockRequest, log, handle: async (req, ctx) => { await this.onPutBlock(req, ctx) } }),
      await handleBulk(network, { protocol: DATASET_PROTOCOLS.getBlock, requestSchema: GetBlockRequest, log, handle: async (req, ctx) => { await this.onGetBlock(req, ctx) } }),
      await rpc.serve(DATASET_PROTOCOLS.blocks, BlocksRequest, async (req) => await this.onBlocks(req)),
      await rpc.serve(DATASET_PROTOCOLS.catalog, CatalogRequest, (req): z.input<typeof CatalogResponse> => {
        if (req.name === undefined) return { entries: catalog.all() }
        const e = catalog.get(req.name)
        return { entries: e === undefined ? [] : [e] }
      }),
      await rpc.serve(DATASET_PROTOCOLS.bind, BindRequest, async (req) => await this.onBind(req), { maxFrameBytes: CATALOG_MAX_FRAME_BYTES }),
      await rpc.serve(DATASET_PROTOCOLS.push, PushRequest, (req): z.input<typeof PushResponse> => {
        catalog.merge(req.entries)
        return { ok: true }
      }, { maxFrameBytes: CATALOG_MAX_FRAME_BYTES })
    ]
    this.loops = [this.syncLoop(), this.repairLoop()]
  }

  async stop (): Promise<void> {
    this.lifetime.abort()
    this.wakeRepair?.()
    for (const h of this.handlers) await h.unregister()
    this.handlers = []
    await Promise.all(this.loops)
    await this.c.catalog.flushed()
  }

  /** Runs a repair pass soon (a member came or went). */
  nudgeRepair (): void {
    this.wakeRepair?.()
  }

  /**
   * Block `cid` for a map on this node: its path in the store when held here and intact (read in place), else
   * fetched into `file` from a holder (those named by the split first, then the rest in rank order).
   */
  async openBlock (block: { cid: string, bytes: number, hosts?: readonly string[] }, file: string, signal: AbortSignal): Promise<{ path: string, fetchedFrom?: string }> {
    const { store, network, self } = this.c
    if (block.bytes === 0 && block.cid === EMPTY_BLOCK_CID) {
      writeFileSync(file, '')
      return { path: file }
    }
    if (store?.has(block.cid) === true) {
      try {
        return { path: await store.verified(block.cid) }
      } catch (err) {
        if (!(err instanceof CorruptBlockError)) throw err
        this.nudgeRepair()
      }
    }
    const ranked = rankPeers(block.cid, this.storingPeers().filter((p) => p !== self))
    const order = [...new Set([...(block.hosts ?? []).filter((p) => p !== self), ...ranked])]
    const fetchedFrom = await fetchBlockToFile(network, order.map((peer) => ({ peer, ref: peerIdFromString(peer) })), block, file, signal)
    return { path: file, fetchedFrom }
  }

  /**
   * Stores a file as blocks of a dataset (a reduce's part, `--output mesh:NAME`): cut at line ends past
   * `blockSize`, each block on `replicas` distinct storing nodes, the first in its rank order that take it (this
   * node's own store directly). The blocks, in order, for the part's commit.
   */
  async storeFile (path: string, size: number, layout: { blockSize: number, replicas: number }, signal: AbortSignal): Promise<BlockRef[]> {
    const blocks = cutBlocks(path, size, layout.blockSize)
    const { self, store, network, log } = this.c
    for (const b of blocks) {
      const peers = this.storingPeers()
      if (peers.length < layout.replicas) throw new Error(`cannot store the part as ${layout.replicas} replicas: ${peers.length} node${peers.length === 1 ? '' : 's'} store blocks`)
      const { on, reasons } = await putOnFirst(rankPeers(b.cid, peers), layout.replicas, signal, async (peer) => {
        if (peer === self && store !== undefined) await storeLocally(store, b, path)
        else await putBlock(network, peerIdFromString(peer), b, { path, offset: b.offset }, signal)
      })
      if (on.length < layout.replicas) throw new Error(`block ${b.cid} of the part is on ${on.length} of ${layout.replicas} nodes: ${reasons}`)
      log.debug({ cid: b.cid, bytes: b.bytes }, 'part block stored')
    }
    return blocks
  }

  // ── serving ──────────────────────────────────────────────────────────

  private async onPutBlock (req: z.output<typeof PutBlockRequest>, ctx: BulkHandlerContext): Promise<void> {
    const { store } = this.c
    const answer = async (a: z.input<typeof PutBlockResponse>): Promise<void> => { await writeJsonFrame(ctx.stream, a, { signal: ctx.signal }) }
    const drain = async (): Promise<void> => { await receiveFrames(ctx.reader, () => {}, req.bytes, { signal: ctx.signal }) }
    if (store === undefined) {
      await drain()
      await answer({ ok: false, error: 'this node stores no blocks (it runs no worker)' })
      return
    }
    if (store.has(req.cid)) {
      await drain()
      await answer({ ok: true })
      return
    }
    let write
    try {
      write = store.begin(req.cid, req.bytes)
    } catch (err) {
      await drain()
      await answer({ ok: false, error: errorMessage(err) })
      return
    }
    try {
      await receiveFrames(ctx.reader, (frame) => { write.write([...frame]) }, req.bytes, { signal: ctx.signal })
      await write.commit()
    } catch (err) {
      write.abort()
      if (err instanceof CorruptBlockError) {
        await answer({ ok: false, error: err.message })
        return
      }
      throw err
    }
    await answer({ ok: true })
  }

  private async onGetBlock (req: z.output<typeof GetBlockRequest>, ctx: BulkHandlerContext): Promise<void> {
    const { store } = this.c
    const head = async (h: z.input<typeof BulkResponseHeader>): Promise<void> => { await writeJsonFrame(ctx.stream, h, { signal: ctx.signal }) }
    if (store?.has(req.cid) !== true) {
      await head({ ok: false, error: `block ${req.cid} is not held here` })
      return
    }
    let path: string
    try {
      path = await store.verified(req.cid)
    } catch (err) {
      this.nudgeRepair()
      await head({ ok: false, error: errorMessage(err) })
      return
    }
    const bytes = Math.min(store.sizeOf(req.cid), req.length ?? Number.MAX_SAFE_INTEGER)
    await head({ ok: true, bytes })
    await sendFileRange(ctx.stream, path, 0, bytes, { signal: ctx.signal })
  }

  private async onBlocks (req: z.output<typeof BlocksRequest>): Promise<z.input<typeof BlocksResponse>> {
    const { store } = this.c
    const states: BlockState[] = []
    for (const cid of req.cids) {
      if (store?.has(cid) !== true) {
        states.push('missing')
        continue
      }
      if (req.verify !== true) {
        states.push('held')
        continue
      }
      try {
        await store.verified(cid)
        states.push('held')
      } catch (err) {
        if (!(err instanceof CorruptBlockError)) throw err
        states.push('corrupt')
        this.nudgeRepair()
      }
    }
    return { states, storedBytes: store?.storedBytes() ?? 0, free: store?.free() ?? 0, worker: store !== undefined }
  }

  private async onBind (req: z.output<typeof BindRequest>): Promise<z.input<typeof BindResponse>> {
    const allowed = this.c.submitters
    if (allowed !== undefined && this.c.lease() !== undefined) {
      const cid = req.manifest === undefined ? undefined : manifestCid(req.manifest)
      if (req.seal === undefined || !checkBindSeal(req.name, cid, req.seal)) return { ok: false, error: 'this mesh takes dataset changes only from the identities its --submitters lists: give put or rm --identity FILE' }
      if (!allowed.has(req.seal.signer)) return { ok: false, error: `identity ${req.seal.signer} is not allowed to change datasets in this mesh` }
    }
    const bound = this.bindNow(req)
    if ('error' in bound) return { ok: false, error: bound.error, notCoordinator: bound.notCoordinator }
    await this.c.catalog.flushed()
    // Every member hears of it before the client is told: an `ls` on any node that answers then lists it.
    await this.push(bound.entry)
    return { ok: true, entry: bound.entry }
  }

  /** The coordinator's binding of a name, checked and versioned, in this node's catalog at once. */
  private bindNow (req: z.output<typeof BindRequest>): { entry: CatalogEntry } | { error: string, notCoordinator?: true } {
    const { catalog } = this.c
    const epoch = this.c.lease()
    if (epoch === undefined) return { error: 'this node is not the coordinator', notCoordinator: true }
    const bound = catalog.get(req.name)?.manifest !== undefined
    if (req.manifest === undefined && !bound) return { error: `no dataset ${req.name} in this mesh` }
    if (req.manifest !== undefined && bound && req.replace !== true) return { error: `dataset ${req.name} exists (put --replace to replace it)` }
    const entry: CatalogEntry = {
      name: req.name,
      version: catalog.nextVersion(epoch),
      at: Date.now(),
      ...(req.manifest === undefined ? {} : { manifest: req.manifest, manifestCid: manifestCid(req.manifest) })
    }
    catalog.merge([entry])
    return { entry }
  }

  private async push (entry: CatalogEntry): Promise<void> {
    await Promise.all(this.c.members().map(async (m) => {
      try {
        await this.c.rpc.call(m.peer, DATASET_PROTOCOLS.push, { entries: [entry] }, PushResponse, { ...CALL, signal: AbortSignal.timeout(5_000) })
      } catch (err) {
        this.c.log.debug({ peer: m.peer, err: errorMessage(err) }, 'catalog push failed; the member catches up by sync')
      }
    }))
  }

  // ── detached jobs (the coordinator's DetachedJobStore) ───────────────

  /** Binds a detached job's output, as this node's lease allows; undefined, or why not. Members hear of it by push and sync. */
  bindOutput (name: string, manifest: Manifest): string | undefined {
    const bound = this.bindNow({ name, manifest })
    if ('error' in bound) return bound.error
    void this.push(bound.entry)
    return undefined
  }

  /** A sealed spec into the mesh, as one block (JSON has no line end to cut at), kept twice where the mesh can. */
  async storeSpec (spec: JobSpec, signal: AbortSignal): Promise<{ cid: string, bytes: number }> {
    const dir = mkdtempSync(join(tmpdir(), 'mrp2p-spec-'))
    try {
      const file = join(dir, 'spec.json')
      const bytes = Buffer.from(JSON.stringify(spec))
      writeFileSync(file, bytes)
      const replicas = Math.max(1, Math.min(2, this.storingPeers().length))
      const [block] = await this.storeFile(file, bytes.byteLength, { blockSize: Math.max(1, bytes.byteLength), replicas }, signal)
      return { cid: block.cid, bytes: block.bytes }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  async fetchSpec (where: { cid: string, bytes: number }, signal: AbortSignal): Promise<JobSpec> {
    const dir = mkdtempSync(join(tmpdir(), 'mrp2p-spec-'))
    try {
      const got = await this.openBlock({ cid: where.cid, bytes: where.bytes }, join(dir, 'spec.json'), signal)
      return JobSpecSchema.parse(JSON.parse(readFileSync(got.path, 'utf8')))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }

  // ── upkeep ───────────────────────────────────────────────────────────

  /** Blocks of replaced or removed manifests that no bound dataset uses any more leave this node's store. */
  private dropUnused (replaced: readonly CatalogEntry[]): void {
    const { store, catalog } = this.c
    if (store === undefined || replaced.length === 0) return
    const used = new Set<string>()
    for (const e of catalog.live()) for (const f of e.manifest?.files ?? []) for (const b of f.blocks) used.add(b.cid)
    let dropped = 0
    for (const e of replaced) {
      for (const f of e.manifest?.files ?? []) {
        for (const b of f.blocks) {
          if (used.has(b.cid) || !store.has(b.cid)) continue
          store.remove(b.cid)
          dropped++
        }
      }
    }
    if (dropped > 0) this.c.log.info({ dropped }, 'blocks no dataset uses were deleted')
  }

  private dropOrphans (wanted: ReadonlyMap<string, unknown>): void {
    const store = this.c.store
    if (store === undefined) return
    const before = Date.now() - (this.init.orphanGraceMs ?? ORPHAN_GRACE_MS)
    let dropped = 0
    for (const cid of store.list()) {
      if (wanted.has(cid) || store.modifiedAt(cid) > before) continue
      store.remove(cid)
      dropped++
    }
    if (dropped > 0) this.c.log.info({ dropped }, 'blocks no dataset uses (a failed put, an unfinished job) were deleted')
  }

  /** Members that store blocks, this node included when it does. */
  storingPeers (): string[] {
    const peers = this.c.members().filter((m) => m.worker).map((m) => m.peer)
    if (this.c.store !== undefined) peers.push(this.c.self)
    return peers
  }

  private async syncLoop (): Promise<void> {
    const signal = this.lifetime.signal
    const syncMs = this.init.syncMs ?? 10_000
    let first = true
    while (!signal.aborted) {
      const members = this.c.members()
      if (members.length > 0) {
        const peer = members[Math.floor(Math.random() * members.length)].peer
        try {
          const res = await this.c.rpc.call(peer, DATASET_PROTOCOLS.catalog, {}, CatalogResponse, { ...CALL, signal })
          this.c.catalog.merge(res.entries)
          first = false
          this.synced = true
        } catch (err) {
          if (signal.aborted) return
          this.c.log.debug({ peer, err: errorMessage(err) }, 'catalog sync failed')
        }
      }
      // Until the first sync succeeds (a node just started), try again soon.
      await sleep(first ? 500 : syncMs, { signal }).catch(() => {})
    }
  }

  private async repairLoop (): Promise<void> {
    const signal = this.lifetime.signal
    const repairMs = this.init.repairMs ?? 5_000
    const grace = new DepartureGrace(this.init.repairAfterMs ?? DEFAULT_REPAIR_AFTER_MS)
    let lastMembers = ''
    let lastPass = 0
    while (!signal.aborted) {
      const alive = this.storingPeers()
      // A departure's grace running out changes this list too, and so starts a pass.
      const ranked = grace.rankable(alive, performance.now())
      const members = [...ranked].sort().join(',')
      if (members !== lastMembers || performance.now() - lastPass >= repairMs) {
        lastMembers = members
        lastPass = performance.now()
        try {
          await this.repairPass(ranked, new Set(alive), signal)
        } catch (err) {
          if (signal.aborted) return
          this.c.log.warn({ err: errorMessage(err) }, 'repair pass failed')
        }
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 500)
        this.wakeRepair = () => { clearTimeout(timer); lastPass = 0; resolve() }
      })
    }
  }

  /**
   * For every block held here: are the nodes that rank first for it holding it? Each holder asks; the best-ranked
   * node that holds a block copies it to the ranked nodes that lack it, so a block lost with a node comes back
   * from one survivor, not from all of them. `peers` are the members blocks are ranked over (the alive ones and
   * those still in their grace); only the `alive` are asked and copied to.
   */
  private async repairPass (peers: readonly string[], alive: ReadonlySet<string>, signal: AbortSignal): Promise<void> {
    const { store, catalog, self, rpc, network, log } = this.c
    if (store === undefined) return
    this.repairs.passes++
    const wanted = new Map<string, { bytes: number, replicas: number }>()
    for (const e of catalog.live()) {
      for (const f of e.manifest?.files ?? []) {
        for (const b of f.blocks) {
          const w = wanted.get(b.cid)
          wanted.set(b.cid, { bytes: b.bytes, replicas: Math.max(w?.replicas ?? 0, e.manifest?.replicas ?? 1) })
        }
      }
    }
    for (const cid of this.c.pinned?.() ?? []) if (!wanted.has(cid)) wanted.set(cid, { bytes: 0, replicas: 2 })
    if (this.synced) this.dropOrphans(wanted)
    const plan = new Map<string, string[]>()
    const asks = new Map<string, string[]>()
    for (const cid of store.list()) {
      const want = wanted.get(cid)
      if (want === undefined) continue
      const targets = rankPeers(cid, peers).slice(0, want.replicas)
      plan.set(cid, targets)
      // A member in its grace is not asked: it holds nothing until it returns, and it gets no copy meanwhile.
      for (const t of targets) if (t !== self && alive.has(t)) asks.set(t, [...(asks.get(t) ?? []), cid])
    }
    const holds = new Map<string, Set<string>>()
    await Promise.all([...asks].map(async ([peer, cids]) => {
      try {
        const res = await rpc.call(peer, DATASET_PROTOCOLS.blocks, { cids }, BlocksResponse, { ...CALL, signal })
        holds.set(peer, new Set(cids.filter((_, i) => res.states[i] === 'held')))
      } catch (err) {
        log.debug({ peer, err: errorMessage(err) }, 'cannot ask a member for its blocks; next pass')
      }
    }))
    for (const [cid, targets] of plan) {
      const holding = (peer: string): boolean => peer === self || holds.get(peer)?.has(cid) === true
      const lacking = targets.filter((t) => t !== self && holds.has(t) && !holding(t))
      if (lacking.length === 0) continue
      // The first holder in rank order copies: a target that holds it ranks before this node unless this node is one.
      const first = [...targets, self].find(holding)
      if (first !== self) continue
      let path: string
      try {
        path = await store.verified(cid)
      } catch (err) {
        if (err instanceof CorruptBlockError) continue
        throw err
      }
      for (const peer of lacking) {
        const bytes = store.sizeOf(cid)
        try {
          await putBlock(network, peerIdFromString(peer), { cid, bytes }, { path, offset: 0 }, signal)
          this.repairs.copied++
          this.repairs.copiedBytes += bytes
          log.info({ cid, to: peer }, 'block re-replicated')
        } catch (err) {
          if (signal.aborted) return
          this.repairs.failed++
          log.warn({ cid, to: peer, err: errorMessage(err) }, 'cannot copy a block to a node that should hold it')
        }
      }
    }
  }
}

/** A block of a local file into this node's own store, through the same check as one received. */
async function storeLocally (store: BlockStore, block: BlockRef, path: string): Promise<void> {
  if (store.has(block.cid)) return
  const write = store.begin(block.cid, block.bytes)
  const fd = openSync(path, 'r')
  try {
    const buf = Buffer.allocUnsafe(Math.min(block.bytes, 4 * 2 ** 20))
    let done = 0
    while (done < block.bytes) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, block.bytes - done), block.offset + done)
      if (n === 0) throw new Error(`${path} ended early`)
      write.write([buf.subarray(0, n)])
      done += n
    }
    await write.commit()
  } catch (err) {
    write.abort()
    throw err
  } finally {
    closeSync(fd)
  }
}
