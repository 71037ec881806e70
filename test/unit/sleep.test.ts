import { afterAll, describe, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import { sleep } from '../../src/util/sleep.js'
import { trackTimers } from '../support/live-timers.js'

const tracked = trackTimers()
afterAll(() => { tracked.disable() })
// waitFor sleeps through util/sleep too: count only this file's own sleeps.
const sleeps = (): number => tracked.stacks().filter((s) => s.includes('util/sleep.ts') && !s.includes('wait-for.ts')).length
// Async hooks report a timer's end a moment after it fired or was cleared.
const noSleepLeft = async (): Promise<void> => { await waitFor(() => sleeps() === 0, { timeoutMs: 2_000, intervalMs: 5, description: 'no sleep timer left' }) }

describe('sleep', () => {
  it('waits its time', async () => {
    const started = performance.now()
    await sleep(30)
    expect(performance.now() - started).toBeGreaterThanOrEqual(25)
    await noSleepLeft()
  })

  it('rejects with the signal\'s reason as soon as it aborts, and leaves no timer behind', async () => {
    const controller = new AbortController()
    const sleeping = sleep(60_000, { signal: controller.signal })
    expect(sleeps()).toBe(1)
    const reason = new Error('stopped')
    controller.abort(reason)
    await expect(sleeping).rejects.toBe(reason)
    await noSleepLeft()
  })

  it('rejects at once on a signal already aborted, without setting a timer', async () => {
    const sleeping = sleep(60_000, { signal: AbortSignal.abort(new Error('gone')) })
    expect(sleeps()).toBe(0)
    await expect(sleeping).rejects.toThrow('gone')
  })
})
