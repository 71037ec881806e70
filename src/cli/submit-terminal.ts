import type { SubmitJobEvent } from '../submitter/submit-job.js'
import { InvalidArgumentError } from '../util/errors.js'
import { ProgressView } from './progress-view.js'

/** What a submit run from the terminal is given: where its events go and what stops it. */
export interface TerminalHooks {
  signal: AbortSignal
  onEvent: (event: SubmitJobEvent) => void
}

/**
 * Runs a submit in front of a person: progress on stderr unless `quiet`, and
 * Ctrl-C or SIGTERM abort it (it then fails with "interrupted", exit 2).
 * The signals are caught only from the `planned` event on: before it nothing
 * is written or listening, so a signal may end the process at once; after it
 * the output folder and the client have to be cleaned up first.
 */
export async function withTerminal<T> (quiet: boolean, run: (hooks: TerminalHooks) => Promise<T>): Promise<T> {
  const abort = new AbortController()
  const onSignal = (): void => { abort.abort(new InvalidArgumentError('interrupted')) }
  let view: ProgressView | undefined
  // Once the job is over, a signal may end the process at once again, and the bar no longer redraws.
  const release = (): void => {
    view?.stop()
    view = undefined
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  const onEvent = (e: SubmitJobEvent): void => {
    if (e.type === 'closing') {
      release()
      return
    }
    if (e.type !== 'planned') {
      view?.onEvent(e)
      return
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    if (!quiet) view = new ProgressView(e.jobName, e.inputBytes)
  }
  try {
    return await run({ signal: abort.signal, onEvent })
  } finally {
    release()
  }
}
