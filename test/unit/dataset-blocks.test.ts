import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { blockCid, CorruptBlockError, manifestCid } from '../../src/dataset/block-cid.js'
import { BlockStore, StoreFullError } from '../../src/dataset/block-store.js'
import { Catalog } from '../../src/dataset/catalog.js'
import { blockCuts, cutBlocks } from '../../src/dataset/cut-blocks.js'
import { placeBlocks, rankPeers } from '../../src/dataset/placement.js'
import { planSplits } from '../../src/mapreduce/splits.js'
import type { CatalogEntry, Manifest } from '../../src/protocol/dataset-messages.js'
import { createLogger } from '../../src/util/logger.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-dataset-unit-'))
const log = createLogger('test')
let n = 0

describe('blocks of a put', () => {
  it('are cut as submit cuts splits (at line ends, lines numbered), whatever the read size, each named by its bytes', async () => {
    const text = fc.array(fc.constantFrom('x', 'yy', 'é', '\n', '\n\n', 'a line with no end '), { minLength: 1, maxLength: 200 }).map((a) => a.join(''))
    await fc.assert(fc.asyncProperty(text, fc.integer({ min: 1, max: 120 }), fc.integer({ min: 1, max: 64 }), async (content, blockSize, readBytes) => {
      const name = `f-${n++}.txt`
      const path = join(dir, name)
      writeFileSync(path, content)
      const bytes = Buffer.from(content)
      const blocks = cutBlocks(path, bytes.byteLength, blockSize, readBytes)
      const splits = await planSplits([name], { cwd: dir, splitSize: blockSize })
      expect(blocks.map((b) => ({ offset: b.offset, length: b.bytes, firstLine: b.firstLine }))).toEqual(splits.map((s) => ({ offset: s.offset, length: s.length, firstLine: s.firstLine })))
      for (const b of blocks) expect(b.cid).toBe(blockCid(bytes.subarray(b.offset, b.offset + b.bytes)))
      // A put sends each block as soon as it is cut: a step yields exactly the blocks whose last byte it read.
      let read = 0
      const stepped: typeof blocks = []
      for (const done of blockCuts(path, bytes.byteLength, blockSize, readBytes)) {
        const before = read
        read = Math.min(bytes.byteLength, read + readBytes)
        for (const b of done) expect(b.offset + b.bytes).toBeGreaterThan(before)
        for (const b of done) expect(b.offset + b.bytes).toBeLessThanOrEqual(read)
        stepped.push(...done)
      }
      expect(read).toBe(bytes.byteLength)
      expect(stepped).toEqual(blocks)
    }), { numRuns: 300 })
  })

  it('an empty file has none', () => {
    const path = join(dir, 'empty')
    writeFileSync(path, '')
    expect(cutBlocks(path, 0, 10)).toEqual([])
  })
})

describe('placement', () => {
  const peers = Array.from({ length: 7 }, (_, i) => `peer-${i}`)
  const cids = Array.from({ length: 200 }, (_, i) => blockCid(Buffer.from(`block ${i}`)))

  it('moves only the blocks a departed peer ranked among: the others keep their holders', () => {
    for (const gone of peers) {
      const left = peers.filter((p) => p !== gone)
      for (const cid of cids) {
        const before = rankPeers(cid, peers).slice(0, 2)
        const after = rankPeers(cid, left).slice(0, 2)
        if (!before.includes(gone)) expect(after).toEqual(before)
        else expect(after).toContain(before.find((p) => p !== gone))
      }
    }
  })

  it('spreads blocks over the peers', () => {
    const firsts = new Map<string, number>()
    for (const cid of cids) {
      const first = rankPeers(cid, peers)[0]
      firsts.set(first, (firsts.get(first) ?? 0) + 1)
    }
    expect(firsts.size).toBe(peers.length)
    for (const count of firsts.values()) expect(count).toBeGreaterThan(10)
  })

  it('puts each block on distinct peers with room, and fails naming the shortfall when some cannot be placed', () => {
    const blocks = cids.slice(0, 10).map((cid) => ({ cid, bytes: 100 }))
    const ok = placeBlocks(blocks, [{ peer: 'a', free: 1000 }, { peer: 'b', free: 1000 }, { peer: 'c', free: 150 }], 2)
    if (!ok.ok) throw new Error(ok.shortfall)
    for (const h of ok.holders) expect(new Set(h).size).toBe(2)
    expect(ok.holders.filter((h) => h.includes('c')).length).toBeLessThanOrEqual(1)
    const short = placeBlocks(blocks, [{ peer: 'a', free: 1000 }, { peer: 'b', free: 500 }], 2)
    expect(short.ok).toBe(false)
    if (!short.ok) expect(short.shortfall).toMatch(/fits on 1 node, not 2: the dataset needs 2000 bytes with its replicas and the nodes have 1500 free/)
    const few = placeBlocks(blocks, [{ peer: 'a', free: 1000 }], 2)
    expect(few.ok).toBe(false)
    if (!few.ok) expect(few.shortfall).toBe('2 replicas asked, but the mesh has 1 node that stores blocks')
  })
})

