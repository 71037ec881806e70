import type { HandlerRegistrar, StreamOpener } from '../protocol/reqresp.js'
import type { Rpc } from '../protocol/rpc.js'
import type { ComponentLogger } from '../util/logger.js'

/** The coordinator a worker follows: the lease holder, and the epoch of its lease. */
export interface CoordinatorRef { peer: string, epoch: number }

/** The part of {@link Rpc} a worker uses: serving orders, calling the coordinator. */
export type WorkerRpc = Pick<Rpc, 'serve' | 'call'>

/** What a worker needs from the node: the network and who leads now. */
export interface WorkerServiceComponents {
  self: string
  network: StreamOpener & HandlerRegistrar
  rpc: WorkerRpc
  dataDir: string
  coordinator: () => CoordinatorRef | undefined
  /** The worker's parts each log under their own component (worker, task-pool, task-runner or task-sandbox). */
  logger: ComponentLogger
}
