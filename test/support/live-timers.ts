import { createHook } from 'node:async_hooks'

/**
 * Timers and immediates made while tracking is on, and not yet fired or cleared, each with the stack that made it
 * (its first frame is the code that called setTimeout, setInterval or setImmediate).
 * `process.getActiveResourcesInfo()` omits unref'd timers, and a retry loop that outlives its service sleeps on
 * exactly those; async hooks see every one.
 */
export interface LiveTimers {
  /** Stacks of the live timers, trimmed to frames outside node's internals. */
  stacks: () => string[]
  disable: () => void
}

export function trackTimers (): LiveTimers {
  const live = new Map<number, string>()
  const hook = createHook({
    init (id, type) {
      if (type !== 'Timeout' && type !== 'Immediate') return
      const frames = (new Error().stack ?? '').split('\n').slice(2).filter((l) => !l.includes('node:') && !l.includes('live-timers'))
      live.set(id, frames.slice(0, 8).map((l) => l.trim()).join(' < '))
    },
    destroy (id) { live.delete(id) }
  })
  hook.enable()
  return {
    stacks: () => [...live.values()],
    disable: () => { hook.disable() }
  }
}
