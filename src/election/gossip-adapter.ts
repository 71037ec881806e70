import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../util/logger.js'
import { errorMessage } from '../util/errors.js'
import { sleep } from '../util/sleep.js'
import { CONTROL_TOPIC } from '../protocol/ids.js'
import type { InfoResponse } from '../protocol/info.js'
import { createLogLimiter } from '../util/log-limiter.js'
import { createSenderRate, type SenderRateOptions } from './sender-rate.js'
import {
  decodeControlMessage, encodeControlMessage,
  type ControlMessage, type ElectionEffect, type ElectionNode, type ElectionView, type MemberInfo
} from './index.js'

/** The election as the adapter drives it: every input through `step`. ElectionNode satisfies it. */
export type ElectionMachine = Pick<ElectionNode, 'step' | 'view' | 'isCoordinator'>

export type ValidationVerdict = 'accept' | 'ignore' | 'reject'

type Refusal = 'invalid' | 'local'

/** What gossipsub hands us; both the signed and the unsigned flavour. */
export type GossipMessage =
  | { type: 'signed', from: PeerId, topic: string, data: Uint8Array }
  | { type: 'unsigned', topic: string, data: Uint8Array }

/** The part of gossipsub the adapter uses (the node builds it from @libp2p/gossipsub). */
export interface ControlPubSub {
  subscribe: (topic: string) => void
  unsubscribe: (topic: string) => void
  publish: (topic: string, data: Uint8Array) => Promise<unknown>
  /** Returns the function that removes the listener. */
  onMessage: (listener: (message: GossipMessage) => void) => () => void
  /** Runs before delivery and before forwarding; undefined removes it. */
  setValidator: (topic: string, validator: ((peer: PeerId, message: GossipMessage) => ValidationVerdict) | undefined) => void
}

export interface GossipElectionInit {
  pubsub: ControlPubSub
  election: ElectionMachine
  log: Logger
  topic?: string
  /** How often the state machine is ticked. */
  tickMs?: number
  /**
   * Milliseconds, monotonic within the process. The default is wall-clock
   * aligned (timeOrigin + performance.now()) so that numbers from different
   * processes on one machine are comparable in logs, yet never jump back.
   */
  clock?: () => number
  onEffect?: (effect: Exclude<ElectionEffect, { type: 'publish' }>) => void
  /** How many control messages a second each author may publish (default DEFAULT_SENDER_RATE, see sender-rate.ts). */
  senderRate?: Partial<SenderRateOptions>
}

export interface GossipElection {
  start: () => void
  /** Runs the machine's stop effects (a resigning coordinator says so) and leaves the topic. */
  stop: (options?: { signal?: AbortSignal }) => Promise<void>
  view: () => ElectionView
  isCoordinator: () => boolean
  setInfo: (info: MemberInfo) => void
  /** A peer joined the control topic: let the election announce itself to it at once. */
  nudge: () => void
  /** Counters for tests and benchmarks. */
  stats: () => GossipElectionStats
}

/** The control topic's counters, as `status` shows them (InfoResponse's `control`), less the mesh's discovery check. */
export type GossipElectionStats = Omit<Required<NonNullable<InfoResponse['control']>>, 'discoveryDropped'>

export const DEFAULT_TICK_MS = 100

/**
 * Epochs are adopted from any member's message (by nodes not bound to a live
 * lease, docs/election.md), and a node claims
 * `highest + 1`. A message at or near Number.MAX_SAFE_INTEGER (the schema's
 * own bound) made every node adopt it, persist it in election.json, and then
 * claim an epoch past 2^53 that no node's schema accepts: heartbeats stopped
 * decoding, members looked dead to each other, and no coordinator was ever
 * elected again, restarts included (found by test/cluster/fuzz.test.ts). So the
 * adapter refuses epochs above MAX_EPOCH, which leaves 2^53 - 2^50 claims of
 * headroom, and epochs more than MAX_EPOCH_JUMP above the highest this node
 * knows: elections move one epoch per claim, so a real member is never that
 * far ahead (a million failed claims, weeks of a lost partition), while a
 * forged jump would need a billion messages to exhaust the range.
 */
export const MAX_EPOCH = 2 ** 50
export const MAX_EPOCH_JUMP = 2 ** 20

