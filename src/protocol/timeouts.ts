/**
 * A signal that aborts with a typed error after `ms`, or when the parent
 * aborts (with the parent's reason). `clear()` must be called when the guarded
 * step is over so that no timer outlives it.
 */
export interface Deadline {
  signal: AbortSignal
  clear: () => void
}

export function deadline (ms: number, makeError: () => Error, parent?: AbortSignal): Deadline {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort(makeError()) }, ms)
  const signal = parent === undefined ? controller.signal : AbortSignal.any([parent, controller.signal])
  return { signal, clear: () => { clearTimeout(timer) } }
}

/** The error to surface for a step that failed: the abort reason when the signal fired, else the error itself. */
export function abortReasonOr (signal: AbortSignal, err: unknown): unknown {
  if (signal.aborted && signal.reason !== undefined) return signal.reason
  return err
}
