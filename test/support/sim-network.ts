import { ElectionNode } from '../../src/election/election-node.js'
import type { ElectionEffect, ElectionInput } from '../../src/election/election-step.js'
import { decodeControlMessage, encodeControlMessage, type ControlMessage } from '../../src/election/messages.js'
import { resolveElectionConfig, type ElectionConfig, type MemberInfo } from '../../src/election/types.js'
import { Prng } from './prng.js'
import { EventQueue } from './event-queue.js'

/**
 * A seeded, deterministic network for ElectionNodes. True time is the
 * simulator's; each node sees its own clock running at a rate within
 * 1 ± driftMax of it, and ticks every tickMs of that clock. Messages go
 * through the real codec, are delayed 1..maxDelayMs, lost with probability
 * `loss` per recipient, and cut by partitions (checked when sent and again
 * when delivered, as a broken link drops what is in flight). Nodes crash
 * (state lost but the persisted epoch), restart, and pause (a frozen process:
 * no ticks, messages wait until it runs again). A node added as hostile runs
 * a HostileMember instead, and the checks leave it out.
 *
 * Model assumption: what a node sends within one tick after a link to a peer
 * (re)forms is not lost to that peer (gossipsub flood-publishes onto the
 * fresh TCP streams). Everything else is subject to `loss`.
 *
 * The checker runs after every event:
 *  (1) at most one node with isCoordinator(now) per connected component
 *      (partition group among live nodes), except within `graceMs` =
 *      lease + maxDelay + one tick of the two nodes being joined, or of
 *      either one's group gaining or losing a member (heal, regroup,
 *      restart; for a paused node, counted from when it wakes). A holder
 *      bound to a lease takes no word of another holder (docs/election.md):
 *      two holders that meet settle by quorum, the one whose renewals no
 *      longer reach a majority of its grown view lapsing within a lease;
 *  (2) when a coordinator crashes while the rest is quiet, connected and
 *      nearly lossless, a new one appears within `failoverBoundMs`;
 *  (3) no node's highestEpoch ever decreases, across restarts, and each
 *      epoch-observed effect is higher than the last.
 */

export interface SimOptions {
  seed: number
  maxDelayMs: number
  loss: number
  /** Each node's clock rate is drawn from [1 - driftMax, 1 + driftMax]. */
  driftMax: number
  tickMs?: number
  config?: Partial<ElectionConfig>
  /** Nudge nodes when their partition heals (what the adapter does on a new connection). */
  nudgeOnJoin?: boolean
  /** Keep the last N trace lines for error reports. */
  traceLines?: number
}

/** A quarantine some honest node started, as its `peer-quarantined` effect said. */
export interface SimQuarantine {
  at: number
  by: string
  peer: string
  forMs: number
  repeat: number
  /** The quarantined peer is a {@link HostileMember}. */
  hostile: boolean
}

/** An honest node's lease: it became coordinator in `epoch` (a bump, the same holder in a new epoch, counts too). */
export interface SimLease {
  at: number
  id: string
  epoch: number
}

export interface SimStats {
  quarantines: SimQuarantine[]
  leases: SimLease[]
  events: number
  deliveries: number
  published: number
  becameCoordinator: number
  graceOverlaps: number
  maxGraceOverlapMs: number
  failoverChecks: number
  failoverLatencies: number[]
}

export class SimViolation extends Error {
  override readonly name = 'SimViolation'
}

interface SimNode {
  id: string
  index: number
  /** A hostile member runs a {@link HostileMember} instead of an ElectionNode, and is left out of every check. */
  hostile: boolean
  node: ElectionNode | undefined
  attacker: HostileMember | undefined
  up: boolean
  incarnation: number
  rate: number
  offset: number
  pausedUntil: number
  group: number
  /** What the adapter would have persisted from epoch-observed effects. */
  persistedEpoch: number
  maxHighestSeen: number
  coordinator: boolean
  /** Last time its group gained or lost a member (for a paused node, when it woke to that). */
  regroupedAt: number
  /** Its latest lease as a holder, so that a lease that lapses and comes back in the same epoch counts once. */
  lastLease?: SimLease
}

type Event =
  | { kind: 'tick', node: number, inc: number }
  | { kind: 'deliver', from: number, to: number, inc: number, message: ControlMessage }
  | { kind: 'action', run: () => void }
  | { kind: 'check' }
  | { kind: 'nudge', node: number, inc: number }

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

export function peerIds (rng: Prng, n: number): string[] {
  const ids = new Set<string>()
  while (ids.size < n) {
    let s = '12D3KooW'
    for (let i = 0; i < 12; i++) s += B58[rng.int(0, B58.length - 1)]
    ids.add(s)
  }
  return [...ids]
}

