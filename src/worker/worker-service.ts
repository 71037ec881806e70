import { totalmem } from 'node:os'
import type { Startable } from '@libp2p/interface'
import type { InfoTasks } from '../protocol/info.js'
import { Lifecycle } from '../util/lifecycle.js'
import type { Logger } from '../util/logger.js'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { AttemptLogs } from './attempt-logs.js'
import { AttemptRunner } from './attempt-runner.js'
import { CodeCache } from './code-cache.js'
import { sandboxUnavailable } from './command-sandbox.js'
import { DEFAULT_MIN_FREE_DISK_BYTES } from './disk-reserve.js'
import { EpochFence } from './epoch-fence.js'
import { IntermediateStore } from './intermediate-store.js'
import { LogServer } from './log-server.js'
import { EarlyShuffle } from './early-shuffle.js'
import { hostId } from './host-id.js'
import { OrderIntake, type AttemptObservation } from './order-intake.js'
import { ReplicaIntake } from './replica-intake.js'
import { OrderSealCheck, type SealRefusalKind } from './order-seal-check.js'
import { RegisterLoop } from './register-loop.js'
import { ReportSender } from './report-sender.js'
import { ShuffleClient, type ShuffleStats } from './shuffle-client.js'
import { ShuffleServer } from './shuffle-server.js'
import { SubmitterClient } from './submitter-client.js'
import { LocalInputs } from './local-input.js'
import { NodeProbe } from './node-probe.js'
import { TaskPool } from './task-pool.js'
import type { WorkerServiceComponents } from './worker-components.js'

export type { CoordinatorRef, WorkerRpc, WorkerServiceComponents } from './worker-components.js'
export type { AttemptObservation } from './order-intake.js'

export interface WorkerServiceInit {
  slots: number
  version: string
  /** Heap cap of one task thread (MiB); a job that allocates past it fails that attempt only. */
  taskMemoryMb?: number
  /** Run each attempt in a child process under Node's permission model instead of a thread (docs/isolation.md); streaming commands under bubblewrap. */
  sandbox?: boolean
  /** false: run no streaming job's commands here (`join --no-exec`); the coordinator sends them to other nodes. */
  exec?: boolean
  /** An attempt starts only with at least this much free disk under the data dir, beyond what its input needs (default {@link DEFAULT_MIN_FREE_DISK_BYTES}). */
  minFreeDiskBytes?: number
  /** How often the worker looks whether it must register with a (new) coordinator (ms, default 500). */
  registerIntervalMs?: number
  /** Told of every attempt that ends here (the node's metrics). */
  onAttempt?: (attempt: AttemptObservation) => void
  /** Only jobs signed by these identities run here (`join --submitters`); undefined: any member's. */
  submitters?: ReadonlySet<string>
  /** Told of every order refused for its job's seal (the node's metrics). */
  onSealRefusal?: (kind: SealRefusalKind) => void
  /** false: never read a split in place on the submitter's host (`join --no-local-reads`); default true. */
  localReads?: boolean
  /** false: never link a map output in place from a mapper on this host, nor offer ours (`join --no-local-shuffle`); default true. */
  localShuffle?: boolean
}

