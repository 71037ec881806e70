import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PutSends, type PutCopy } from '../../src/dataset/put-sends.js'
import type { BlockRef } from '../../src/protocol/dataset-messages.js'

const file = { path: '/data/f.txt', recorded: 'f.txt' }
const block = (i: number, bytes = 10): BlockRef => ({ cid: `cid-${i}`, bytes, offset: i * bytes, firstLine: 1 })

/** Sends that finish only when the test says so, recording what was in flight. */
function fakeMesh (held: ReadonlySet<string> = new Set()): { sent: PutCopy[], inFlight: () => number, most: () => number, finishOne: () => boolean, fail: Error | undefined, deps: ConstructorParameters<typeof PutSends>[0] } {
  const pending: Array<() => void> = []
  const failures: Array<(e: Error) => void> = []
  let flying = 0
  let most = 0
  const mesh = {
    sent: [] as PutCopy[],
    inFlight: () => flying,
    most: () => most,
    fail: undefined as Error | undefined,
    finishOne: () => {
      const done = pending.shift()
      const failing = failures.shift()
      if (done === undefined || failing === undefined) return false
      if (mesh.fail !== undefined) failing(mesh.fail)
      else done()
      return true
    },
    deps: {
      concurrency: 3,
      holds: async (to: string, cid: string) => held.has(`${to}/${cid}`),
      send: async (copy: PutCopy, signal: AbortSignal) => {
        flying++
        most = Math.max(most, flying)
        try {
          await new Promise<void>((resolve, reject) => {
            pending.push(resolve)
            failures.push(reject)
            signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
          })
          mesh.sent.push(copy)
        } finally {
          flying--
        }
      }
    }
  }
  return mesh
}

async function settle (): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
}

describe('the copies of a put', () => {
  it('are each sent once, never more at once than allowed, a held copy skipped and a block added twice sent once', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 8 }), fc.subarray(['a', 'b', 'c'], { minLength: 1 })), { minLength: 1, maxLength: 30 }), fc.subarray(['a/cid-1', 'b/cid-2', 'c/cid-3']), async (adds, heldList) => {
      const held = new Set(heldList)
      const mesh = fakeMesh(held)
      const progress: number[] = []
      const sends = new PutSends({ ...mesh.deps, onCopied: (done) => { progress.push(done) } }, new AbortController().signal, (_c, err) => err as Error)
      const owed = new Map<string, string[]>()
      for (const [i, holders] of adds) {
        sends.add(block(i), file, holders)
        if (!owed.has(`cid-${i}`)) owed.set(`cid-${i}`, holders)
        await settle()
        mesh.finishOne()
      }
      const finished = sends.done()
      while (mesh.finishOne() || mesh.inFlight() > 0) await settle()
      await finished
      const want = [...owed].flatMap(([cid, holders]) => holders.filter((h) => !held.has(`${h}/${cid}`)).map((h) => `${h}/${cid}`)).sort()
      expect(mesh.sent.map((c) => `${c.to}/${c.block.cid}`).sort()).toEqual(want)
      expect(mesh.most()).toBeLessThanOrEqual(3)
      expect(sends.sentBytes).toBe(want.length * 10)
      expect(sends.skippedBytes).toBe([...owed].flatMap(([cid, holders]) => holders.filter((h) => held.has(`${h}/${cid}`))).length * 10)
      expect(progress.at(-1)).toBe(adds.reduce((n, [, holders]) => n + holders.length * 10, 0))
    }), { numRuns: 100 })
  })

  it('stop at the first failure: done throws it, copies not yet begun are never sent, and adding more throws', async () => {
    const mesh = fakeMesh()
    const sends = new PutSends(mesh.deps, new AbortController().signal, (copy, err) => new Error(`${copy.block.cid} to ${copy.to}: ${(err as Error).message}`))
    for (let i = 0; i < 10; i++) sends.add(block(i), file, ['a', 'b'])
    await settle()
    expect(mesh.inFlight()).toBe(3)
    mesh.fail = new Error('holder refused')
    mesh.finishOne()
    await expect(sends.done()).rejects.toThrow('cid-0 to a: holder refused')
    await settle()
    expect(mesh.inFlight()).toBe(0)
    expect(mesh.sent).toEqual([])
    expect(() => { sends.add(block(11), file, ['a']) }).toThrow('cid-0 to a: holder refused')
  })

  it('stop when the put fails elsewhere (a file changed while it was cut)', async () => {
    const mesh = fakeMesh()
    const sends = new PutSends(mesh.deps, new AbortController().signal, (_c, err) => err as Error)
    for (let i = 0; i < 5; i++) sends.add(block(i), file, ['a'])
    await settle()
    expect(mesh.inFlight()).toBe(3)
    sends.abort(new Error('f.txt changed while it was being cut into blocks'))
    await expect(sends.done()).rejects.toThrow('f.txt changed')
    await settle()
    expect(mesh.inFlight()).toBe(0)
    expect(mesh.sent).toEqual([])
  })

  it('stop when the put is cancelled', async () => {
    const mesh = fakeMesh()
    const cancel = new AbortController()
    const sends = new PutSends(mesh.deps, cancel.signal, (_c, err) => err as Error)
    for (let i = 0; i < 5; i++) sends.add(block(i), file, ['a'])
    await settle()
    cancel.abort(new Error('cancelled by the user'))
    await expect(sends.done()).rejects.toThrow('cancelled by the user')
    await settle()
    expect(mesh.inFlight()).toBe(0)
    expect(mesh.sent).toEqual([])
  })
})
