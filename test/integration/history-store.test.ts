import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { HistoryStore } from '../../src/history/history-store.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { JobRecordSchema, type JobRecord } from '../../src/protocol/history-messages.js'
import { createLogger } from '../../src/util/logger.js'
import { REPO_ROOT } from '../support/run-cli.js'

const log = createLogger('test')
const PEER = '12D3KooWCoordinatorAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

function record (jobId: string, submittedAt: number, patch: Partial<JobRecord> = {}): JobRecord {
  return JobRecordSchema.parse({
    jobId,
    jobName: 'wc',
    submitter: PEER,
    inputs: { count: 1, bytes: 10 },
    maps: 1,
    reduces: 1,
    params: {},
    options: {},
    maxAttempts: 4,
    submittedAt,
    state: 'running',
    coordinator: PEER,
    epoch: 1,
    updatedAt: submittedAt,
    generation: 0,
    progress: { maps: { done: 0, total: 1 }, reduces: { done: 0, total: 1 }, running: 0, failedAttempts: 0, phase: 'map' },
    counters: { mapRecordsIn: 0, mapBytesIn: 0, mapRecordsOut: 0, mapBytesOut: 0, reduceRecordsIn: 0, reduceRecordsOut: 0, reduceBytesOut: 0, shuffleRawBytes: 0, shuffleBytes: 0 },
    tasks: [],
    attemptsOmitted: 0,
    ...patch
  })
}

describe('history store', () => {
  it('keeps the newer version, persists it, and reloads it after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mrp2p-history-'))
    const store = new HistoryStore({ dir, log })
    await store.start()
    const t = Date.now()
    expect(store.put(record('a', t))).toBe(true)
    expect(store.put(record('a', t, { state: 'succeeded', updatedAt: t + 5, endedAt: t + 5 }))).toBe(true)
    // A running version that arrives late (a slow push) does not undo the end.
    expect(store.put(record('a', t, { updatedAt: t + 9 }))).toBe(false)
    await store.stop()
    const again = new HistoryStore({ dir, log })
    await again.start()
    expect(again.get('a')?.state).toBe('succeeded')
    // An ended record is read from its file (only summaries stay in memory): the same either way.
    expect(again.get('a')).toEqual(store.get('a'))
    expect(again.get('missing')).toBeUndefined()
    expect(again.matching('')).toEqual(['a'])
  })

  it('drops the oldest past --history-jobs and ended ones past --history-days, ended before running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mrp2p-history-'))
    let now = 10 * 86_400_000
    const store = new HistoryStore({ dir, log, maxJobs: 3, maxAgeMs: 86_400_000, now: () => now })
    await store.start()
    store.put(record('run-old', 100)) // running: kept over older ended ones
    for (let i = 0; i < 4; i++) store.put(record(`done-${i}`, 200 + i, { state: 'succeeded', endedAt: now - 1_000 + i, updatedAt: now }))
    expect(store.list().map((j) => j.jobId)).toEqual(['done-3', 'done-2', 'run-old'])
    now += 2 * 86_400_000
    store.put(record('fresh', now, { state: 'failed', endedAt: now, updatedAt: now }))
    expect(store.list().map((j) => j.jobId)).toEqual(['fresh', 'run-old'])
    await store.flushed()
    expect(readdirSync(dir).sort()).toEqual(['fresh.json', 'run-old.json'])
    // A record already too old is not taken at all.
    expect(store.put(record('ancient', 1, { state: 'succeeded', endedAt: 1, updatedAt: 1 }))).toBe(false)
  })

  it('sets aside a file that does not parse and removes a half-written temp file, and still starts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mrp2p-history-'))
    writeFileSync(join(dir, 'good.json'), JSON.stringify(record('good', 1)))
    writeFileSync(join(dir, 'torn.json'), '{"jobId":"torn","jobN')
    writeFileSync(join(dir, 'good.json.123.abc.tmp'), '{')
    const store = new HistoryStore({ dir, log })
    await store.start()
    expect(store.list().map((j) => j.jobId)).toEqual(['good'])
    expect(readdirSync(dir).sort()).toEqual(['good.json', 'torn.json.unreadable'])
  })

  it('stays readable when its process is SIGKILLed in the middle of writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mrp2p-history-kill-'))
    const storeModule = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'history', 'history-store.js')).href
    const loggerModule = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'util', 'logger.js')).href
    // A real process writing records as fast as it can, with large task lists so each write takes a while.
    const script = `
      const { HistoryStore } = await import(${JSON.stringify(storeModule)})
      const { createLogger } = await import(${JSON.stringify(loggerModule)})
      const base = JSON.parse(process.argv[1])
      const store = new HistoryStore({ dir: process.argv[2], log: createLogger('kill-test'), maxJobs: 20 })
      await store.start()
      for (let i = 0; ; i++) {
        const tasks = Array.from({ length: 3000 }, (_, t) => ({ kind: 'map', index: t, attempts: [{ epoch: 1, attempt: 1, node: base.submitter, startedAt: i, outcome: 'running' }] }))
        store.put({ ...base, jobId: 'job-' + (i % 30), submittedAt: i, updatedAt: i, tasks })
        await store.flushed()
        if (i % 10 === 0) process.stdout.write('w' + i + '\\n')
      }
    `
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(record('x', 0)), dir], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
      const writesBefore = 3 + round * 7
      await waitFor(() => (out.match(/^w\d+$/gm)?.length ?? 0) >= writesBefore, { timeoutMs: 30_000, intervalMs: 5, description: `${writesBefore} batches of writes` })
      const exited = new Promise((resolve) => child.once('exit', resolve))
      // Killed at a moment of its own, not at the line it just printed (the writes are what it is doing then).
      await new Promise((resolve) => setTimeout(resolve, (round * 7) % 23))
      child.kill('SIGKILL')
      await exited
      const store = new HistoryStore({ dir, log, maxJobs: 20 })
      await store.start()
      // Every record that is there parses in full; nothing was set aside as torn.
      expect(readdirSync(dir).filter((f) => f.endsWith('.unreadable'))).toEqual([])
      expect(store.size).toBeGreaterThan(0)
      expect(store.size).toBeLessThanOrEqual(20)
      for (const f of readdirSync(dir)) {
        expect(f).toMatch(/^job-\d+\.json$/)
        expect(JobRecordSchema.safeParse(JSON.parse(readFileSync(join(dir, f), 'utf8'))).success).toBe(true)
      }
      await store.stop()
    }
    expect(existsSync(dir)).toBe(true)
  }, 120_000)
})
