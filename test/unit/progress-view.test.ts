import { afterEach, describe, expect, it, vi } from 'vitest'
import { ProgressView } from '../../src/cli/progress-view.js'
import type { JobProgress } from '../../src/coordinator/scheduler-types.js'

const progress = (mapsDone: number, phase: JobProgress['phase'] = 'map'): JobProgress => ({
  maps: { done: mapsDone, total: 10 }, reduces: { done: 0, total: 2 }, running: 2, failedAttempts: 0, phase
})

describe('ProgressView (piped)', () => {
  afterEach(() => { vi.restoreAllMocks() })

  it('reports the rate of input mapped, even when no input passed through the submitter (--shared)', () => {
    const lines: string[] = []
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { lines.push(String(chunk)); return true })
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
