import '../../src/util/polyfills.js'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { controlPubSub } from '../../src/election/control-pubsub.js'
import { createGossipElection, type ElectionMachine, type GossipElection } from '../../src/election/gossip-adapter.js'
import { ElectionNode, encodeControlMessage, type MemberInfo } from '../../src/election/index.js'
import { DEFAULT_SENDER_RATE } from '../../src/election/sender-rate.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { createConnectionGater } from '../../src/node/gater.js'
import { GOSSIP_SCORE_THRESHOLDS, graylistedPeers } from '../../src/node/gossip-scoring.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/node/libp2p.js'
import { CONTROL_TOPIC } from '../../src/protocol/ids.js'
import { TEST_ELECTION_ENV, TEST_LEASE_MS } from '../support/cluster-views.js'
import { Flooder, type FloodStats } from '../support/gossip-flooder.js'

/**
 * Issue #19: a member publishing 5,000 well-formed, signed control messages a second is graylisted by every
 * honest node (gossipsub then drops its RPCs unverified, and the node stops reading its gossip stream), while
 * the honest nodes keep one coordinator whose lease never lapses and keep hearing each other's heartbeats.
 * Real libp2p over loopback TCP and the real election with the tests' short lease. The three nodes share this
 * thread, which makes a flood three times as heavy for each as it would be for a node in a process of its own;
 * the flooder has a thread of its own (test/support/gossip-flooder.worker.mjs) so that it keeps its rate and
 * this thread's figures are the nodes'.
 */

const FLOOD_PER_SECOND = 5_000
/** A generous bound: the measured time is printed (the issue's target is 10 s). */
const GRAYLIST_DEADLINE_MS = 30_000
/** How long the flood goes on after the last node graylisted the flooder: the election must hold under it too. */
const FLOOD_AFTER_GRAYLIST_MS = 8_000
/** The part of that in which what the flooder had in flight (a paused stream's window) still arrives. */
const DRAIN_MS = 3_000

const ELECTION = {
  leaseMs: TEST_LEASE_MS,
  heartbeatMs: Number(TEST_ELECTION_ENV.MRP2P_HEARTBEAT_MS),
  suspectAfterMs: Number(TEST_ELECTION_ENV.MRP2P_SUSPECT_AFTER_MS),
  deadAfterMs: Number(TEST_ELECTION_ENV.MRP2P_DEAD_AFTER_MS)
}

const INFO: MemberInfo = { addrs: [], slots: 1, running: 0, worker: true, version: 'test' }

/** What one node heard from one author: for gaps between messages and the author's peak rate. */
interface Heard {
  count: number
  last: number
  maxGap: number
  /** Arrival times within the last second. */
  window: number[]
  peakPerSecond: number
}

interface Honest {
  id: string
  libp2p: MeshLibp2p
  adapter: GossipElection
  heard: Map<string, Heard>
  graylistedAtMs?: number
}

function hear (heard: Map<string, Heard>, from: string, now: number): void {
  let h = heard.get(from)
  if (h === undefined) {
    h = { count: 0, last: now, maxGap: 0, window: [], peakPerSecond: 0 }
    heard.set(from, h)
  }
  h.count++
  h.maxGap = Math.max(h.maxGap, now - h.last)
  h.last = now
  h.window.push(now)
  while (h.window.length > 0 && h.window[0] <= now - 1_000) h.window.shift()
  h.peakPerSecond = Math.max(h.peakPerSecond, h.window.length)
}

async function honestNode (): Promise<Honest> {
  const libp2p = await createMeshLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    connectionGater: createConnectionGater({ has: () => false }),
    discoveryIntervalMs: 60_000,
    version: 'test'
  })
  await libp2p.start()
  const id = libp2p.peerId.toString()
  const election = new ElectionNode({ self: id, config: ELECTION, random: Math.random, info: INFO })
  const heard = new Map<string, Heard>()
  // The election as the adapter drives it, noting every message that got through the validator.
  const machine: ElectionMachine = {
    step: (input) => {
      if (input.type === 'receive') hear(heard, input.message.from, performance.now())
      return election.step(input)
    },
    view: (now) => election.view(now),
    isCoordinator: (now) => election.isCoordinator(now)
  }
  const adapter = createGossipElection({ pubsub: controlPubSub(libp2p.services.pubsub), election: machine, log: pino({ level: 'warn' }, { write: () => {} }), tickMs: 100 })
  adapter.start()
  return { id, libp2p, adapter, heard }
}

