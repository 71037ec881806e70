import { afterEach, describe, expect, it, vi } from 'vitest'
import { ProgressView } from '../../src/cli/progress-view.js'
import type { JobProgress } from '../../src/coordinator/scheduler-types.js'

const progress = (mapsDone: number, phase: JobProgress['phase'] = 'map'): JobProgress => ({
  maps: { done: mapsDone, total: 10 }, reduces: { done: 0, total: 2 }, running: 2, failedAttempts: 0, phase
})

/** What is written to stderr from now on, one entry per write. */
function captureStderr (): string[] {
  const lines: string[] = []
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { lines.push(String(chunk)); return true })
  return lines
}

describe('ProgressView (piped)', () => {
  afterEach(() => { vi.restoreAllMocks() })

  it('reports the rate of input mapped, even when no input passed through the submitter (--shared)', () => {
    const lines = captureStderr()
    const view = new ProgressView('wc', 100e6, false)
    // Half the maps done, and nothing moved through the submitter: 50 MB since the view started, far above 0.
    view.onEvent({ type: 'progress', progress: progress(5), parts: 2, bytesIn: 0, bytesOut: 0 })
    expect(lines).toHaveLength(1)
    const m = /wc: map maps 5\/10 reduces 0\/2 running 2 failed 0 ([\d.]+) MB\/s/.exec(lines[0])
    expect(m, lines[0]).not.toBeNull()
    const mbps = Number(m?.[1])
    expect(mbps).toBeGreaterThan(10)
  })
})

describe('ProgressView across a coordinator change', () => {
  afterEach(() => { vi.restoreAllMocks() })

  it('adds the counts of the coordinators before: a new one counts failed attempts and lost outputs from 0', () => {
    const lines = captureStderr()
    const view = new ProgressView('wc', 100e6, false)
    const lost: JobProgress = { ...progress(5), failedAttempts: 3, mapOutputs: { lostDown: 2, lostFetch: 1, kept: 1, copied: 4 } }
    view.onEvent({ type: 'progress', progress: lost, parts: 0, bytesIn: 0, bytesOut: 0 })
    view.onEvent({ type: 'coordinator', peer: 'new-coordinator', previous: 'old-coordinator', epoch: 3 })
    // The new coordinator's own count starts again: 1 failed attempt, 1 output lost to a node down.
    view.onEvent({ type: 'progress', progress: { ...progress(2, 'reduce'), failedAttempts: 1, mapOutputs: { lostDown: 1, lostFetch: 0, kept: 0, copied: 0 } }, parts: 0, bytesIn: 0, bytesOut: 0 })
    expect(lines.at(-1)).toMatch(/failed 4; map outputs lost 4 \(3 node down, 1 fetch failed\), kept by reducers 1, copied to a second node 4 /)
  })

  it('a calm job shows no map outputs before or after the change', () => {
    const lines = captureStderr()
    const view = new ProgressView('wc', 100e6, false)
    view.onEvent({ type: 'progress', progress: progress(5), parts: 0, bytesIn: 0, bytesOut: 0 })
    view.onEvent({ type: 'coordinator', peer: 'b', previous: 'a', epoch: 2 })
    view.onEvent({ type: 'progress', progress: progress(6, 'reduce'), parts: 0, bytesIn: 0, bytesOut: 0 })
    expect(lines.at(-1)).toMatch(/wc: reduce maps 6\/10 reduces 0\/2 running 2 failed 0 [\d.]+ MB\/s/)
    expect(lines.join('')).not.toContain('map outputs')
  })
})