/** What this worker holds and does, as `status` shows it (InfoTasks), with its shuffle counters always there. */
export type WorkerStats = InfoTasks & { shuffle: ShuffleStats }

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
  private readonly replicas: ReplicaIntake
  private readonly registration: RegisterLoop
  private readonly logServer: LogServer
  private readonly local: LocalInputs
  private readonly probes: NodeProbe
  private readonly lifecycle: Lifecycle
  /** What the job's code wrote in each attempt run here (`mrp2p logs`). */
  readonly logs: AttemptLogs
  /** Why this node runs no streaming commands; undefined when it runs them. Settled at start (a --sandbox node probes bubblewrap). */
  noExec: string | undefined
  private readonly init: WorkerServiceInit
  private readonly dataDir: string
  private readonly lifecycleLog: Logger

  constructor (c: WorkerServiceComponents, init: WorkerServiceInit) {
    const log = c.logger.forComponent('worker')
    this.init = init
    this.lifecycleLog = log
    this.dataDir = c.dataDir
    this.noExec = init.exec === false ? 'this node was started with --no-exec' : undefined
    this.lifecycle = new Lifecycle(log)
    this.store = new IntermediateStore(c.dataDir)
    this.fence = new EpochFence(c.dataDir)
    this.pool = new TaskPool({ slots: init.slots, memoryMb: init.taskMemoryMb, isolation: init.sandbox === true ? 'sandbox' : 'thread', logger: c.logger })
    this.probes = new NodeProbe(log)
    this.shuffleClient = new ShuffleClient(c.self, c.network, this.store, { inPlace: init.localShuffle, probes: this.probes, copy: init.sandbox === true, log })
    this.shuffleServer = new ShuffleServer(c.network, this.store, log, { self: c.self, inPlace: init.localShuffle })
    this.reports = new ReportSender(c.rpc, c.coordinator, log)
    this.logs = new AttemptLogs(join(c.dataDir, 'logs'), log)
    this.logServer = new LogServer(c.rpc, this.logs)
    this.local = new LocalInputs(c.self, c.network, this.probes, log, init.localReads !== false)
    const attempts = new AttemptRunner({
      logs: this.logs,
      store: this.store,
      pool: this.pool,
      code: new CodeCache(c.dataDir),
      submitter: new SubmitterClient(c.self, c.network, log, init.localReads !== false),
      local: this.local,
      blocks: c.blocks,
      shuffle: this.shuffleClient,
      early: new EarlyShuffle({ shuffle: this.shuffleClient, rpc: c.rpc, coordinator: c.coordinator, log }),
      log,
      self: c.self,
      sandbox: init.sandbox === true
    }, init.minFreeDiskBytes ?? DEFAULT_MIN_FREE_DISK_BYTES)
    this.replicas = new ReplicaIntake({ rpc: c.rpc, coordinator: c.coordinator, store: this.store, shuffle: this.shuffleClient, log })
    this.intake = new OrderIntake({ rpc: c.rpc, coordinator: c.coordinator, fence: this.fence, store: this.store, attempts, reports: this.reports, log, onAttempt: init.onAttempt, noExec: () => this.noExec, seals: new OrderSealCheck(c.self, init.submitters), onSealRefusal: init.onSealRefusal }, init.slots)
    this.registration = new RegisterLoop(c.rpc, c.coordinator, this.store, this.fence, { slots: init.slots, version: init.version, intervalMs: init.registerIntervalMs ?? 500, noExec: () => this.noExec, host: init.localShuffle === false ? undefined : hostId(), memoryBytes: nodeMemory() }, log)
  }

  getStats (): WorkerStats {
    const jobs = new Set([...this.store.jobs(), ...this.intake.running.jobs()])
    return {
      ...this.intake.counts,
      staleEpochRefusals: this.fence.refusals,
      sealRefusals: this.intake.sealRefusals,
      copies: { ...this.replicas.copies },
      running: this.intake.running.size,
      jobs: [...jobs].sort(),
      shuffle: this.shuffleClient.stats()
    }
  }

  async start (): Promise<void> {
    if (this.noExec === undefined && this.init.sandbox === true) {
      const probe = join(this.dataDir, 'intermediate')
      mkdirSync(probe, { recursive: true })
      // The reason travels in every registration, whose schema holds at most 500 characters.
      this.noExec = (await sandboxUnavailable(probe))?.slice(0, 500)
      if (this.noExec !== undefined) this.lifecycleLog.warn({ reason: this.noExec }, 'streaming tasks refused')
    }
    await this.lifecycle.start('task pool', this.pool)
    await this.lifecycle.start('shuffle server', this.shuffleServer)
    await this.lifecycle.start('log server', this.logServer)
    await this.lifecycle.start('order intake', this.intake)
    await this.lifecycle.start('replica intake', this.replicas)
    // After the intake, so that it stops before it: an attempt ended by stop() would otherwise wait out the
    // retries of its report (up to 7.5 s) before the intake could finish. (A report sent before this starts is sent.)
    await this.lifecycle.start('report sender', this.reports)
    await this.lifecycle.start('register loop', this.registration)
  }

  /**
   * Stops registering, then the reports still in flight, takes no more orders and ends every attempt, stops
   * serving map output, then the task threads: each part stops even if one before it fails to, and every handler goes.
   */
  async stop (): Promise<void> {
    try {
      await this.lifecycle.stop()
    } finally {
      this.probes.stop()
    }
  }

  /** A new coordinator may not know us yet: register again on the next round. */
  forgetRegistration (): void {
    this.registration.forget()
  }
}

/** This node's memory: its cgroup's limit where one is set (Node reports none as 0, or a huge number), else the host's. */
function nodeMemory (): number {
  const limit = process.constrainedMemory?.() ?? 0
  return limit > 0 && limit < totalmem() ? limit : totalmem()
}