/** Every epoch a control message carries. */
function epochsOf (m: ControlMessage): number[] {
  switch (m.type) {
    case 'heartbeat': return [m.epoch, m.highestEpoch, m.ack?.epoch ?? 0, m.promise?.epoch ?? 0]
    case 'leave': return []
    default: return [m.epoch]
  }
}

export function defaultClock (): number {
  return performance.timeOrigin + performance.now()
}

/**
 * The only place where the pure election state machine meets the network.
 * It turns gossipsub messages on the control topic into `receive` calls, a
 * 100 ms timer into `tick` calls, and `publish` effects into gossip; every
 * other effect goes to the owner through `onEffect`.
 *
 * Trust: gossipsub signs every message (StrictSign), so `message.from` is the
 * proven author. A control message whose own `from` names someone else is a
 * forgery (or a bug) and is rejected in the topic validator, which also stops
 * gossipsub from forwarding it and lowers the sender's peer score. So is
 * anything that does not decode. Drops are logged, rate-limited per sender.
 */
export function createGossipElection (init: GossipElectionInit): GossipElection {
  const { pubsub, election, log } = init
  const topic = init.topic ?? CONTROL_TOPIC
  const tickMs = init.tickMs ?? DEFAULT_TICK_MS
  const clock = init.clock ?? defaultClock
  const limiter = createLogLimiter(1_000)
  const stats: GossipElectionStats = { received: 0, dropped: 0, rateDropped: 0, published: 0, publishedBytes: 0 }
  const rate = createSenderRate(init.senderRate)
  // When the ticks come late, this node was not listening (see sender-rate.ts on stalls).
  let lastTickAt = Number.POSITIVE_INFINITY
  let lastStall = { ms: 0, until: Number.NEGATIVE_INFINITY }
  const noteTick = (now: number): void => {
    const late = now - lastTickAt - tickMs
    // Its backlog is handled within about as long again.
    if (late > tickMs) lastStall = { ms: late, until: now + late }
    lastTickAt = now
  }
  const stalledMs = (now: number): number => Math.max(0, now - lastTickAt - tickMs, now < lastStall.until ? lastStall.ms : 0)
  let timer: NodeJS.Timeout | undefined
  let running = false
  let unlisten: (() => void) | undefined
  const pending = new Set<Promise<unknown>>()

  /** `reason` is a fixed word (the rate-limit key); `detail` may carry remote data. */
  const drop = (sender: string, reason: string, detail?: string): void => {
    stats.dropped++
    const suppressed = limiter.admit(`${sender}:${reason}`)
    if (suppressed === undefined) return
    log.warn({ topic, peer: sender, reason, detail, suppressed }, 'dropped control message')
  }

  /**
   * Decode and authenticate; a refusal (and a log line) when the message must not be used: 'invalid' whoever
   * relays it, 'local' when only this node's own state refuses it, which a node relaying it could not know.
   */
  const check = (message: GossipMessage): ControlMessage | Refusal => {
    if (message.type !== 'signed') {
      drop('unknown', 'unsigned')
      return 'invalid'
    }
    const sender = message.from.toString()
    const decoded = decodeControlMessage(message.data)
    if (decoded === undefined) {
      drop(sender, 'does not decode')
      return 'invalid'
    }
    if (decoded.from !== sender) {
      drop(sender, 'forged sender', `claims to be from ${decoded.from.slice(0, 80)}`)
      return 'invalid'
    }
    const epoch = Math.max(0, ...epochsOf(decoded))
    if (epoch > MAX_EPOCH) {
      drop(sender, 'epoch out of range', `epoch ${epoch}`)
      return 'invalid'
    }
    if (epoch > election.view(clock()).highestEpoch + MAX_EPOCH_JUMP) {
      drop(sender, 'epoch out of range', `epoch ${epoch}`)
      return 'local'
    }
    return decoded
  }

  const apply = (effects: ElectionEffect[]): void => {
    for (const effect of effects) {
      if (effect.type === 'publish') {
        publish(effect.message)
        continue
      }
      switch (effect.type) {
        case 'role-changed':
          log.info({ role: effect.role, epoch: effect.epoch, leader: effect.leader }, 'election role changed')
          break
        case 'member-changed':
          log.info({ peer: effect.peer, liveness: effect.liveness }, 'member changed')
          break
        default:
          break
      }
      try {
        init.onEffect?.(effect)
      } catch (err) {
        log.error({ err: errorMessage(err), effect: effect.type }, 'election effect handler failed')
      }
    }
  }

  const publish = (message: ControlMessage): void => {
    let bytes: Uint8Array
    try {
      bytes = encodeControlMessage(message)
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'cannot encode control message')
      return
    }
    stats.published++
    stats.publishedBytes += bytes.byteLength
    const p = pubsub.publish(topic, bytes).catch((err: unknown) => {
      // No subscriber yet, or a stream that just closed: the next heartbeat repeats it.
      log.debug({ err: errorMessage(err) }, 'control publish failed')
    })
    pending.add(p)
    void p.finally(() => pending.delete(p))
  }

  /**
   * A reject lowers the gossipsub score of the peer that handed us the message (`peer`, the propagation
   * source), and enough of them graylist it (GOSSIP_SCORE_PARAMS in src/node/libp2p.ts). A message that any
   * node would refuse is the relay's fault as much as the author's, since an honest relay validated it first.
   * One that this node alone refuses, by its own epoch or by its own count of the author's rate, is rejected
   * only from its author: a relay that accepted it by its own count is ignored, not charged. Rate refusals wait
   * out a grace past the author's burst (sender-rate.ts): gossipsub charges a relay for a copy of a message we
   * already rejected, and until then another node may still have admitted it.
   */
  const validator = (peer: PeerId, message: GossipMessage): ValidationVerdict => {
    if (message.type === 'signed') {
      // Before decoding: a flood is thousands of messages a second, and this is all of it that gets looked at.
      const fromAuthor = peer.equals(message.from)
      const author = message.from.toString()
      const now = clock()
      const verdict = rate.admit(author, now, stalledMs(now))
      if (verdict !== 'ok') {
        stats.rateDropped++
        drop(author, 'over rate')
        return verdict === 'flood' && fromAuthor ? 'reject' : 'ignore'
      }
      const checked = check(message)
      if (checked === 'local') return fromAuthor ? 'reject' : 'ignore'
      return checked === 'invalid' ? 'reject' : 'accept'
    }
    return check(message) === 'invalid' ? 'reject' : 'accept'
  }

  const onMessage = (message: GossipMessage): void => {
    if (message.topic !== topic || !running) return
    // The validator already ran; checking again costs microseconds and keeps
    // this handler safe even if a validator is replaced.
    const decoded = check(message)
    if (typeof decoded === 'string') return
    stats.received++
    try {
      apply(election.step({ type: 'receive', message: decoded, now: clock() }))
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'election rejected a message')
    }
  }

  const tick = (): void => {
    noteTick(clock())
    try {
      apply(election.step({ type: 'tick', now: clock() }))
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'election tick failed')
    }
  }

  return {
    start () {
      if (running) return
      running = true
      pubsub.setValidator(topic, validator)
      unlisten = pubsub.onMessage(onMessage)
      pubsub.subscribe(topic)
      apply(election.step({ type: 'start', now: clock() }))
      lastTickAt = clock()
      timer = setInterval(tick, tickMs)
    },
    async stop (options = {}) {
      if (!running) return
      running = false
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      apply(election.step({ type: 'stop', now: clock() }))
      // Give the farewell a moment on the wire, but never hold shutdown hostage to it.
      // Nothing of the adapter may outlive stop(): the limit's timer and the abort listener go when the wait ends.
      const waited = new AbortController()
      const signal = options.signal === undefined ? waited.signal : AbortSignal.any([options.signal, waited.signal])
      try {
        await Promise.race([Promise.allSettled([...pending]), sleep(250, { signal })])
      } catch {
        // Aborted: the farewell is given up, as asked.
      } finally {
        waited.abort()
      }
      unlisten?.()
      unlisten = undefined
      pubsub.setValidator(topic, undefined)
      try {
        pubsub.unsubscribe(topic)
      } catch {
        // Already stopped: nothing to leave.
      }
    },
    view: () => election.view(clock()),
    isCoordinator: () => election.isCoordinator(clock()),
    setInfo: (info) => { apply(election.step({ type: 'set-info', info })) },
    nudge: () => {
      if (!running) return
      try {
        apply(election.step({ type: 'nudge', now: clock() }))
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'election nudge failed')
      }
    },
    stats: () => ({ ...stats })
  }
}
