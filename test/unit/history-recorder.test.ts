import { describe, expect, it } from 'vitest'
import { HistoryRecorder } from '../../src/coordinator/history-recorder.js'
import type { JobSpec } from '../../src/coordinator/scheduler-types.js'
import { MAX_RECORDED_ATTEMPTS, newerRecord } from '../../src/protocol/history-messages.js'
import { UNCHECKED_SEAL } from '../support/sealed-job.js'

const SELF = '12D3KooWCoordinatorAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const W1 = '12D3KooWWorker1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const W2 = '12D3KooWWorker2AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

function spec (maps = 2, reduces = 1): JobSpec {
  return {
    jobId: 'wc-abc',
    jobName: 'wc',
    codeHash: 'a'.repeat(64),
    splits: Array.from({ length: maps }, (_, i) => ({ document: `doc-${i % 2}`, index: i, offset: 0, length: 100, firstLine: 1 })),
    reduces,
    params: { k: 'v' },
    submitter: { peer: '12D3KooWSubmitterAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', addrs: [] },
    maxAttempts: 4,
    seal: UNCHECKED_SEAL
  }
}

const map = (index: number, attempt: number, peer = W1) => ({ type: 'dispatch' as const, peer, task: { kind: 'map' as const, jobId: 'wc-abc', index, attempt, split: spec().splits[0] } })
const ref = (index: number, kind: 'map' | 'reduce' = 'map') => ({ jobId: 'wc-abc', kind, index })

describe('history recorder', () => {
  it('records a job from dispatch to success, counting each task\'s first success once', () => {
    const r = new HistoryRecorder(SELF, 3)
    r.begin(spec(), 1_000)
    r.effect(map(0, 1), 1_010)
    r.effect(map(0, 2, W2), 1_020) // a backup
    r.reported(ref(0), 1, true, 1_100, { bytes: 50, counters: { recordsIn: 10, bytesIn: 100, recordsOut: 20, bytesOut: 80 } })
    r.effect({ type: 'abandon', peer: W2, ref: ref(0), attempt: 2 }, 1_101)
    r.reported(ref(0), 2, true, 1_150, { bytes: 50, counters: { recordsIn: 10, bytesIn: 100, recordsOut: 20, bytesOut: 80 } })
    r.effect({ type: 'job-succeeded', jobId: 'wc-abc' }, 1_200)
    const rec = r.get('wc-abc')
    expect(rec?.state).toBe('succeeded')
    expect(rec?.startedAt).toBe(1_010)
    expect(rec?.endedAt).toBe(1_200)
    expect(rec?.inputs).toEqual({ count: 2, bytes: 200 })
    expect(rec?.tasks[0].attempts.map((a) => [a.epoch, a.attempt, a.node, a.outcome])).toEqual([[3, 1, W1, 'succeeded'], [3, 2, W2, 'backup-lost']])
    expect(rec?.counters.mapRecordsIn).toBe(10)
    expect(rec?.counters.mapBytesOut).toBe(80)
  })

  it('keeps the first line of a failure, marks a lost worker\'s attempts and a cancelled job\'s running ones', () => {
    const r = new HistoryRecorder(SELF, 1)
    r.begin(spec(3), 0)
    r.effect(map(0, 1), 1)
    r.effect(map(1, 1, W2), 1)
    r.effect(map(2, 1), 1)
    r.reported(ref(0), 1, false, 5, { error: 'boom at line 3\n    at map (job.ts:3)' })
    r.workerLost(W2, 6)
    r.cancelled('wc-abc', 7, { message: 'cancelled by someone', task: 'job' }, 'cancelled')
    const rec = r.get('wc-abc')
    expect(rec?.state).toBe('cancelled')
    expect(rec?.failure?.message).toBe('cancelled by someone')
    expect(rec?.tasks.map((t) => t.attempts[0].outcome)).toEqual(['failed', 'lost', 'killed'])
    expect(rec?.tasks[0].attempts[0].error).toBe('boom at line 3')
    expect(rec?.tasks[1].attempts[0].error).toContain(W2)
    // An attempt ends once: its report after the cancel changes nothing.
    r.reported(ref(2), 1, true, 8, {})
    expect(r.get('wc-abc')?.tasks[2].attempts[0].outcome).toBe('killed')
  })

  it('takes over a running job\'s record from an earlier epoch, and restarts an ended one as a new generation', () => {
    const first = new HistoryRecorder(SELF, 1)
    first.begin(spec(), 0)
    first.effect(map(0, 1), 1)
    first.reported(ref(0), 1, true, 2, { counters: { recordsIn: 5 } })
    first.effect(map(1, 1), 3)
    const pushed = first.takeChanged()[0]
    expect(first.takeChanged()).toEqual([])

    const next = new HistoryRecorder(W2, 2)
    next.begin(spec(), 10, pushed)
    const rec = next.get('wc-abc')
    expect(rec?.coordinator).toBe(W2)
    expect(rec?.generation).toBe(0)
    expect(rec?.tasks[1].attempts[0].outcome).toBe('lost')
    expect(rec?.counters.mapRecordsIn).toBe(5)
    // The succeeded map is not counted again when the new epoch runs it once more.
    next.effect(map(0, 1), 11)
    next.reported(ref(0), 1, true, 12, { counters: { recordsIn: 5 } })
    expect(next.get('wc-abc')?.counters.mapRecordsIn).toBe(5)
    expect(next.get('wc-abc')?.tasks[0].attempts.map((a) => `${a.epoch}.${a.attempt}`)).toEqual(['1.1', '2.1'])

    next.cancelled('wc-abc', 20, { message: 'the submitter went away', task: 'job' }, 'failed')
    const ended = next.takeChanged()[0]
    const again = new HistoryRecorder(W2, 2)
    again.begin(spec(), 30, ended, true)
    const restarted = again.get('wc-abc')
    expect(restarted?.generation).toBe(1)
    expect(restarted?.state).toBe('running')
    expect(restarted?.tasks).toEqual([])
    expect(restarted !== undefined && newerRecord(restarted, ended)).toBe(true)
  })

  it('a coordinator that takes over adds what the ones before it counted: its scheduler counts failed attempts and lost outputs from 0', () => {
    const first = new HistoryRecorder(SELF, 1)
    first.begin(spec(), 0)
    const progress = (failedAttempts: number, lostDown: number, copied: number) => ({
      type: 'progress' as const,
      jobId: 'wc-abc',
      progress: { maps: { done: 1, total: 2 }, reduces: { done: 0, total: 1 }, running: 1, failedAttempts, phase: 'map' as const, mapOutputs: { lostDown, lostFetch: 0, kept: 0, copied } }
    })
    first.effect(progress(3, 2, 1), 10)
    const second = new HistoryRecorder(W1, 2)
    second.begin(spec(), 20, first.get('wc-abc'))
    second.effect(progress(1, 1, 0), 30)
    expect(second.get('wc-abc')?.progress).toMatchObject({ failedAttempts: 4, mapOutputs: { lostDown: 3, lostFetch: 0, kept: 0, copied: 1 } })
    // A third coordinator adds both.
    const third = new HistoryRecorder(W2, 3)
    third.begin(spec(), 40, second.get('wc-abc'))
    third.effect({ type: 'progress', jobId: 'wc-abc', progress: { maps: { done: 2, total: 2 }, reduces: { done: 0, total: 1 }, running: 1, failedAttempts: 0, phase: 'reduce' } }, 50)
    expect(third.get('wc-abc')?.progress).toMatchObject({ failedAttempts: 4, mapOutputs: { lostDown: 3, copied: 1 }, phase: 'reduce' })
    // An ended job run again (a new generation) starts from nothing.
    const ended = { ...(third.get('wc-abc') as NonNullable<ReturnType<HistoryRecorder['get']>>), state: 'failed' as const }
    const again = new HistoryRecorder(SELF, 4)
    again.begin(spec(), 60, ended, true)
    again.effect({ type: 'progress', jobId: 'wc-abc', progress: { maps: { done: 0, total: 2 }, reduces: { done: 0, total: 1 }, running: 1, failedAttempts: 0, phase: 'map' } }, 70)
    expect(again.get('wc-abc')?.progress.failedAttempts).toBe(0)
    expect(again.get('wc-abc')?.progress.mapOutputs).toBeUndefined()
  })

  it('keeps at most MAX_RECORDED_ATTEMPTS attempts and counts the rest', () => {
    const r = new HistoryRecorder(SELF, 1)
    r.begin(spec(1), 0)
    for (let a = 1; a <= MAX_RECORDED_ATTEMPTS + 5; a++) r.effect(map(0, a), a)
    const rec = r.get('wc-abc')
    expect(rec?.tasks[0].attempts.length).toBe(MAX_RECORDED_ATTEMPTS)
    expect(rec?.attemptsOmitted).toBe(5)
  })

  it('orders versions: an ended record beats a later running one; a new generation beats both', () => {
    const running = { generation: 0, state: 'running' as const, updatedAt: 100 }
    const ended = { generation: 0, state: 'succeeded' as const, updatedAt: 50 }
    expect(newerRecord(ended, running)).toBe(true)
    expect(newerRecord(running, ended)).toBe(false)
    expect(newerRecord({ generation: 1, state: 'running', updatedAt: 1 }, ended)).toBe(true)
    expect(newerRecord(ended, ended)).toBe(false)
  })
})

