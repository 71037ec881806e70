import { writeProbe, type Probe } from '../protocol/local-read-probe.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'

/**
 * This node's probe (protocol/local-read-probe.ts), written when first needed and removed when the node stops: what
 * proves this node's host and user to a submitter (inputs read in place) and to a mapper (runs linked in place).
 */
export class NodeProbe {
  private probe: Probe | undefined
  /** Set when it could not be written, or after stop(): no probe from now on. */
  private off = false

  constructor (private readonly log: Logger) {}

  /** The probe; undefined when it cannot be written, and then nothing is read in place (said once). */
  get (): Probe | undefined {
    if (this.probe !== undefined || this.off) return this.probe
    try {
      this.probe = writeProbe()
    } catch (err) {
      this.off = true
      this.log.warn({ err: errorMessage(err) }, 'cannot write the local-read probe: inputs and map outputs are fetched')
    }
    return this.probe
  }

  /** Deletes the probe. */
  stop (): void {
    this.off = true
    this.probe?.remove()
    this.probe = undefined
  }
}
