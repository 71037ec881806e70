/**
 * What a job's own code writes while its task runs (`console.*`, `process.stdout` / `process.stderr`), taken
 * inside the runner and sent to the node in chunks: the attempt's log (docs/observability.md). Runs in the
 * task thread or sandboxed process, never in the node itself.
 */
export interface OutputCapture {
  /** Sends what is pending now: before the task's reply, so that the log is whole when the result comes. */
  flush: () => void
  /** Puts the streams back as they were. */
  stop: () => void
}

/** Pending text past this is cut from the front (the tail of a log says most): the node keeps the last 1 MiB anyway. */
const MAX_PENDING_BYTES = 1024 * 1024
/** A chunk goes out at this size even while the job's code runs on without yielding. */
const CHUNK_BYTES = 64 * 1024
const FLUSH_MS = 200

type Write = typeof process.stdout.write

export function captureOutput (send: (text: string, cutBytes: number) => void): OutputCapture {
  let pending: string[] = []
  let pendingBytes = 0
  let cut = 0
  const flush = (): void => {
    if (pendingBytes === 0 && cut === 0) return
    const text = pending.join('')
    pending = []
    pendingBytes = 0
    const c = cut
    cut = 0
    send(text, c)
  }
  const take = (chunk: unknown): void => {
    const text = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : String(chunk)
    pending.push(text)
    pendingBytes += text.length
    while (pendingBytes > MAX_PENDING_BYTES && pending.length > 1) {
      const dropped = pending.shift() ?? ''
      pendingBytes -= dropped.length
      cut += dropped.length
    }
    if (pendingBytes >= CHUNK_BYTES) flush()
  }
  const patch = (stream: NodeJS.WriteStream): Write => {
    const original = stream.write
    stream.write = function (chunk: unknown, encodingOrCb?: unknown, cb?: unknown): boolean {
      take(chunk)
      const done = typeof encodingOrCb === 'function' ? encodingOrCb : cb
      if (typeof done === 'function') queueMicrotask(() => { (done as (err?: Error | null) => void)(null) })
      return true
    } as Write
    return original
  }
  const out = patch(process.stdout)
  const err = patch(process.stderr)
  const timer = setInterval(flush, FLUSH_MS)
  timer.unref()
  return {
    flush,
    stop: () => {
      clearInterval(timer)
      process.stdout.write = out
      process.stderr.write = err
    }
  }
}
