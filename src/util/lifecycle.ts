import type { Startable } from '@libp2p/interface'
import { errorMessage } from './errors.js'
import type { Logger } from './logger.js'

/**
 * The services of one process part (a node, its roles), started one after another in the order they are added
 * and stopped in the reverse order, each once. A part that fails to start stops what had already started before
 * the error goes on; a service whose stop fails is logged and the others still stop. This is the one list that
 * says what runs: after `stop()` none of it does.
 */
export class Lifecycle {
  private readonly started: Array<{ name: string, service: Startable }> = []

  constructor (private readonly log: Logger) {}

  /** Starts `service` now (beforeStart, start, afterStart) and keeps it for stop(); returns it for chaining. */
  async start<S extends Startable> (name: string, service: S): Promise<S> {
    try {
      await service.beforeStart?.()
      await service.start()
      await service.afterStart?.()
    } catch (err) {
      // What failed may have half-started: give it its stop too.
      this.started.push({ name, service })
      await this.stop()
      throw err
    }
    this.started.push({ name, service })
    return service
  }

  /** Stops every started service, last started first. */
  async stop (): Promise<void> {
    for (let entry = this.started.pop(); entry !== undefined; entry = this.started.pop()) {
      try {
        await entry.service.beforeStop?.()
        await entry.service.stop()
        await entry.service.afterStop?.()
      } catch (err) {
        this.log.debug({ service: entry.name, err: errorMessage(err) }, 'stop failed')
      }
    }
  }
}

/** An event listener as a service: added on start, removed on stop. */
export function listening<K extends string, E> (
  target: { addEventListener: (type: K, listener: (evt: E) => void) => void, removeEventListener: (type: K, listener: (evt: E) => void) => void },
  type: K,
  listener: (evt: E) => void
): Startable {
  return {
    start: () => { target.addEventListener(type, listener) },
    stop: () => { target.removeEventListener(type, listener) }
  }
}