describe('the block store', () => {
  function store (maxBytes?: number, sub = `store-${n++}`): BlockStore {
    const s = new BlockStore({ dir: join(dir, sub), maxBytes, log })
    s.start()
    return s
  }

  it('keeps a block only whole and matching its CID; a corrupt one is refused and leaves nothing', async () => {
    const s = store()
    const data = Buffer.from('hello blocks\n')
    const cid = blockCid(data)
    const w = s.begin(cid, data.byteLength)
    w.write([data.subarray(0, 5)])
    w.write([data.subarray(5)])
    await w.commit()
    expect(s.has(cid)).toBe(true)
    expect(readFileSync(s.pathOf(cid))).toEqual(data)

    const other = blockCid(Buffer.from('other'))
    const bad = s.begin(other, 5)
    bad.write([Buffer.from('OTHER')])
    await expect(bad.commit()).rejects.toThrow(CorruptBlockError)
    expect(s.has(other)).toBe(false)
    const short = s.begin(other, 5)
    short.write([Buffer.from('oth')])
    await expect(short.commit()).rejects.toThrow(/3 of 5 bytes/)
    expect(s.list()).toEqual([cid])
  })

  it('finds a byte flipped on disk when the block is read, and drops that copy', async () => {
    const s = store()
    const data = Buffer.from('x'.repeat(10_000))
    const cid = blockCid(data)
    const w = s.begin(cid, data.byteLength)
    w.write([data])
    await w.commit()
    await expect(s.verified(cid)).resolves.toBe(s.pathOf(cid))
    const flipped = Buffer.from(data)
    flipped[1234] = 0x79
    writeFileSync(s.pathOf(cid), flipped)
    await expect(s.verified(cid)).rejects.toThrow(CorruptBlockError)
    expect(s.has(cid)).toBe(false)
  })

  it('counts its blocks again after a restart, and refuses what would pass --store-max', async () => {
    const sub = `store-${n++}`
    const s = store(100, sub)
    const a = Buffer.from('a'.repeat(60))
    const w = s.begin(blockCid(a), 60)
    w.write([a])
    await w.commit()
    expect(s.free()).toBe(40)
    expect(() => s.begin(blockCid(Buffer.from('b'.repeat(41))), 41)).toThrow(StoreFullError)
    const again = store(100, sub)
    expect(again.list()).toEqual([blockCid(a)])
    expect(again.storedBytes()).toBe(60)
  })
})

describe('the catalog', () => {
  const manifest = (tag: string): Manifest => ({ files: [{ path: tag, size: 1, blocks: [{ cid: blockCid(Buffer.from(tag)), bytes: 1, offset: 0, firstLine: 1 }] }], replicas: 2, blockSize: 10 })
  const entry = (name: string, epoch: number, seq: number, tag?: string): CatalogEntry => {
    const m = tag === undefined ? undefined : manifest(tag)
    return { name, version: { epoch, seq }, at: 0, ...(m === undefined ? {} : { manifest: m, manifestCid: manifestCid(m) }) }
  }

  it('copies that hear the same entries in any order agree: the highest version wins, a removal included', () => {
    const entries = [entry('a', 1, 1, 'x'), entry('a', 1, 2, 'y'), entry('a', 2, 1), entry('b', 1, 3, 'z'), entry('b', 3, 1, 'w'), entry('c', 2, 2, 'v')]
    fc.assert(fc.property(fc.shuffledSubarray(entries, { minLength: entries.length }), fc.integer({ min: 1, max: 3 }), (order, batch) => {
      const c = new Catalog(join(dir, `cat-${n++}.json`), log)
      for (let i = 0; i < order.length; i += batch) c.merge(order.slice(i, i + batch), false)
      expect(c.all()).toEqual([entry('a', 2, 1), entry('b', 3, 1, 'w'), entry('c', 2, 2, 'v')])
      expect(c.live().map((e) => e.name)).toEqual(['b', 'c'])
      expect(c.nextVersion(2)).toEqual({ epoch: 2, seq: 3 })
    }), { numRuns: 100 })
  })

  it('drops an entry whose manifest is not the one its CID names, and reloads what it saved', async () => {
    const file = join(dir, `cat-${n++}.json`)
    const c = new Catalog(file, log)
    const forged = { ...entry('a', 1, 1, 'x'), manifest: manifest('evil') }
    expect(c.merge([forged])).toEqual([])
    c.merge([entry('b', 1, 1, 'y')])
    await c.flushed()
    const again = new Catalog(file, log)
    again.load()
    expect(again.all()).toEqual([entry('b', 1, 1, 'y')])
  })
})
