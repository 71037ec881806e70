import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EpochFence } from '../../src/worker/epoch-fence.js'

/** What a worker does with an order from the coordinator it follows: refuse a stale epoch, else raise the fence to it. */
function admit (f: EpochFence, epoch: number): boolean {
  if (f.isStale(epoch)) return false
  f.raise(epoch)
  return true
}

describe('EpochFence', () => {
  it('admits the highest epoch seen and newer, refuses older ones and counts them', () => {
    const f = new EpochFence(mkdtempSync(join(tmpdir(), 'mrp2p-fence-')))
    expect(admit(f, 3)).toBe(true)
    expect(admit(f, 3)).toBe(true)
    expect(admit(f, 2)).toBe(false)
    expect(admit(f, 4)).toBe(true)
    expect(admit(f, 3)).toBe(false)
    expect(f.refusals).toBe(2)
    expect(f.value).toBe(4)
  })

  it('raise moves the fence up without an order, never down', () => {
    const f = new EpochFence(mkdtempSync(join(tmpdir(), 'mrp2p-fence-')))
    f.raise(7)
    f.raise(5)
    expect(f.value).toBe(7)
    expect(admit(f, 6)).toBe(false)
    expect(admit(f, 7)).toBe(true)
  })

  it('keeps the fence across a restart, and starts from 0 on a missing or garbled file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mrp2p-fence-'))
    new EpochFence(dir).raise(9)
    expect(admit(new EpochFence(dir), 8)).toBe(false)
    writeFileSync(join(dir, 'worker-epoch.json'), '{"highest": -1')
    expect(new EpochFence(dir).value).toBe(0)
    expect(new EpochFence(mkdtempSync(join(tmpdir(), 'mrp2p-fence-'))).value).toBe(0)
  })
})
