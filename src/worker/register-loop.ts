import { randomUUID } from 'node:crypto'
import type { Startable } from '@libp2p/interface'
import { JOB_PROTOCOLS, RegisterResponse, type RegisterRequest } from '../protocol/job-messages.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { sleep } from '../util/sleep.js'
import type { z } from 'zod'
import type { EpochFence } from './epoch-fence.js'
import type { IntermediateStore } from './intermediate-store.js'
import type { CoordinatorRef, WorkerRpc } from './worker-components.js'

/** Registering again now and then is how a coordinator that dropped us (an order it could not deliver) takes us back. */
const REREGISTER_MS = 2_000

export interface RegisterLoopInit {
  slots: number
  version: string
  /** How often it looks whether the coordinator changed (ms). */
  intervalMs: number
  /** Why this node runs no streaming commands, if it does not: the coordinator sends it none. */
  noExec: () => string | undefined
  /**
   * This node's host (host-id.ts), when it links map outputs in place with its neighbours there: the coordinator
   * compares the workers' to tell maps whether every reducer will (`--no-local-shuffle`: none said).
   */
  host?: string
  /** This node's memory, as the coordinator weighs raw runs against it. */
  memoryBytes?: number
}

/**
 * Registers this worker with each new coordinator (once per coordinator and epoch, and again every
 * REREGISTER_MS), with its slots and the finished map outputs it holds, and raises the epoch fence to the
 * epoch it answers with. Runs from `start()` until `stop()`, which ends a registration in flight too.
 */
export class RegisterLoop implements Startable {
  /** Changes at every start of the node: a restart the failure detector missed still reads as one. */
  private readonly incarnation = randomUUID()
  private registered: { coordinator: CoordinatorRef, at: number } | undefined
  private controller: AbortController | undefined
  private loop: Promise<void> | undefined

  constructor (
    private readonly rpc: WorkerRpc,
    private readonly coordinator: () => CoordinatorRef | undefined,
    private readonly store: IntermediateStore,
    private readonly fence: EpochFence,
    private readonly init: RegisterLoopInit,
    private readonly log: Logger
  ) {}

  start (): void {
    const controller = new AbortController()
    this.controller = controller
    this.loop = this.run(controller.signal)
  }

  async stop (): Promise<void> {
    this.controller?.abort()
    await this.loop
    this.controller = undefined
    this.loop = undefined
  }

  /** A new coordinator may not know us yet: register again on the next round. */
  forget (): void {
    this.registered = undefined
  }

  private async run (signal: AbortSignal): Promise<void> {
    for (;;) {
      try {
        await sleep(this.init.intervalMs, { signal })
      } catch {
        return
      }
      await this.registerIfNeeded(signal)
    }
  }

  private async registerIfNeeded (signal: AbortSignal): Promise<void> {
    const coord = this.coordinator()
    if (coord === undefined) return
    const same = this.registered !== undefined && this.registered.coordinator.peer === coord.peer && this.registered.coordinator.epoch === coord.epoch
    if (same && performance.now() - (this.registered?.at ?? 0) < REREGISTER_MS) return
    try {
      const outputs = this.store.inventory().map((m) => ({ jobId: m.jobId, mapIndex: m.mapIndex }))
      const request: z.output<typeof RegisterRequest> = { slots: this.init.slots, version: this.init.version, incarnation: this.incarnation, outputs, noExec: this.init.noExec(), host: this.init.host, memoryBytes: this.init.memoryBytes }
      const answer = await this.rpc.call(coord.peer, JOB_PROTOCOLS.register, request, RegisterResponse, { signal })
      // From now on this worker belongs to that epoch: orders of an older coordinator are refused even before
      // the new one has sent any.
      this.fence.raise(answer.epoch)
      if (!same) this.log.info({ coordinator: coord.peer, epoch: coord.epoch, outputs: outputs.length }, 'registered')
      this.registered = { coordinator: coord, at: performance.now() }
    } catch (err) {
      if (!signal.aborted) this.log.debug({ coordinator: coord.peer, err: errorMessage(err) }, 'register failed; will retry')
    }
  }
}