/** gossipsub's own record of a peer's penalties (not in its exported type): to say which one moved a score. */
function penalties (n: Honest, peer: string): { invalid: number, behaviour: number } {
  const stats = (n.libp2p.services.pubsub as unknown as { score?: { peerStats?: Map<string, { behaviourPenalty: number, topics: Record<string, { invalidMessageDeliveries: number }> }> } }).score?.peerStats?.get(peer)
  return { invalid: stats?.topics[CONTROL_TOPIC]?.invalidMessageDeliveries ?? 0, behaviour: stats?.behaviourPenalty ?? 0 }
}

function scoreOf (n: Honest, peer: string): number {
  return (n.libp2p.services.pubsub as unknown as { getScore: (p: string) => number }).getScore(peer)
}

/** The longest time `n` went without a control message of `id` since the flood began, the silence up to `now` included. */
function silence (n: Honest, id: string, now: number): number {
  const h = n.heard.get(id)
  return h === undefined ? Infinity : Math.max(h.maxGap, now - h.last)
}

const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`

describe('gossipsub peer scoring on the control topic', () => {
  let nodes: Honest[] = []
  let flooder: Flooder | undefined

  beforeAll(async () => {
    nodes = await Promise.all([honestNode(), honestNode(), honestNode()])
    await nodes[0].libp2p.dial(nodes[1].libp2p.getMultiaddrs()[0])
    await nodes[0].libp2p.dial(nodes[2].libp2p.getMultiaddrs()[0])
    await nodes[1].libp2p.dial(nodes[2].libp2p.getMultiaddrs()[0])
    flooder = new Flooder(nodes.map(n => n.libp2p.getMultiaddrs()[0].toString()))
    await flooder.ready()
  })

  afterAll(async () => {
    await flooder?.terminate()
    await Promise.all(nodes.map(async n => { await n.adapter.stop() }))
    await Promise.all(nodes.map(async n => { await n.libp2p.stop() }))
  })

  it(`graylists a member publishing ${FLOOD_PER_SECOND} control messages a second; no lease lapses, heartbeats keep arriving`, async () => {
    if (flooder === undefined) throw new Error('no flooder')
    const f = flooder
    const flooderId = f.peerId
    const ids = nodes.map(n => n.id)
    const name = (id: string): string => id === flooderId ? 'the flooder' : ids.includes(id) ? `node ${ids.indexOf(id)}` : id

    // One coordinator that every node follows, before anything else.
    const leader = await waitFor(() => {
      const coordinators = nodes.filter(n => n.adapter.isCoordinator())
      if (coordinators.length !== 1) return undefined
      const id = coordinators[0].id
      return nodes.every(n => { const v = n.adapter.view(); return v.leader === id && v.leaseValid }) ? id : undefined
    }, { timeoutMs: 20_000, intervalMs: 50, description: 'the three nodes to agree on a coordinator' })

    // The flooder is a member: every node has heard its heartbeats before the flood, which repeats them.
    f.setBytes(encodeControlMessage({ type: 'heartbeat', v: 1, from: flooderId, info: { ...INFO, version: 'flood' }, role: 'follower', epoch: 0, highestEpoch: 0 }))
    await waitFor(async () => {
      await f.publishOne()
      return nodes.every(n => n.adapter.view().members.some(m => m.peer === flooderId && m.liveness === 'alive'))
    }, { timeoutMs: 10_000, intervalMs: ELECTION.heartbeatMs, description: 'every node to count the flooder as a live member' })
    const calmPeak = Math.max(...nodes.flatMap(n => ids.filter(id => id !== n.id).map(id => n.heard.get(id)?.peakPerSecond ?? 0)))

    // From here on: gaps between honest messages, views, scores, this thread's event loop and memory.
    const floodStart = performance.now()
    const seconds = (t: number): string => `${((t - floodStart) / 1000).toFixed(2)} s`
    for (const n of nodes) for (const id of ids) { const h = n.heard.get(id); if (h !== undefined) { h.last = floodStart; h.maxGap = 0 } }
    const takenBefore = nodes.map(n => n.heard.get(flooderId)?.count ?? 0)
    const taken = (): number[] => nodes.map((n, i) => (n.heard.get(flooderId)?.count ?? 0) - takenBefore[i])
    const violations: string[] = []
    let samples = 0
    let lowest = { score: 0, at: '', invalid: 0, behaviour: 0 }
    const rssBefore = process.memoryUsage().rss
    let peakRss = rssBefore
    const sampler = setInterval(() => {
      samples++
      const t = seconds(performance.now())
      for (const n of nodes) {
        const v = n.adapter.view()
        if (v.leader !== leader || !v.leaseValid) violations.push(`${t}: ${name(n.id)} follows ${v.leader === undefined ? 'nobody' : name(v.leader)}, lease ${v.leaseValid ? 'valid' : 'lapsed'}`)
        for (const other of ids) {
          if (other === n.id) continue
          const score = scoreOf(n, other)
          if (score < lowest.score) lowest = { score, at: `${name(other)} at ${name(n.id)}`, ...penalties(n, other) }
        }
        for (const p of graylistedPeers(n.libp2p.services.pubsub)) if (p !== flooderId) violations.push(`${t}: ${name(n.id)} graylisted ${name(p)}`)
      }
      const acting = nodes.filter(n => n.adapter.isCoordinator()).length
      if (acting !== 1) violations.push(`${t}: ${acting} nodes act as coordinator`)
      peakRss = Math.max(peakRss, process.memoryUsage().rss)
    }, 50)
    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    loopDelay.enable()
    const elu = { start: performance.eventLoopUtilization(), graylisted: performance.eventLoopUtilization(), drained: performance.eventLoopUtilization() }
    let takenAtGraylist: number[] = []
    let takenDrained: number[] = []
    let flooderRefusals: number[] = []
    let pausedAtEnd: boolean[] = []
    let flooded: FloodStats | undefined

    const report = (): void => {
      const now = performance.now()
      const busy = (from: typeof elu.start, to?: typeof elu.start): string =>
        `${Math.round((to === undefined ? performance.eventLoopUtilization(from) : performance.eventLoopUtilization(to, from)).utilization * 100)} %`
      console.log([
        flooded === undefined ? 'flood: still running' : `flood: ${flooded.published} messages in ${(flooded.elapsedMs / 1000).toFixed(1)} s = ${Math.round(flooded.published / (flooded.elapsedMs / 1000))}/s (${flooded.errors} publish errors), flooder thread busy ${Math.round(flooded.loopBusy * 100)} %`,
        `graylisted after: ${nodes.map((n, i) => `node ${i} ${n.graylistedAtMs === undefined ? 'never' : `${(n.graylistedAtMs / 1000).toFixed(2)} s`}`).join(', ')}; its gossip stream paused at the end: ${pausedAtEnd.join(', ')}`,
        `flooder messages the election took: ${takenAtGraylist.join(', ')} until graylisted, ${takenDrained.join(', ')} ${DRAIN_MS / 1000} s after, ${taken().join(', ')} in all (bucket burst ${DEFAULT_SENDER_RATE.burst}); refused over rate: ${nodes.map(n => n.adapter.stats().rateDropped).join(', ')}; its invalid deliveries at graylisting: ${flooderRefusals.join(', ')}`,
        `longest silence of each honest peer (lease ${ELECTION.leaseMs} ms, heartbeat ${ELECTION.heartbeatMs} ms): ${nodes.map((n, i) => ids.filter(id => id !== n.id).map(id => `${ids.indexOf(id)}→${i} ${Math.round(silence(n, id, now))} ms`).join(', ')).join(', ')}`,
        `honest peak rate per author: ${calmPeak}/s before the flood (the first election included), ${Math.max(...nodes.flatMap(n => ids.filter(id => id !== n.id).map(id => n.heard.get(id)?.peakPerSecond ?? 0)))}/s in all`,
        `lowest score of an honest peer: ${lowest.score}${lowest.at === '' ? '' : ` (${lowest.at}: invalid deliveries ${lowest.invalid.toFixed(1)}, behaviour ${lowest.behaviour.toFixed(1)})`}, graylisted below ${GOSSIP_SCORE_THRESHOLDS.graylistThreshold}`,
        `${samples} view samples, ${violations.length} violations${violations.length === 0 ? '' : `, first: ${violations.slice(0, 4).join('; ')}`}`,
        `the nodes' thread busy ${busy(elu.start, takenAtGraylist.length === 0 ? undefined : elu.graylisted)} until graylisted` +
          (takenAtGraylist.length === 0 ? '' : `, ${busy(elu.graylisted, elu.drained)} in the ${DRAIN_MS / 1000} s after, ${busy(elu.drained)} from then to the end of the flood`) +
          `; event loop delay p99 ${Math.round(loopDelay.percentile(99) / 1e6)} ms, max ${Math.round(loopDelay.max / 1e6)} ms`,
        `RSS ${mib(rssBefore)} before the flood, at most ${mib(peakRss)} during it (the whole process, flooder thread included)`
      ].join('\n'))
    }

    f.flood(FLOOD_PER_SECOND)
    try {
      await waitFor(() => {
        const now = performance.now()
        for (const n of nodes) {
          if (n.graylistedAtMs === undefined && graylistedPeers(n.libp2p.services.pubsub).includes(flooderId)) n.graylistedAtMs = now - floodStart
        }
        return nodes.every(n => n.graylistedAtMs !== undefined)
      }, { timeoutMs: GRAYLIST_DEADLINE_MS, intervalMs: 50, description: 'every honest node to graylist the flooder' })
      takenAtGraylist = taken()
      flooderRefusals = nodes.map(n => Math.round(penalties(n, flooderId).invalid))
      elu.graylisted = performance.eventLoopUtilization()
      // The flood goes on: the nodes must keep the lease under it, and it must cost them little once graylisted.
      const graylistedAt = performance.now()
      await waitFor(() => performance.now() >= graylistedAt + DRAIN_MS, { timeoutMs: DRAIN_MS + 5_000, intervalMs: 100, description: 'the flood to go on' })
      elu.drained = performance.eventLoopUtilization()
      takenDrained = taken()
      await waitFor(() => performance.now() >= graylistedAt + FLOOD_AFTER_GRAYLIST_MS, { timeoutMs: FLOOD_AFTER_GRAYLIST_MS + 5_000, intervalMs: 100, description: 'the flood to go on' })
      pausedAtEnd = nodes.map(n => n.libp2p.services.graylist.paused().includes(flooderId))
      flooded = await f.stop()
    } catch (err) {
      report()
      throw err
    } finally {
      clearInterval(sampler)
      loopDelay.disable()
      if (flooded === undefined) await f.stop().catch(() => {})
    }
    report()
    const now = performance.now()

    expect(violations.slice(0, 10)).toEqual([])
    expect(pausedAtEnd).toEqual(nodes.map(() => true))
    // Nothing more of the flooder got through once graylisted and drained: its debt outlasts the flood. Copies an
    // honest node accepted before it graylisted the flooder may still reach the others in the drain, more of them
    // when the machine is busy (seen: 31, 26, 46 at graylisting, 55, 50, 63 at the end, beside other test files),
    // but never more than its rate bucket lets through.
    expect(taken()).toEqual(takenDrained)
    for (let i = 0; i < nodes.length; i++) expect(takenDrained[i] - takenAtGraylist[i]).toBeLessThanOrEqual(DEFAULT_SENDER_RATE.burst + DEFAULT_SENDER_RATE.perSecond * DRAIN_MS / 1000)
    for (const n of nodes) {
      for (const id of ids) if (id !== n.id) expect(silence(n, id, now), `the longest silence of ${name(id)} at ${name(n.id)}`).toBeLessThan(ELECTION.leaseMs)
      // Every refusal was the flood detector's: the flooder's messages are otherwise well-formed.
      const stats = n.adapter.stats()
      expect(stats.rateDropped).toBeGreaterThan(0)
      expect(stats.dropped).toBe(stats.rateDropped)
    }
  }, GRAYLIST_DEADLINE_MS + FLOOD_AFTER_GRAYLIST_MS + 60_000)
})