describe('orphaned records', () => {
  it('end a running record as failed, its running attempts lost, as a newer version', async () => {
    const { orphanedRecord } = await import('../../src/coordinator/history-recorder.js')
    const r = new HistoryRecorder(SELF, 1)
    r.begin(spec(2), 0)
    r.effect(map(0, 1), 1)
    r.effect(map(1, 1), 1)
    r.reported(ref(0), 1, true, 2, {})
    const held = r.takeChanged()[0]
    const ended = orphanedRecord(held, W2, 2, 1)
    expect(ended.state).toBe('failed')
    expect(ended.failure?.task).toBe('job')
    expect(ended.tasks.map((t) => t.attempts[0].outcome)).toEqual(['succeeded', 'lost'])
    expect(ended.epoch).toBe(2)
    expect(newerRecord(ended, held)).toBe(true)
    expect(held.state).toBe('running')
  })
})

describe('a map done by inventory before its report', () => {
  it('records the attempt that made the output as succeeded when its report comes after the abandon', () => {
    const r = new HistoryRecorder(SELF, 1)
    r.begin(spec(1), 0)
    r.effect(map(0, 1), 1)
    // The worker re-registered with the output before its report: the scheduler took it and abandoned the attempt.
    r.effect({ type: 'abandon', peer: W1, ref: ref(0), attempt: 1 }, 2)
    expect(r.get('wc-abc')?.tasks[0].attempts[0].outcome).toBe('killed')
    r.reported(ref(0), 1, true, 3, { counters: { recordsIn: 7 } })
    expect(r.get('wc-abc')?.tasks[0].attempts[0].outcome).toBe('succeeded')
    expect(r.get('wc-abc')?.counters.mapRecordsIn).toBe(7)
  })
})