export const SIM_INFO: MemberInfo = { addrs: ['/ip4/127.0.0.1/tcp/1'], slots: 2, running: 0, worker: true, version: 'sim' }

export class SimNetwork {
  readonly config: ElectionConfig
  readonly rng: Prng
  readonly tickMs: number
  readonly graceMs: number
  readonly freshLinkMs: number
  readonly failoverBoundMs: number
  readonly stats: SimStats = { quarantines: [], leases: [], events: 0, deliveries: 0, published: 0, becameCoordinator: 0, graceOverlaps: 0, maxGraceOverlapMs: 0, failoverChecks: 0, failoverLatencies: [] }
  now = 0

  private readonly nodes: SimNode[] = []
  private readonly byId = new Map<string, SimNode>()
  private readonly queue = new EventQueue<Event>()
  private readonly netRng: Prng
  private readonly nodeRng: Prng
  private readonly joinedAt = new Map<string, number>()
  private readonly trace: string[] = []
  private readonly traceLines: number
  /** Last time anything but message traffic happened: crash, restart, pause, partition change. */
  private lastFault = Number.NEGATIVE_INFINITY
  private failover: { crashedAt: number, deadline: number, from: string } | undefined

  constructor (readonly options: SimOptions) {
    this.config = resolveElectionConfig(options.config)
    this.rng = new Prng(options.seed)
    this.netRng = this.rng.fork()
    this.nodeRng = this.rng.fork()
    this.tickMs = options.tickMs ?? 100
    this.traceLines = options.traceLines ?? 0
    // Two holders that meet hear of each other within one message delay, sent
    // at the latest one tick after the nudge; from then on, the one without
    // a majority of the joined view renews no more and its lease runs out.
    this.freshLinkMs = Math.ceil(this.tickMs / (1 - options.driftMax)) + 1
    this.graceMs = options.maxDelayMs + this.freshLinkMs + Math.ceil(this.config.leaseMs / (1 - options.driftMax))
    this.failoverBoundMs = 2 * this.config.leaseMs + this.failoverSlackMs()
  }

  /** Documented in docs/election.md: two message delays and two ticks beyond 2 × lease. */
  failoverSlackMs (): number {
    return 2 * this.options.maxDelayMs + 2 * Math.ceil(this.tickMs / (1 - this.options.driftMax))
  }

  /** A node; `hostile` makes it a {@link HostileMember} instead of an honest ElectionNode. */
  addNode (id: string, hostile = false): void {
    const index = this.nodes.length
    const n: SimNode = {
      id,
      index,
      hostile,
      node: undefined,
      attacker: undefined,
      up: false,
      incarnation: 0,
      rate: 1 + this.nodeRng.float(-this.options.driftMax, this.options.driftMax),
      offset: this.nodeRng.float(0, 1e6),
      pausedUntil: 0,
      group: 0,
      persistedEpoch: 0,
      maxHighestSeen: 0,
      regroupedAt: Number.NEGATIVE_INFINITY,
      coordinator: false
    }
    this.nodes.push(n)
    this.byId.set(id, n)
  }

  ids (): string[] {
    return this.nodes.map(n => n.id)
  }

  upIds (): string[] {
    return this.nodes.filter(n => n.up).map(n => n.id)
  }

  isUp (id: string): boolean {
    return this.get(id).up
  }

  localNow (id: string): number {
    return this.local(this.get(id))
  }

  electionNode (id: string): ElectionNode | undefined {
    return this.get(id).node
  }

  /** Live nodes that are coordinator by their own rule right now. */
  coordinators (): string[] {
    return this.nodes.filter(n => n.up && n.node !== undefined && n.node.isCoordinator(this.local(n))).map(n => n.id)
  }

  groupsOfUp (): string[][] {
    const m = new Map<number, string[]>()
    for (const n of this.nodes) {
      if (!n.up) continue
      const g = m.get(n.group) ?? []
      g.push(n.id)
      m.set(n.group, g)
    }
    return [...m.values()]
  }

  at (time: number, run: () => void): void {
    this.push(time, { kind: 'action', run })
  }

