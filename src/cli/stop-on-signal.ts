import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'

/** A long-running command's way out: `stop` (also called by SIGINT and SIGTERM) and the promise of its end. */
export interface StopHandle {
  /** Runs the shutdown, once: later calls (a second Ctrl-C) change nothing. */
  stop: (why: string) => void
  /** Settles when the shutdown has run, whether it succeeded or not (a failure is logged). */
  stopped: Promise<void>
}

/**
 * Holds `join` and `cluster` until a signal or a fatal condition asks them to stop, then shuts down once.
 * `subject` names what stops in the log lines (`stopping cluster`, `cluster stop failed`); none for a node.
 */
export function stopOnSignal (shutdown: () => Promise<void>, log: Logger, subject?: string): StopHandle {
  let stopping = false
  let settle!: () => void
  const stopped = new Promise<void>((resolve) => { settle = resolve })
  const stop = (why: string): void => {
    if (stopping) return
    stopping = true
    log.info({ why }, subject === undefined ? 'stopping' : `stopping ${subject}`)
    shutdown().catch((err: unknown) => { log.warn({ err: errorMessage(err) }, subject === undefined ? 'stop failed' : `${subject} stop failed`) }).finally(settle)
  }
  process.once('SIGINT', () => { stop('SIGINT') })
  process.once('SIGTERM', () => { stop('SIGTERM') })
  return { stop, stopped }
}
