import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { BlockArena, roomAfter, withRoom } from '../../src/mapreduce/block-arena.js'
import type { Job } from '../../src/mapreduce/job-api.js'
import { runReduceTask } from '../../src/mapreduce/reduce-task.js'
import { RUN_BLOCK } from '../../src/mapreduce/run-blocks.js'
import { RunWriter } from '../../src/mapreduce/run-file.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-reduce-arena-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })
let n = 0

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

describe('a reduce that copies records as bytes (no reduce function), through one arena', () => {
  // Values past a block (RUN_BLOCK) are read into buffers of their own, outside the arena; lines past the part's
  // chunk are written through one of its own: both must come out the same as the rest.
  const value = fc.oneof(
    { weight: 20, arbitrary: fc.string({ unit: fc.constantFrom('a', 'é', ' ', '日'), maxLength: 40 }) },
    { weight: 1, arbitrary: fc.integer({ min: RUN_BLOCK, max: 9 * RUN_BLOCK }).map((k) => 'v'.repeat(k)) }
  )
  const record = fc.tuple(fc.string({ unit: fc.constantFrom('a', 'b', 'é', 'z'), maxLength: 4 }), value)

  it('writes every record of every run, in key byte order and run order for equal keys, compressed or not', () => {
    fc.assert(fc.property(fc.array(fc.array(record, { maxLength: 40 }), { minLength: 1, maxLength: 5 }), fc.boolean(), (runs, compress) => {
      const case_ = n++
      const inputs = runs.map((records, i) => {
        const path = join(dir, `run-${case_}-${i}`)
        const writer = RunWriter.create(path, { compress })
        for (const [k, v] of [...records].sort((a, b) => byBytes(a[0], b[0]))) writer.add(k, v)
        writer.close()
        return path
      })
      const outputPath = join(dir, `part-${case_}`)
      const job: Job = { keyValueSeparator: ' ' }
      runReduceTask({ job, jobName: 'test', partition: 0, reduces: 1, params: {}, inputs, outputPath })
      const want = runs.flatMap((records, i) => [...records].sort((a, b) => byBytes(a[0], b[0])).map(([k, v], j) => ({ k, v, i, j })))
        .sort((a, b) => byBytes(a.k, b.k) || a.i - b.i || a.j - b.j)
        .map(({ k, v }) => `${k} ${v}\n`).join('')
      expect(readFileSync(outputPath, 'utf8')).toBe(want)
    }), { numRuns: 150 })
  })

  it('lets a map write past its split only into room made for it, never past a view of other memory', () => {
    const split = withRoom(1000, 64)
    const room = roomAfter(split, 64)
    expect(room?.at).toBe(1000)
    expect(room?.buffer.length).toBe(64)
    expect(roomAfter(split, 65)).toBeUndefined()
    // A view of the first kilobyte of a larger buffer has bytes after it, but they are someone else's.
    expect(roomAfter(Buffer.allocUnsafeSlow(1 << 20).subarray(0, 1000), 64)).toBeUndefined()
    expect(roomAfter(Buffer.from('a short split'), 1)).toBeUndefined()
  })

  it('hands out its bytes in order, then buffers of their own', () => {
    const arena = new BlockArena(10)
    const first = arena.take(6)
    const second = arena.take(6)
    expect([first.at, first.buffer.length, first.buffer.buffer === arena.whole.buffer]).toEqual([0, 6, true])
    expect([second.at, second.buffer.length, second.buffer.buffer === arena.whole.buffer]).toEqual([-1, 6, false])
  })
})