  start (id: string): void {
    const n = this.get(id)
    if (n.up) return
    this.noteFault()
    n.up = true
    n.incarnation++
    n.pausedUntil = 0
    n.coordinator = false
    if (n.hostile) {
      n.attacker = new HostileMember(n.id, this.config)
      this.log(`${n.id.slice(-4)} start hostile`)
      this.apply(n, n.attacker.step({ type: 'start', now: this.local(n) }))
      this.push(this.now + this.nodeRng.float(0, this.tickMs), { kind: 'tick', node: n.index, inc: n.incarnation })
      return
    }
    n.node = new ElectionNode({ self: n.id, config: this.options.config, random: this.nodeRng.fork().next, info: SIM_INFO, initialEpoch: n.persistedEpoch })
    for (const o of this.nodes) if (o !== n) this.joinedAt.set(pairKey(n, o), this.now)
    // Its group gained a member: a holder whose view grows with it may lose its majority, or win one back.
    for (const o of this.nodes) if (o.group === n.group) o.regroupedAt = Math.max(this.now, o.pausedUntil)
    this.log(`${n.id.slice(-4)} start epoch=${n.persistedEpoch}`)
    this.apply(n, n.node.step({ type: 'start', now: this.local(n) }))
    // Tick phase is random, as it would be for independent processes.
    this.push(this.now + this.nodeRng.float(0, this.tickMs), { kind: 'tick', node: n.index, inc: n.incarnation })
    this.afterEvent(n)
  }

  crash (id: string): void {
    const n = this.get(id)
    if (!n.up) return
    const wasCoordinator = n.node?.isCoordinator(this.local(n)) ?? false
    const quietBefore = this.now - this.lastFault
    this.noteFault()
    n.up = false
    n.coordinator = false
    n.node = undefined
    n.attacker = undefined
    this.log(`${n.id.slice(-4)} crash${wasCoordinator ? ' (coordinator)' : ''}`)
    const survivors = this.nodes.filter(o => o.up)
    // Another component's coordinator may already be among the survivors: nothing to wait for.
    const holderLeft = survivors.some(o => o.node?.isCoordinator(this.local(o)) === true)
    const oneGroup = new Set(survivors.map(o => o.group)).size <= 1
    if (wasCoordinator && !holderLeft && survivors.length >= 2 && oneGroup && quietBefore >= this.config.deadAfterMs + this.config.leaseMs && this.options.loss <= 0.02) {
      this.failover = { crashedAt: this.now, deadline: this.now + this.failoverBoundMs, from: n.id }
      this.stats.failoverChecks++
      this.push(this.failover.deadline, { kind: 'check' })
    }
  }

  restart (id: string): void {
    this.start(id)
  }

  /** Freezes a process: no ticks, and messages wait in its socket until it resumes. */
  pause (id: string, ms: number): void {
    const n = this.get(id)
    if (!n.up) return
    this.noteFault()
    n.pausedUntil = Math.max(n.pausedUntil, this.now + ms)
    this.log(`${n.id.slice(-4)} pause ${ms.toFixed(0)}ms`)
    // Frozen before it heard from a side it was just joined to: it hears when it wakes.
    for (const o of this.nodes) {
      const k = pairKey(n, o)
      const j = this.joinedAt.get(k)
      if (o !== n && j !== undefined && this.now - j <= this.graceMs) {
        this.joinedAt.set(k, n.pausedUntil)
        this.push(n.pausedUntil + this.graceMs + 1, { kind: 'check' })
      }
    }
  }

  /** Nodes not listed keep group 0 with every other unlisted node. */
  partition (groups: string[][]): void {
    const before = this.nodes.map(n => n.group)
    for (const n of this.nodes) n.group = 0
    groups.forEach((g, i) => { for (const id of g) this.get(id).group = i + 1 })
    this.regrouped(before)
  }

  heal (): void {
    const before = this.nodes.map(n => n.group)
    for (const n of this.nodes) n.group = 0
    this.regrouped(before)
  }

  run (until: number): void {
    for (;;) {
      const at = this.queue.peekAt()
      if (at === undefined || at > until) break
      const q = this.queue.pop() as { at: number, item: Event }
      this.now = q.at
      this.stats.events++
      this.handle(q.item)
    }
    this.now = until
  }

  /**
   * Whether each component has exactly one coordinator, and (if asked) every
   * member follows it. Returns a description of what is wrong, or undefined.
   */
  settledProblem (requireAgreement: boolean): string | undefined {
    for (const all of this.groupsOfUp()) {
      const g = all.filter(id => !this.get(id).hostile)
      if (g.length === 0) continue
      const coords = g.filter(id => this.get(id).node?.isCoordinator(this.localNow(id)) === true)
      if (coords.length !== 1) return `component [${g.map(short).join(' ')}] has ${coords.length} coordinators`
      if (requireAgreement) {
        for (const id of g) {
          const leader = this.get(id).node?.view(this.localNow(id)).leader
          if (leader !== coords[0]) return `${short(id)} follows ${leader === undefined ? 'nobody' : short(leader)}, not ${short(coords[0])}`
        }
      }
    }
    return undefined
  }

