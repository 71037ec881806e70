import type { Startable } from '@libp2p/interface'
import { join } from 'node:path'
import { CoordinatorService } from '../coordinator/coordinator-service.js'
import { HistoryService } from '../history/history-service.js'
import { HistoryStore } from '../history/history-store.js'
import { Rpc } from '../protocol/rpc.js'
import { BlockStore } from '../dataset/block-store.js'
import { Catalog } from '../dataset/catalog.js'
import { DatasetService } from '../dataset/dataset-service.js'
import { blockCidOfDigest } from '../dataset/block-cid.js'
import type { JobRecord } from '../protocol/history-messages.js'
import { Lifecycle } from '../util/lifecycle.js'
import type { SealRefusalKind } from '../worker/order-seal-check.js'
import { WorkerService, type AttemptObservation, type CoordinatorRef, type WorkerStats } from '../worker/worker-service.js'
import type { MeshNode } from './node.js'

export interface RolesConfig {
  worker: boolean
  slots: number
  version: string
  /** Heap cap per task thread, MiB. */
  taskMemoryMb?: number
  /** Tasks run in child processes under Node's permission model (`join --sandbox`). */
  sandbox?: boolean
  /** false: no streaming commands run here (`join --no-exec`). */
  exec?: boolean
  /** false: fetch every split from its submitter (`join --no-local-reads`). */
  localReads?: boolean
  /** false: fetch every map output over the network, even from a node on this host (`join --no-local-shuffle`). */
  localShuffle?: boolean
  /** A job whose submitter stops polling for this long is aborted. */
  submitterTimeoutMs?: number
  /** Free disk (MiB) an attempt needs beyond its input. */
  minFreeDiskMb?: number
  /** Jobs held at once as coordinator. */
  maxJobs?: number
  /** Job records this node keeps (`--history-jobs`). */
  historyJobs?: number
  /** Bytes of dataset blocks kept here at most (`--store-max`). */
  storeMaxBytes?: number
  /** How often the catalog and the blocks' replicas are checked, ms (tests shorten them). */
  datasetSyncMs?: number
  datasetRepairMs?: number
  /** How long a storing member that left still counts for its blocks (`--repair-after`), ms. */
  datasetRepairAfterMs?: number
  /** Days an ended job's record is kept (`--history-days`). */
  historyDays?: number
  /** How often the history is compared with a random member's, ms. */
  historySyncMs?: number
  /** Told of every attempt that ends on this node (the dashboard's metrics). */
  onAttempt?: (attempt: AttemptObservation) => void
  /** Told of every order this node's worker refused for its job's seal (the dashboard's metrics). */
  onSealRefusal?: (kind: SealRefusalKind) => void
}

export interface Roles {
  /** Calls to any member, this node included (the dashboard's cancel and logs). */
  rpc: Rpc
  coordinator: CoordinatorService
  history: HistoryService
  historyStore: HistoryStore
  datasets: DatasetService
  worker: WorkerService | undefined
  workerStats: () => WorkerStats | undefined
  stop: () => Promise<void>
}

/**
 * The MapReduce roles on top of a running mesh node. Every node can become
 * coordinator (the service acts only while the node holds the lease); every
 * node but `--no-worker` ones runs tasks. The election says who leads.
 */
