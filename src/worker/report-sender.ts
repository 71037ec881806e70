import type { Startable } from '@libp2p/interface'
import { JOB_PROTOCOLS, OkResponse } from '../protocol/job-messages.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { sleep } from '../util/sleep.js'
import type { AttemptReport } from './attempt.js'
import type { CoordinatorRef, WorkerRpc } from './worker-components.js'

/** Tries of one report; the back-off between them grows by REPORT_BACKOFF_MS each time. */
const REPORT_TRIES = 5
const REPORT_BACKOFF_MS = 500

/**
 * Sends attempt reports to the coordinator, retrying a few times; a report lost for good is no loss of work,
 * since a new coordinator rebuilds finished maps from inventories and runs the rest again. `stop()` ends
 * every retry at once: a stopped worker reports nothing.
 */
export class ReportSender implements Startable {
  private controller = new AbortController()

  constructor (private readonly rpc: WorkerRpc, private readonly coordinator: () => CoordinatorRef | undefined, private readonly log: Logger) {}

  start (): void {
    if (this.controller.signal.aborted) this.controller = new AbortController()
  }

  stop (): void {
    this.controller.abort()
  }

  /** Reports to the coordinator that gave the order, else to whoever leads now. */
  async send (report: AttemptReport, dispatcher: string): Promise<void> {
    const { signal } = this.controller
    if (signal.aborted) return
    for (let tries = 0; tries < REPORT_TRIES; tries++) {
      try {
        if (tries > 0) await sleep(REPORT_BACKOFF_MS * tries, { signal })
      } catch {
        return
      }
      const target = tries === 0 ? dispatcher : (this.coordinator()?.peer ?? dispatcher)
      try {
        await this.rpc.call(target, JOB_PROTOCOLS.report, report, OkResponse, { signal })
        return
      } catch (err) {
        if (signal.aborted) return
        this.log.debug({ target, err: errorMessage(err) }, 'report failed')
      }
    }
    this.log.warn({ job: report.jobId, task: `${report.kind}-${report.index}` }, 'could not report a finished attempt')
  }
}