  // ---- internals ---------------------------------------------------------

  private handle (ev: Event): void {
    switch (ev.kind) {
      case 'action':
        ev.run()
        this.checkAllPairs()
        return
      case 'check':
        this.checkAllPairs()
        this.checkFailoverDeadline()
        return
      case 'nudge': {
        const n = this.nodes[ev.node]
        const m = n.node ?? n.attacker
        if (!n.up || n.incarnation !== ev.inc || m === undefined) return
        if (this.now < n.pausedUntil) {
          this.push(n.pausedUntil, ev)
          return
        }
        this.apply(n, m.step({ type: 'nudge', now: this.local(n) }))
        this.afterEvent(n)
        return
      }
      case 'tick': {
        const n = this.nodes[ev.node]
        const m = n.node ?? n.attacker
        if (!n.up || n.incarnation !== ev.inc || m === undefined) return
        if (this.now < n.pausedUntil) {
          this.push(n.pausedUntil, ev)
          return
        }
        this.apply(n, m.step({ type: 'tick', now: this.local(n) }))
        this.push(this.now + this.tickMs / n.rate, ev)
        this.afterEvent(n)
        return
      }
      case 'deliver': {
        const n = this.nodes[ev.to]
        const m = n.node ?? n.attacker
        if (!n.up || n.incarnation !== ev.inc || m === undefined) return
        if (this.nodes[ev.from].group !== n.group) return
        if (this.now < n.pausedUntil) {
          this.push(n.pausedUntil, ev)
          return
        }
        this.stats.deliveries++
        this.apply(n, m.step({ type: 'receive', message: ev.message, now: this.local(n) }))
        this.afterEvent(n)
      }
    }
  }

