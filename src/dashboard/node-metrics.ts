import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { MeshNode } from '../node/node.js'
import type { Roles } from '../node/roles.js'
import { JobStateSchema } from '../protocol/history-messages.js'
import type { SealRefusalKind } from '../worker/order-seal-check.js'
import type { AttemptObservation } from '../worker/worker-service.js'

/**
 * A node's Prometheus metrics (docs/observability.md lists them): what its worker ran, what its history
 * holds, its view of the election, and (through the same registry) libp2p's connection and stream metrics
 * and the process's (event-loop lag, RSS, heap). Counts of what happens are kept as it happens; states
 * (jobs by state, members by liveness, the epoch) are read when scraped.
 */
export class NodeMetrics {
  readonly registry = new Registry()
  private readonly attempts: Counter<'kind' | 'outcome'>
  private readonly durations: Histogram<'kind'>
  private readonly bytes: Counter<'what'>
  private readonly records: Counter<'kind' | 'direction'>
  private readonly sealRefusals: Counter<'reason'>

  constructor () {
    const registers = [this.registry]
    this.attempts = new Counter({ name: 'mrp2p_task_attempts_total', help: 'Task attempts that ended on this node, by kind and outcome (succeeded, failed, abandoned)', labelNames: ['kind', 'outcome'], registers })
    this.durations = new Histogram({ name: 'mrp2p_task_attempt_duration_seconds', help: 'Run time of the task attempts that ended on this node', labelNames: ['kind'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers })
    this.bytes = new Counter({ name: 'mrp2p_bytes_total', help: 'Bytes this node\'s successful attempts handled: map input read, map output written (raw), shuffle fetched (raw and as sent) or linked in place, reduce output committed', labelNames: ['what'], registers })
    this.records = new Counter({ name: 'mrp2p_records_total', help: 'Records this node\'s successful attempts read and wrote, by task kind', labelNames: ['kind', 'direction'], registers })
    this.sealRefusals = new Counter({ name: 'mrp2p_orders_refused_total', help: 'Task orders this node refused for their job\'s seal, by reason (bad-signature, split-not-signed, signer-not-allowed)', labelNames: ['reason'], registers })
  }

  /** The hook the worker calls for every order it refuses for its job's seal. */
  readonly observeSealRefusal = (kind: SealRefusalKind): void => {
    this.sealRefusals.inc({ reason: kind })
  }

  /** The hook the worker calls for every attempt that ends here. */
  readonly observeAttempt = (a: AttemptObservation): void => {
    this.attempts.inc({ kind: a.kind, outcome: a.outcome })
    this.durations.observe({ kind: a.kind }, a.durationMs / 1000)
    const c = a.outcomeDetail?.ok === true ? a.outcomeDetail.counters : undefined
    if (c === undefined) return
    if (a.kind === 'map') {
      this.bytes.inc({ what: 'map_read' }, c.bytesIn ?? 0)
      this.bytes.inc({ what: 'map_written' }, c.bytesOut ?? 0)
    } else {
      this.bytes.inc({ what: 'shuffle_raw' }, c.shuffleRawBytes ?? 0)
      this.bytes.inc({ what: 'shuffle_sent' }, c.shuffleBytes ?? 0)
      this.bytes.inc({ what: 'shuffle_linked' }, c.shuffleLinkedBytes ?? 0)
      this.bytes.inc({ what: 'committed' }, c.bytesOut ?? 0)
    }
    this.records.inc({ kind: a.kind, direction: 'in' }, c.recordsIn ?? 0)
    this.records.inc({ kind: a.kind, direction: 'out' }, c.recordsOut ?? 0)
  }

  /** The gauges read at each scrape, from the node and its roles. */
  watch (node: MeshNode, roles: Roles): void {
    const registers = [this.registry]
    const history = roles.historyStore
    new Gauge({
      name: 'mrp2p_jobs',
      help: 'Jobs in this node\'s history, by state',
      labelNames: ['state'],
      registers,
      collect () {
        const counts = new Map<string, number>(JobStateSchema.options.map((s) => [s, 0]))
        for (const j of history.list()) counts.set(j.state, (counts.get(j.state) ?? 0) + 1)
        for (const [state, n] of counts) this.set({ state }, n)
      }
    })
    new Gauge({ name: 'mrp2p_election_epoch', help: 'The election epoch this node follows', registers, collect () { this.set(node.view().epoch) } })
    new Gauge({ name: 'mrp2p_election_quarantined_peers', help: 'Members whose election messages this node ignores now (they kept contradicting the lease a majority renews)', registers, collect () { this.set(node.view().quarantined?.length ?? 0) } })
    new Gauge({ name: 'mrp2p_gossip_graylisted_peers', help: 'Gossip peers whose score is below the graylist threshold: this node drops what they send', registers, collect () { this.set(node.graylisted().length) } })
    new Counter({ name: 'mrp2p_control_rate_dropped_total', help: 'Control-topic messages refused because their author sent over its rate (the flood detector)', registers, collect () { this.reset(); this.inc(node.electionStats().rateDropped) } })
    new Gauge({ name: 'mrp2p_is_coordinator', help: '1 while this node holds the lease and acts as coordinator', registers, collect () { this.set(node.isCoordinator() ? 1 : 0) } })
    new Gauge({
      name: 'mrp2p_members',
      help: 'Members this node knows of (itself included), by liveness',
      labelNames: ['liveness'],
      registers,
      collect () {
        const counts = new Map<string, number>([['alive', 1], ['suspect', 0], ['dead', 0]])
        for (const m of node.view().members) if (m.peer !== node.peerId) counts.set(m.liveness, (counts.get(m.liveness) ?? 0) + 1)
        for (const [liveness, n] of counts) this.set({ liveness }, n)
      }
    })
    new Gauge({ name: 'mrp2p_tasks_running', help: 'Task attempts running on this node now', registers, collect () { this.set(roles.workerStats()?.running ?? 0) } })
  }
}
