import type { BlockRef } from '../protocol/dataset-messages.js'
import type { HandlerRegistrar, StreamOpener } from '../protocol/reqresp.js'
import type { Rpc } from '../protocol/rpc.js'
import type { ComponentLogger } from '../util/logger.js'

/** The coordinator a worker follows: the lease holder, and the epoch of its lease. */
export interface CoordinatorRef { peer: string, epoch: number }

/** The part of {@link Rpc} a worker uses: serving orders, calling the coordinator. */
export type WorkerRpc = Pick<Rpc, 'serve' | 'call'>

/** Blocks of datasets in the mesh, for maps over them (the node's DatasetService). */
export interface BlockSource {
  /** The block's path: in place when held here, else fetched into `file`; `fetchedFrom` names the node that sent it. */
  /** Stores a file (a reduce's part) as blocks of a dataset; their list in order. */
  storeFile: (path: string, size: number, layout: { blockSize: number, replicas: number }, signal: AbortSignal) => Promise<BlockRef[]>
  openBlock: (block: { cid: string, bytes: number, hosts?: readonly string[] }, file: string, signal: AbortSignal) => Promise<{ path: string, fetchedFrom?: string }>
}

/** What a worker needs from the node: the network and who leads now. */
export interface WorkerServiceComponents {
  self: string
  network: StreamOpener & HandlerRegistrar
  rpc: WorkerRpc
  dataDir: string
  coordinator: () => CoordinatorRef | undefined
  /** Where maps over datasets in the mesh read their blocks. */
  blocks?: BlockSource
  /** The worker's parts each log under their own component (worker, task-pool, task-runner or task-sandbox). */
  logger: ComponentLogger
}