  private apply (n: SimNode, effects: ElectionEffect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case 'publish':
          this.publish(n, e.message)
          break
        case 'epoch-observed':
          if (e.epoch <= n.persistedEpoch) this.fail(`${short(n.id)} reported epoch-observed ${e.epoch} after ${n.persistedEpoch}`)
          n.persistedEpoch = e.epoch
          break
        case 'role-changed': {
          if (this.traceLines > 0) this.log(`${short(n.id)} role ${e.role} epoch=${e.epoch} leader=${e.leader === undefined ? '-' : short(e.leader)}`)
          const prev = n.lastLease
          if (e.role === 'coordinator' && e.leader === n.id && (prev === undefined || prev.epoch !== e.epoch)) {
            n.lastLease = { at: this.now, id: n.id, epoch: e.epoch }
            this.stats.leases.push(n.lastLease)
          }
          break
        }
        case 'member-changed':
          break
        case 'peer-quarantined': {
          const hostile = this.byId.get(e.peer)?.hostile ?? false
          this.log(`${short(n.id)} quarantines ${short(e.peer)} for ${e.forMs} ms (repeat ${e.repeat})`)
          this.stats.quarantines.push({ at: this.now, by: n.id, peer: e.peer, forMs: e.forMs, repeat: e.repeat, hostile })
          break
        }
      }
    }
  }

  private publish (n: SimNode, message: ControlMessage): void {
    this.stats.published++
    // Every message goes through the real codec once, as it would on the wire.
    const decoded = decodeControlMessage(encodeControlMessage(message))
    if (decoded === undefined) this.fail(`${short(n.id)} published a message its own codec rejects: ${JSON.stringify(message)}`)
    deepFreeze(decoded)
    if (this.traceLines > 0) this.log(`${short(n.id)} -> ${describe(message)}`)
    for (const o of this.nodes) {
      if (o === n || !o.up || o.group !== n.group) continue
      // What a node sends within one tick of a link (re)forming is not lost:
      // gossipsub flood-publishes it straight onto the fresh TCP streams.
      // Without this, no bound on the overlap after a heal could hold.
      const fresh = this.now - (this.joinedAt.get(pairKey(n, o)) ?? Number.NEGATIVE_INFINITY) <= this.freshLinkMs
      if (this.netRng.next() < this.options.loss && !fresh) continue
      const delay = 1 + Math.floor(this.netRng.next() * this.options.maxDelayMs)
      this.push(this.now + delay, { kind: 'deliver', from: n.index, to: o.index, inc: o.incarnation, message: decoded })
    }
  }

  private afterEvent (n: SimNode): void {
    const node = n.node
    if (node === undefined) return
    const h = node.highestEpoch
    if (h < n.maxHighestSeen) this.fail(`${short(n.id)} highestEpoch went back from ${n.maxHighestSeen} to ${h}`)
    n.maxHighestSeen = h
    const c = node.isCoordinator(this.local(n))
    if (c && !n.coordinator) {
      this.stats.becameCoordinator++
      if (this.failover !== undefined && this.now <= this.failover.deadline) {
        this.stats.failoverLatencies.push(this.now - this.failover.crashedAt)
        this.failover = undefined
      }
    }
    n.coordinator = c
    if (c) this.checkAgainstOthers(n)
  }

  private checkAllPairs (): void {
    for (const n of this.nodes) {
      if (!n.up || n.node === undefined) continue
      n.coordinator = n.node.isCoordinator(this.local(n))
    }
    for (const n of this.nodes) if (n.coordinator && n.up) this.checkAgainstOthers(n)
  }

  private checkAgainstOthers (n: SimNode): void {
    for (const o of this.nodes) {
      if (o === n || !o.up || !o.coordinator || o.group !== n.group || o.node === undefined) continue
      if (!o.node.isCoordinator(this.local(o))) {
        o.coordinator = false
        continue
      }
      const since = this.now - Math.max(this.joinedAt.get(pairKey(n, o)) ?? Number.NEGATIVE_INFINITY, n.regroupedAt, o.regroupedAt)
      if (since <= this.graceMs) {
        this.stats.graceOverlaps++
        this.stats.maxGraceOverlapMs = Math.max(this.stats.maxGraceOverlapMs, since)
        continue
      }
      const vn = n.node?.view(this.local(n))
      const vo = o.node.view(this.local(o))
      this.fail(`two coordinators in one component: ${short(n.id)} (epoch ${vn?.epoch}) and ${short(o.id)} (epoch ${vo.epoch}), joined ${since.toFixed(0)} ms ago`)
    }
  }

  private checkFailoverDeadline (): void {
    const f = this.failover
    if (f === undefined || this.now < f.deadline) return
    this.fail(`no new coordinator within ${this.failoverBoundMs} ms after ${short(f.from)} crashed at ${f.crashedAt.toFixed(0)}`)
  }

  private regrouped (before: number[]): void {
    this.noteFault()
    const joined = new Set<SimNode>()
    for (let i = 0; i < this.nodes.length; i++) {
      for (let j = i + 1; j < this.nodes.length; j++) {
        const a = this.nodes[i]
        const b = this.nodes[j]
        if ((before[i] === before[j]) !== (a.group === b.group)) {
          a.regroupedAt = Math.max(this.now, a.pausedUntil)
          b.regroupedAt = Math.max(this.now, b.pausedUntil)
        }
        if (before[i] !== before[j] && a.group === b.group) {
          // A frozen process hears of the heal only when it runs again.
          this.joinedAt.set(pairKey(a, b), Math.max(this.now, a.pausedUntil, b.pausedUntil))
          joined.add(a)
          joined.add(b)
        }
      }
    }
    this.log(`groups ${this.groupsOfUp().map(g => '[' + g.map(short).join(' ') + ']').join(' ')}`)
    for (const n of joined) {
      const at = Math.max(this.now, n.pausedUntil)
      this.push(at + this.graceMs + 1, { kind: 'check' })
      if (this.options.nudgeOnJoin !== false) this.push(at, { kind: 'nudge', node: n.index, inc: n.incarnation })
    }
  }

  /** Any fault also ends a failover watch: property (2) is only claimed for a quiet network. */
  private noteFault (): void {
    this.lastFault = this.now
    this.failover = undefined
  }

  private local (n: SimNode): number {
    return n.offset + this.now * n.rate
  }

  private push (at: number, ev: Event): void {
    this.queue.push(at, ev)
  }

  private get (id: string): SimNode {
    const n = this.byId.get(id)
    if (n === undefined) throw new Error(`unknown sim node ${id}`)
    return n
  }

  private log (line: string): void {
    if (this.traceLines <= 0) return
    this.trace.push(`${this.now.toFixed(1).padStart(9)} ${line}`)
    if (this.trace.length > this.traceLines) this.trace.shift()
  }

  fail (what: string): never {
    const tail = this.trace.length > 0 ? '\n' + this.trace.join('\n') : ''
    const o = this.options
    throw new SimViolation(`seed=${o.seed} (nodes=${this.nodes.length} maxDelay=${o.maxDelayMs} loss=${o.loss}) t=${this.now.toFixed(1)}: ${what}${tail}`)
  }
}

function pairKey (a: SimNode, b: SimNode): string {
  return a.index < b.index ? `${a.index}:${b.index}` : `${b.index}:${a.index}`
}

function short (id: string): string {
  return id.slice(-4)
}

