import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { IntermediateStore } from '../../src/worker/intermediate-store.js'

describe('intermediate store', () => {
  it('an attempt that cleans up after its job ended leaves no empty job folder behind (the job is not listed any more)', () => {
    const store = new IntermediateStore(mkdtempSync(join(tmpdir(), 'mrp2p-store-')))
    // The end order removed the job; then an order that crossed it on the wire made a scratch folder again.
    store.removeJob('job-a')
    const work = store.workDir('job-a', 'map', 3, '1.0')
    writeFileSync(join(work, 'split'), 'bytes')
    expect(store.jobs()).toEqual(['job-a'])
    store.removeWorkDir(work)
    expect(store.jobs()).toEqual([])
  })

  it('keeps a job folder that still holds finished map output or another attempt', () => {
    const store = new IntermediateStore(mkdtempSync(join(tmpdir(), 'mrp2p-store-')))
    const done = store.workDir('job-b', 'map', 0, '1.0')
    const [run] = store.runPaths(done, 1)
    writeFileSync(run, 'run')
    expect(store.commitMapOutput(done, { jobId: 'job-b', mapIndex: 0, attempt: '1.0', partitionBytes: [3] })).toBe(true)
    store.removeWorkDir(done)
    const other = store.workDir('job-b', 'reduce', 0, '1.0')
    const failed = store.workDir('job-b', 'map', 1, '1.0')
    store.removeWorkDir(failed)
    expect(store.jobs()).toEqual(['job-b'])
    expect(existsSync(other)).toBe(true)
    expect(store.runFile('job-b', 0, 0)).toEqual({ path: expect.stringContaining('map-0') as string, bytes: 3 })
  })
})
