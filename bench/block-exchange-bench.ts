import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { defaultLogger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { fetchBlockToFile } from '../src/dataset/block-client.js'
import { BlockStore } from '../src/dataset/block-store.js'
import { Catalog } from '../src/dataset/catalog.js'
import { cutBlocks } from '../src/dataset/cut-blocks.js'
import { DatasetService } from '../src/dataset/dataset-service.js'
import { createClientLibp2p } from '../src/node/client-libp2p.js'
import type { BlockRef } from '../src/protocol/dataset-messages.js'
import { Rpc } from '../src/protocol/rpc.js'
import { createLogger } from '../src/util/logger.js'
import { BENCH_DIR, corpus, REPO_ROOT } from './corpus.js'

/** Transfers in flight at once, for both ways: what `put` uses. */
const CONCURRENCY = 4

interface BitswapLike {
  start: () => Promise<void>
  stop: () => Promise<void>
  want: (cid: CID, options?: { signal?: AbortSignal }) => Promise<Uint8Array>
}

/**
 * Moving blocks between two nodes (issue #15's "choices to measure"): the same 1 GiB, cut at line ends, pulled by
 * one node from another over one libp2p connection on loopback, four blocks in flight, in one run:
 * - this repository's bulk streams (`data/get-block`): 32 MiB blocks, checked against their CIDs on both sides,
 *   written to files;
 * - Helia's bitswap (@helia/bitswap 4) with IPFS's default 256 KiB chunks, and with 1,000,000-byte blocks: a block of
 *   1 MiB or more never arrived here (each want aborted at its 10 s receive timeout, with the message caps raised or
 *   not), so bitswap cannot carry our 32 MiB blocks at all. Its blocks are kept in memory, which spares it the disk
 *   our way pays.
 * Bitswap's Bitswap class is not exported (only a Helia mixin): it is loaded from its file.
 */
export async function runBlockExchangeBench (): Promise<Record<string, number>> {
  const input = await corpus(2 ** 30)
  const mb = readFileSync(input).byteLength / 1e6
  const out: Record<string, number> = { corpusMB: mb }
  out.bulkStreamsMBps = mb / await timeBulk(input, 32 * 2 ** 20)
  out.bitswap256KiBMBps = mb / await timeBitswap(input, 256 * 1024)
  out.bitswap1MBMBps = mb / await timeBitswap(input, 1_000_000)
  out.bitswap256KiBVsBulk = out.bitswap256KiBMBps / out.bulkStreamsMBps
  out.bitswap1MBVsBulk = out.bitswap1MBMBps / out.bulkStreamsMBps
  return out
}

async function pair (): Promise<{ a: Awaited<ReturnType<typeof createClientLibp2p>>, b: Awaited<ReturnType<typeof createClientLibp2p>> }> {
  const a = await createClientLibp2p({ version: 'bench', listen: ['/ip4/127.0.0.1/tcp/0'] })
  const b = await createClientLibp2p({ version: 'bench' })
  await a.start()
  await b.start()
  return { a, b }
}

async function inFlight<T> (items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < items.length) await fn(items[next++])
  }))
}

async function timeBulk (input: string, blockSize: number): Promise<number> {
  const blocks = cutBlocks(input, readFileSync(input).byteLength, blockSize)
  const dir = mkdtempSync(join(BENCH_DIR, 'exchange-'))
  const { a, b } = await pair()
  const log = createLogger('bench')
  const store = new BlockStore({ dir: join(dir, 'blocks'), log })
  store.start()
  const service = new DatasetService({ self: a.peerId.toString(), rpc: new Rpc(a.peerId.toString(), a, log), network: a, store, catalog: new Catalog(join(dir, 'catalog.json'), log), lease: () => undefined, members: () => [], log })
  try {
    for (const blk of blocks) storeBlock(store, input, blk)
    await service.start()
    const from = [{ peer: a.peerId.toString(), ref: multiaddr(a.getMultiaddrs()[0].toString()) }]
    const signal = new AbortController().signal
    const t0 = performance.now()
    await inFlight(blocks, async (blk) => { await fetchBlockToFile(b, from, blk, join(dir, `got-${blk.cid}`), signal) })
    return (performance.now() - t0) / 1000
  } finally {
    await service.stop()
    await b.stop()
    await a.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

function storeBlock (store: BlockStore, input: string, blk: BlockRef): void {
  const w = store.begin(blk.cid, blk.bytes)
  const data = readFileSync(input).subarray(blk.offset, blk.offset + blk.bytes)
  w.write([data])
  w.commit()
}

async function timeBitswap (input: string, blockSize: number): Promise<number> {
  const { Bitswap } = await import(pathToFileURL(join(REPO_ROOT, 'node_modules/@helia/bitswap/dist/src/bitswap.js')).href) as { Bitswap: new (components: unknown, init?: unknown) => BitswapLike }
  const bytes = readFileSync(input)
  const blocks = cutBlocks(input, bytes.byteLength, blockSize)
  const { a, b } = await pair()
  const routing = {
    async * findProviders () {},
    async provide () {},
    async cancelReprovide () {},
    async put () {},
    async get (): Promise<Uint8Array> { throw new Error('no routing') },
    async findPeer (): Promise<never> { throw new Error('no routing') },
    async * getClosestPeers () {}
  }
  const make = (libp2p: unknown, blockstore: MemoryBlockstore): BitswapLike => new Bitswap(
    { routing, blockstore, logger: defaultLogger(), libp2p, getHasher: async () => sha256 },
    {}
  )
  const held = new MemoryBlockstore()
  for (const blk of blocks) await held.put(CID.parse(blk.cid), bytes.subarray(blk.offset, blk.offset + blk.bytes))
  const server = make(a, held)
  const client = make(b, new MemoryBlockstore())
  await server.start()
  await client.start()
  try {
    await b.dial(multiaddr(a.getMultiaddrs()[0].toString()))
    const t0 = performance.now()
    await inFlight(blocks, async (blk) => {
      const got = await client.want(CID.parse(blk.cid), { signal: AbortSignal.timeout(120_000) })
      if (got.byteLength !== blk.bytes) throw new Error(`bitswap gave ${got.byteLength} bytes for a block of ${blk.bytes}`)
    })
    return (performance.now() - t0) / 1000
  } finally {
    await client.stop()
    await server.stop()
    await b.stop()
    await a.stop()
  }
}