function describe (m: ControlMessage): string {
  switch (m.type) {
    case 'lease': return `lease e${m.epoch}#${m.seq}`
    case 'claim': return `claim e${m.epoch}#${m.seq}`
    case 'grant': return `grant ${short(m.to)} e${m.epoch}#${m.seq}`
    case 'release': return `release e${m.epoch}${m.leaving ? ' leaving' : ''}`
    case 'leave': return 'leave'
    case 'heartbeat': return `hb ${m.role} e${m.epoch}/${m.highestEpoch}${m.leader === undefined ? '' : ' L=' + short(m.leader)}${m.ack === undefined ? '' : ' ack=' + short(m.ack.to) + '#' + m.ack.seq}`
  }
}

function deepFreeze (v: unknown): void {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return
  Object.freeze(v)
  for (const x of Object.values(v)) deepFreeze(x)
}

export interface ScenarioSummary {
  seed: number
  nodes: number
  maxDelayMs: number
  loss: number
  durationMs: number
  faults: string[]
  stats: SimStats
}

export interface ScenarioOptions {
  /** Simulated time with faults, before the fault-free tail. */
  durationMs?: number
  tailMs?: number
  traceLines?: number
  /** Override the node count (3..25 by default). */
  nodes?: number
}

/**
 * One random scenario: 3..25 nodes (small ones more often), a random delay
 * bound, loss rate and clock drift, and a random schedule of crashes,
 * restarts, pauses, partitions and heals. Ends with everything healed and
 * restarted and a fault-free tail, after which exactly one coordinator must
 * hold. Throws SimViolation (message starts with the seed) on any violation.
 */
export function runRandomScenario (seed: number, options: ScenarioOptions = {}): ScenarioSummary {
  const rng = new Prng(seed)
  const nodes = options.nodes ?? pickNodeCount(rng)
  const maxDelayMs = rng.pick([2, 10, 30, 80, 150, 250])
  const loss = rng.pick([0, 0, 0, 0.01, 0.02, 0.05, 0.1, 0.2])
  const config = resolveElectionConfig()
  const durationMs = options.durationMs ?? 90_000
  const tailMs = options.tailMs ?? 25_000
  const sim = new SimNetwork({ seed, maxDelayMs, loss, driftMax: config.driftBound / 2, traceLines: options.traceLines })
  const ids = peerIds(rng, nodes)
  for (const id of ids) sim.addNode(id)
  for (const id of ids) sim.at(rng.float(0, 3000), () => sim.start(id))

  const faults: string[] = []
  const act = rng.fork()
  const down = (): string[] => ids.filter(id => !sim.isUp(id))
  const restartLater = (id: string): void => {
    if (act.chance(0.8)) sim.at(sim.now + act.float(300, 20_000), () => sim.restart(id))
  }
  for (let t = 8000 + rng.float(0, 4000); t < durationMs; t += rng.float(1500, 15_000)) {
    const r = rng.next()
    sim.at(t, () => {
      const up = sim.upIds()
      if (r < 0.2) {
        const c = sim.coordinators()
        const victim = c.length > 0 ? act.pick(c) : act.pick(up)
        if (up.length <= 1) return
        faults.push('crash-coordinator')
        sim.crash(victim)
        restartLater(victim)
      } else if (r < 0.4) {
        if (up.length <= 1) return
        const k = act.chance(0.2) ? act.int(1, Math.max(1, Math.floor((up.length - 1) / 2))) : 1
        faults.push(`crash-${k}`)
        for (const victim of act.shuffle([...up]).slice(0, k)) {
          sim.crash(victim)
          restartLater(victim)
        }
      } else if (r < 0.6) {
        const groups = randomGroups(act, ids, act.int(2, 3))
        faults.push(`partition-${groups.length}`)
        sim.partition(groups)
        if (act.chance(0.85)) sim.at(sim.now + act.float(500, 25_000), () => sim.heal())
      } else if (r < 0.67) {
        faults.push('regroup')
        sim.partition(randomGroups(act, ids, act.int(2, 4)))
      } else if (r < 0.8) {
        const c = sim.coordinators()
        const who = c.length > 0 && act.chance(0.7) ? act.pick(c) : act.pick(up)
        faults.push('pause')
        sim.pause(who, act.float(200, 8000))
      } else if (r < 0.9) {
        faults.push('heal')
        sim.heal()
      } else {
        faults.push('restart-all')
        for (const id of down()) sim.restart(id)
      }
    })
  }
  sim.at(durationMs, () => {
    sim.heal()
    for (const id of down()) sim.restart(id)
  })
  // Liveness at the end: sampled over the last 10 s of the fault-free tail.
  // Without loss every sample must show one coordinator that everyone
  // follows; with loss a lease can lapse now and then (all acks of a few
  // renewals lost), so most samples must show one coordinator.
  const samples = 20
  const problems: string[] = []
  for (let i = 0; i < samples; i++) {
    sim.run(durationMs + tailMs - 10_000 + i * 500)
    const p = sim.settledProblem(loss === 0)
    if (p !== undefined) problems.push(p)
  }
  sim.run(durationMs + tailMs)
  if (loss === 0 ? problems.length > 0 : problems.length > samples / 5) sim.fail(`after the quiet tail, ${problems.length}/${samples} samples unsettled: ${problems[0]}`)
  return { seed, nodes, maxDelayMs, loss, durationMs, faults, stats: sim.stats }
}