export async function startRoles (node: MeshNode, config: RolesConfig): Promise<Roles> {
  const logger = node.logger
  const rpc = new Rpc(node.peerId, node.libp2p, logger.forComponent('rpc'))

  const leader = (): CoordinatorRef | undefined => {
    const v = node.view()
    return v.leader !== undefined && v.leaseValid ? { peer: v.leader, epoch: v.epoch } : undefined
  }

  const lifecycle = new Lifecycle(logger.forComponent('roles'))
  const historyLog = logger.forComponent('history')
  const historyStore = await lifecycle.start('history store', new HistoryStore({
    dir: join(node.dataDir.path, 'history'),
    maxJobs: config.historyJobs,
    maxAgeMs: config.historyDays === undefined ? undefined : config.historyDays * 86_400_000,
    log: historyLog
  }))
  const history = await lifecycle.start('history', new HistoryService({
    self: node.peerId,
    rpc,
    store: historyStore,
    members: () => node.view().members.filter((m) => m.liveness === 'alive').map((m) => m.peer),
    log: historyLog
  }, { syncMs: config.historySyncMs }))

  const datasetLog = logger.forComponent('datasets')
  const blocks = config.worker ? await lifecycle.start('block store', new BlockStore({ dir: join(node.dataDir.path, 'blocks'), maxBytes: config.storeMaxBytes, log: datasetLog })) : undefined
  const catalog = new Catalog(join(node.dataDir.path, 'datasets.json'), datasetLog)
  catalog.load()
  const datasets = await lifecycle.start('datasets', new DatasetService({
    self: node.peerId,
    rpc,
    network: node.libp2p,
    store: blocks,
    catalog,
    lease: () => (node.isCoordinator() ? node.view().epoch : undefined),
    members: () => node.view().members.filter((m) => m.liveness === 'alive').map((m) => ({ peer: m.peer, worker: m.info.worker })),
    pinned: () => detachedJobBlocks(historyStore.running()),
    submitters: node.submitters,
    log: datasetLog
  }, { syncMs: config.datasetSyncMs, repairMs: config.datasetRepairMs, repairAfterMs: config.datasetRepairAfterMs }))

  const coordinator = new CoordinatorService({
    self: node.peerId,
    rpc,
    lease: () => (node.isCoordinator() ? node.view().epoch : undefined),
    liveness: (peer) => node.view().members.find((m) => m.peer === peer)?.liveness,
    liveWorkers: () => [
      ...(config.worker ? [node.peerId] : []),
      ...node.view().members.filter((m) => m.liveness === 'alive' && m.info.worker).map((m) => m.peer)
    ],
    log: logger.forComponent('coordinator'),
    history: { held: (jobId) => historyStore.get(jobId), running: () => historyStore.running(), publish: (records) => { history.publish(records) } },
    detached: datasets
  }, { submitterTimeoutMs: config.submitterTimeoutMs, maxJobs: config.maxJobs, submitters: node.submitters })
  await lifecycle.start('coordinator', coordinator)

  let worker: WorkerService | undefined
  if (config.worker) {
    const w = worker = await lifecycle.start('worker', new WorkerService({ self: node.peerId, network: node.libp2p, rpc, dataDir: node.dataDir.path, coordinator: leader, logger, blocks: datasets }, { slots: config.slots, version: config.version, taskMemoryMb: config.taskMemoryMb, sandbox: config.sandbox, exec: config.exec, localReads: config.localReads, localShuffle: config.localShuffle, minFreeDiskBytes: config.minFreeDiskMb === undefined ? undefined : config.minFreeDiskMb * 2 ** 20, onAttempt: config.onAttempt, submitters: node.submitters, onSealRefusal: config.onSealRefusal }))
    node.setTaskInfo(() => w.getStats())
    await lifecycle.start('running count', runningCountReporter(node, w))
    await lifecycle.start('log retention', logRetention(historyStore, w))
  }

  return {
    rpc,
    coordinator,
    history,
    historyStore,
    datasets,
    worker,
    workerStats: () => worker?.getStats(),
    stop: async () => { await lifecycle.stop() }
  }
}

/** A job's attempt logs are kept here as long as its history record is: dropped with it, and at start for records gone. */
function logRetention (history: HistoryStore, worker: WorkerService): Startable {
  let unsubscribe: (() => void) | undefined
  return {
    start: () => {
      for (const jobId of worker.logs.jobs()) if (history.get(jobId) === undefined) worker.logs.removeJob(jobId)
      unsubscribe = history.onChange((change) => { if (change.type === 'drop') worker.logs.removeJob(change.jobId) })
    },
    stop: () => { unsubscribe?.() }
  }
}

/** Heartbeats carry how many tasks run here (for `status`): the count, looked at twice a second. */
function runningCountReporter (node: MeshNode, worker: WorkerService): Startable {
  let timer: NodeJS.Timeout | undefined
  let last = 0
  return {
    start: () => {
      timer = setInterval(() => {
        const running = worker.getStats().running
        if (running !== last) node.setRunning(last = running)
      }, 500)
      // Like the coordinator's clock: a report for `status`, never what keeps a process alive.
      timer.unref()
    },
    stop: () => { clearInterval(timer) }
  }
}

/** The blocks a running detached job needs from the mesh besides its input: its stored spec, and its code. */
function detachedJobBlocks (running: readonly JobRecord[]): string[] {
  const out: string[] = []
  for (const r of running) {
    if (r.detached === undefined) continue
    if (r.detached.spec !== undefined) out.push(r.detached.spec.cid)
    if (r.codeHash !== undefined && r.streaming === undefined) out.push(blockCidOfDigest(Buffer.from(r.codeHash, 'hex')))
  }
  return out
}
