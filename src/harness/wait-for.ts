import { errorMessage } from '../util/errors.js'
import { sleep } from '../util/sleep.js'

/** The condition did not hold before the deadline; says what was awaited and what was last seen. */
export class WaitTimeoutError extends Error {
  static readonly NAME = 'WaitTimeoutError'
  override readonly name = WaitTimeoutError.NAME
}

export interface WaitForOptions {
  timeoutMs: number
  /** Pause between polls; the condition itself may take longer. */
  intervalMs?: number
  /** Words for the error: "5 nodes agree on a coordinator". */
  description?: string
  signal?: AbortSignal
}

/**
 * Poll `condition` until it returns something other than undefined/false, and
 * return that. A thrown error counts as "not yet" (a node that is still
 * starting refuses connections) and is reported if the deadline passes.
 * This, never a bare sleep, is how tests wait for the cluster.
 */
export async function waitFor<T> (condition: () => T | undefined | false | Promise<T | undefined | false>, options: WaitForOptions): Promise<T> {
  const deadline = performance.now() + options.timeoutMs
  const interval = options.intervalMs ?? 100
  let last: unknown
  let lastError: unknown
  while (true) {
    options.signal?.throwIfAborted()
    try {
      const value = await condition()
      if (value !== undefined && value !== false) return value
      last = value
      lastError = undefined
    } catch (err) {
      lastError = err
    }
    if (performance.now() >= deadline) {
      const what = options.description ?? 'condition'
      const why = lastError !== undefined ? `last error: ${errorMessage(lastError)}` : `last value: ${String(last)}`
      throw new WaitTimeoutError(`timed out after ${options.timeoutMs} ms waiting for ${what} (${why})`)
    }
    await sleep(Math.min(interval, Math.max(0, deadline - performance.now())), { signal: options.signal })
  }
}