function pickNodeCount (rng: Prng): number {
  const r = rng.next()
  if (r < 0.55) return rng.int(3, 7)
  if (r < 0.85) return rng.int(8, 14)
  return rng.int(15, 25)
}

function randomGroups (rng: Prng, ids: readonly string[], k: number): string[][] {
  const groups: string[][] = Array.from({ length: k }, () => [])
  for (const id of ids) groups[rng.int(0, k - 1)].push(id)
  return groups.filter(g => g.length > 0)
}

/**
 * A member that lies in its own name (docs/election.md, "Byzantine peers"): every tick (100 ms of its clock) it
 * claims the epoch above the highest it has heard, grants to its own claims included (so its epoch climbs while
 * anyone grants it), and every heartbeat period it says it is the coordinator of that epoch. It never grants, acks,
 * releases or announces a lease, so it never holds one: all it does is contradict the holder that a majority
 * renews, and take over any election it can.
 */
export class HostileMember {
  private heard = 0
  private seq = 0
  private lastHeartbeatAt = Number.NEGATIVE_INFINITY

  constructor (readonly self: string, private readonly config: ElectionConfig) {}

  step (input: ElectionInput): ElectionEffect[] {
    switch (input.type) {
      case 'receive':
        this.heard = Math.max(this.heard, ...epochsIn(input.message))
        return []
      case 'start':
      case 'nudge':
        return [this.heartbeat(input.now)]
      case 'tick': {
        const out: ElectionEffect[] = [{ type: 'publish', message: { type: 'claim', v: 1, from: this.self, epoch: this.heard + 1, seq: this.seq++, durationMs: this.config.leaseMs } }]
        if (input.now - this.lastHeartbeatAt >= this.config.heartbeatMs) out.push(this.heartbeat(input.now))
        return out
      }
      default:
        return []
    }
  }

  private heartbeat (now: number): ElectionEffect {
    this.lastHeartbeatAt = now
    const epoch = this.heard + 1
    return { type: 'publish', message: { type: 'heartbeat', v: 1, from: this.self, info: SIM_INFO, role: 'coordinator', leader: this.self, epoch, highestEpoch: epoch } }
  }
}

function epochsIn (m: ControlMessage): number[] {
  switch (m.type) {
    case 'heartbeat': return [m.epoch, m.highestEpoch]
    case 'leave': return [0]
    default: return [m.epoch]
  }
}

export interface HostileScenarioOptions {
  /** Honest nodes (4 or 5 by default). */
  honest?: number
  /** Crashes, restarts and pauses of honest nodes, partitions and heals; without them, only message loss. */
  faults?: boolean
  /** Simulated time from the hostile member's start to the end of the faults (default 60 leases). */
  durationMs?: number
  /**
   * Fault-free time after that (with faults only; default 45 s). Longer than runRandomScenario's: a node restarted
   * at the end has to find the hostile member out first (up to about three leases without a lease of its own), and
   * if it took the member's epochs meanwhile, to wait for the holder's next bump, up to four leases apart.
   */
  tailMs?: number
  config?: Partial<ElectionConfig>
  traceLines?: number
}

export interface HostileScenarioSummary {
  seed: number
  honest: number
  maxDelayMs: number
  loss: number
  hostile: string
  /** When the hostile member started (the honest ones had elected by then). */
  hostileAt: number
  endAt: number
  faults: Array<{ at: number, what: string }>
  stats: SimStats
  /** Leases that honest nodes began after the hostile member started (new holder, or the same one in a new epoch). */
  leases: SimLease[]
  /** Every 100 ms from hostileAt: how many honest nodes were coordinator; and the holders seen. */
  samples: { total: number, none: number, several: number, holders: string[] }
}

