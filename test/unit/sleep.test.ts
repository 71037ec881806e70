import { describe, expect, it } from 'vitest'
import { sleep } from '../../src/util/sleep.js'

function timers (): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
}

describe('sleep', () => {
  it('waits its time', async () => {
    const started = performance.now()
    await sleep(30)
    expect(performance.now() - started).toBeGreaterThanOrEqual(25)
  })

  it('rejects with the signal\'s reason as soon as it aborts, and leaves no timer behind', async () => {
    const before = timers()
    const controller = new AbortController()
    const sleeping = sleep(60_000, { signal: controller.signal })
    expect(timers()).toBe(before + 1)
    const reason = new Error('stopped')
    controller.abort(reason)
    await expect(sleeping).rejects.toBe(reason)
    expect(timers()).toBe(before)
  })

  it('rejects at once on a signal already aborted, without setting a timer', async () => {
    const before = timers()
    const sleeping = sleep(60_000, { signal: AbortSignal.abort(new Error('gone')) })
    expect(timers()).toBe(before)
    await expect(sleeping).rejects.toThrow('gone')
  })
})
