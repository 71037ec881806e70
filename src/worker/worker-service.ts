import type { Startable } from '@libp2p/interface'
import { AttemptRunner } from './attempt-runner.js'
import { CodeCache } from './code-cache.js'
import { DEFAULT_MIN_FREE_DISK_BYTES } from './disk-reserve.js'
import { EpochFence } from './epoch-fence.js'
import { IntermediateStore } from './intermediate-store.js'
import { OrderIntake } from './order-intake.js'
import { RegisterLoop } from './register-loop.js'
import { ReportSender } from './report-sender.js'
import { ShuffleClient, type ShuffleStats } from './shuffle-client.js'
import { ShuffleServer } from './shuffle-server.js'
import { SubmitterClient } from './submitter-client.js'
import { TaskPool } from './task-pool.js'
import type { WorkerServiceComponents } from './worker-components.js'

export type { CoordinatorRef, WorkerRpc, WorkerServiceComponents } from './worker-components.js'

export interface WorkerServiceInit {
  slots: number
  version: string
  /** Heap cap of one task thread (MiB); a job that allocates past it fails that attempt only. */
  taskMemoryMb?: number
  /** Run each attempt in a child process under Node's permission model instead of a thread (docs/isolation.md). */
  sandbox?: boolean
  /** An attempt starts only with at least this much free disk under the data dir, beyond what its input needs (default {@link DEFAULT_MIN_FREE_DISK_BYTES}). */
  minFreeDiskBytes?: number
  /** How often the worker looks whether it must register with a (new) coordinator (ms, default 500). */
  registerIntervalMs?: number
}

export interface WorkerStats {
  started: number
  succeeded: number
  failed: number
  staleEpochRefusals: number
  running: number
  /** Jobs with a task running here or files in the intermediate store. */
  jobs: string[]
  shuffle: ShuffleStats
}

/**
 * The worker role: accepts DoJob orders fenced by epoch (order-intake.ts), runs each attempt on a task slot
 * (attempt-runner.ts), keeps map outputs on this node's disk and serves them to reducers (shuffle-server.ts,
 * shuffle-client.ts), fetches code and splits from and commits parts to the submitter (submitter-client.ts),
 * and reports to the coordinator (report-sender.ts). Registers with every new coordinator, with its
 * inventory (register-loop.ts). After `stop()` none of these runs and no protocol handler of it is left.
 */
export class WorkerService implements Startable {
  readonly fence: EpochFence
  private readonly store: IntermediateStore
  private readonly pool: TaskPool
  private readonly shuffleClient: ShuffleClient
  private readonly shuffleServer: ShuffleServer
  private readonly reports: ReportSender
  private readonly intake: OrderIntake
  private readonly registration: RegisterLoop

  constructor (c: WorkerServiceComponents, init: WorkerServiceInit) {
    const log = c.logger.forComponent('worker')
    this.store = new IntermediateStore(c.dataDir)
    this.fence = new EpochFence(c.dataDir)
    this.pool = new TaskPool({ slots: init.slots, memoryMb: init.taskMemoryMb, isolation: init.sandbox === true ? 'sandbox' : 'thread', logger: c.logger })
    this.shuffleClient = new ShuffleClient(c.self, c.network, this.store)
    this.shuffleServer = new ShuffleServer(c.network, this.store, log)
    this.reports = new ReportSender(c.rpc, c.coordinator, log)
    const attempts = new AttemptRunner({
      store: this.store,
      pool: this.pool,
      code: new CodeCache(c.dataDir),
      submitter: new SubmitterClient(c.network, log),
      shuffle: this.shuffleClient,
      log
    }, init.minFreeDiskBytes ?? DEFAULT_MIN_FREE_DISK_BYTES)
    this.intake = new OrderIntake({ rpc: c.rpc, coordinator: c.coordinator, fence: this.fence, store: this.store, attempts, reports: this.reports, log }, init.slots)
    this.registration = new RegisterLoop(c.rpc, c.coordinator, this.store, this.fence, { slots: init.slots, version: init.version, intervalMs: init.registerIntervalMs ?? 500 }, log)
  }

  getStats (): WorkerStats {
    const jobs = new Set([...this.store.jobs(), ...this.intake.running.jobs()])
    return {
      ...this.intake.counts,
      staleEpochRefusals: this.fence.refusals,
      running: this.intake.running.size,
      jobs: [...jobs].sort(),
      shuffle: this.shuffleClient.stats()
    }
  }

  async start (): Promise<void> {
    this.pool.start()
    this.reports.start()
    await this.intake.start()
    await this.shuffleServer.start()
    this.registration.start()
  }

  /** Stops taking orders and registering, ends every attempt and report in flight, and unregisters every handler. */
  async stop (): Promise<void> {
    await this.registration.stop()
    this.reports.stop()
    await this.intake.stop()
    await this.shuffleServer.stop()
    await this.pool.stop()
  }

  /** A new coordinator may not know us yet: register again on the next round. */
  forgetRegistration (): void {
    this.registration.forget()
  }
}