/**
 * Honest nodes elect a coordinator; then a {@link HostileMember} (the lowest PeerId, so that it ranks first) joins
 * and attacks for `durationMs`. Loss and delay are drawn as in {@link runRandomScenario} (loss at most 10 %: beyond
 * that, the honest nodes' own lease lapses now and then). With `faults`, random crashes, restarts and pauses of
 * honest nodes, partitions (the hostile member among them) and heals, then everything healed and restarted and a
 * fault-free tail after which each component must have one coordinator. The simulator's own checks (one
 * coordinator per component, failover, epochs) run throughout. Throws SimViolation on any violation.
 */
export function runHostileScenario (seed: number, options: HostileScenarioOptions = {}): HostileScenarioSummary {
  const rng = new Prng(seed)
  const honest = options.honest ?? rng.int(4, 5)
  const maxDelayMs = rng.pick([2, 10, 30, 80, 150, 250])
  const loss = rng.pick([0, 0.01, 0.02, 0.05, 0.1])
  const config = resolveElectionConfig(options.config)
  const durationMs = options.durationMs ?? 60 * config.leaseMs
  const tailMs = options.faults === true ? options.tailMs ?? 45_000 : 0
  const sim = new SimNetwork({ seed, maxDelayMs, loss, driftMax: config.driftBound / 2, config: options.config, traceLines: options.traceLines })
  const ids = peerIds(rng, honest + 1).sort()
  const hostile = ids[0]
  const good = ids.slice(1)
  for (const id of good) sim.addNode(id)
  sim.addNode(hostile, true)
  for (const id of good) sim.at(rng.float(0, 3000), () => sim.start(id))
  const hostileAt = 15_000
  sim.at(hostileAt, () => sim.start(hostile))

  const faults: Array<{ at: number, what: string }> = []
  const note = (what: string): void => { faults.push({ at: sim.now, what }) }
  const endFaults = hostileAt + durationMs
  if (options.faults === true) {
    const act = rng.fork()
    const restartLater = (id: string): void => {
      sim.at(sim.now + act.float(300, 20_000), () => {
        if (sim.isUp(id)) return
        note(`restart ${short(id)}`)
        sim.restart(id)
      })
    }
    for (let t = hostileAt + 10_000 + rng.float(0, 5000); t < endFaults; t += rng.float(5000, 20_000)) {
      const r = rng.next()
      sim.at(t, () => {
        const up = good.filter(id => sim.isUp(id))
        if (r < 0.3) {
          const c = sim.coordinators()
          if (up.length <= 2) return
          const victim = c.length > 0 ? act.pick(c) : act.pick(up)
          note(`crash ${short(victim)}${c.includes(victim) ? ' (coordinator)' : ''}`)
          sim.crash(victim)
          restartLater(victim)
        } else if (r < 0.45) {
          const c = sim.coordinators()
          const who = c.length > 0 && act.chance(0.7) ? act.pick(c) : act.pick(up)
          note(`pause ${short(who)}`)
          sim.pause(who, act.float(200, 8000))
        } else if (r < 0.75) {
          const groups = randomGroups(act, ids, 2)
          note(`partition ${groups.map(g => '[' + g.map(short).join(' ') + ']').join(' ')}`)
          sim.partition(groups)
          if (act.chance(0.85)) {
            sim.at(sim.now + act.float(500, 25_000), () => {
              note('heal')
              sim.heal()
            })
          }
        } else {
          note('heal')
          sim.heal()
        }
      })
    }
    sim.at(endFaults, () => {
      note('heal, restart all')
      sim.heal()
      for (const id of good) if (!sim.isUp(id)) sim.restart(id)
    })
  }

  sim.run(hostileAt)
  const samples = { total: 0, none: 0, several: 0, holders: [] as string[] }
  const endAt = endFaults + tailMs
  const settleProblems: string[] = []
  for (let t = hostileAt + 100; t <= endAt; t += 100) {
    sim.run(t)
    const c = sim.coordinators()
    samples.total++
    if (c.length === 0) samples.none++
    if (c.length > 1) samples.several++
    for (const id of c) if (!samples.holders.includes(id)) samples.holders.push(id)
    if (options.faults === true && t > endAt - 10_000 && t % 500 === 0) {
      const p = sim.settledProblem(loss === 0)
      if (p !== undefined) settleProblems.push(p)
    }
  }
  if (options.faults === true) {
    const n = 20
    if (loss === 0 ? settleProblems.length > 0 : settleProblems.length > n / 5) sim.fail(`after the quiet tail, ${settleProblems.length}/${n} samples unsettled: ${settleProblems[0]}`)
  }
  const leases = sim.stats.leases.filter(l => l.at > hostileAt)
  return { seed, honest, maxDelayMs, loss, hostile, hostileAt, endAt, faults, stats: sim.stats, leases, samples }
}
