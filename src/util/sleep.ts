/** The reason a {@link sleep} rejects with when its signal fires: the signal's own reason, as `AbortSignal.throwIfAborted` gives it. */
function abortReason (signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

/**
 * Waits `ms`, or rejects as soon as `signal` aborts: every retry loop and
 * back-off in mrp2p sleeps through this, so that after a service's `stop()`
 * no timer of it is left to fire. The timer keeps the process alive, as any
 * pending work should: a loop that outlives its service shows up as a process
 * that does not exit (and in the lifecycle test), not as work silently dropped.
 */
export async function sleep (ms: number, options: { signal?: AbortSignal } = {}): Promise<void> {
  const { signal } = options
  if (signal?.aborted === true) throw abortReason(signal)
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(abortReason(signal as AbortSignal))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, Math.max(0, ms))
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
