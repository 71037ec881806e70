import '../../src/util/polyfills.js'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { createClientLibp2p } from '../../src/node/client-libp2p.js'
import { MRP2P_VERSION } from '../../src/node/version.js'
import { CONTROL_TOPIC, DISCOVERY_TOPIC, INFO_PROTOCOL } from '../../src/protocol/ids.js'
import type { InfoResponse } from '../../src/protocol/info.js'
import { JOB_PROTOCOLS } from '../../src/protocol/job-messages.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { createGossipFuzzPeer, GossipFuzzer, rawRpcSeeds, seededKey, type GossipFuzzPeer, type GossipFuzzStats } from '../support/fuzz-gossip.js'
import { fuzzSealedSpecs, requestSeeds } from '../support/fuzz-seeds.js'
import { StreamFuzzer, type FuzzProtocol, type StreamFuzzStats, type StreamFuzzTarget } from '../support/fuzz-streams.js'
import { mib, MiB, RssSampler, rssBytes } from '../support/fuzz-watch.js'
import { sortedOutput } from '../support/output.js'
import { Prng } from '../support/prng.js'
import { BOOKS, REFERENCE_CWD, runCli } from '../support/run-cli.js'

/**
 * Issue #6: every message from a peer is validated before use, frames have a
 * maximum size, and a buggy or hostile member can at worst fail the tasks it
 * runs. This test throws at least 100,000 random and mutated frames at every
 * protocol handler and every gossip topic of a live node (and some at the
 * coordinator) while real wc jobs run on the mesh, and checks that the node
 * stays up and answering, every job's output equals the lab's reference, no
 * stream is left pinned, and the node's memory stays bounded and comes back.
 *
 * Nothing is held back: election messages of ours that claim leadership or
 * raise the epoch go out too (a node bound to a live lease takes them from no
 * one but its holder, docs/election.md), as do orders and reports at any
 * epoch and epochs that would overflow.
 *
 * MRP2P_FUZZ_SEED replays a run (the seed is printed, and named in any
 * failure; the interleaving of streams still varies); MRP2P_FUZZ_FRAMES asks
 * for more than the 100,000 minimum.
 */
const SEED = Number(process.env.MRP2P_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32))
const MIN_FRAMES = 100_000
const TARGET_FRAMES = Math.max(MIN_FRAMES, Number(process.env.MRP2P_FUZZ_FRAMES ?? 0))
/** The gossip fuzzer's cap: about what a node here takes at full speed (see GossipFuzzOptions.maxPerSecond). */
const GOSSIP_PER_SECOND = 1_500
/** Gossip members joined before the fuzz starts, for the fuzzer to go on as when the node graylists one. */
const FRESH_MEMBERS = 8
/**
 * No node's RSS may exceed this. A node that has run wc is ~170 MiB (two task threads included) and one running
 * wc tasks up to ~260 MiB; under fire, gossipsub keeps every message id it saw, and a delivery record for scoring,
 * for two minutes: at 1,500 messages a second that is ~100 MiB of live heap, and V8 lets the heap grow to a few
 * times its live size before it collects. Measured peaks of the fuzzed node: 420–500 MiB.
 */
const RSS_BOUND = 640 * MiB
/**
 * After the fuzz (and one more job), the fuzzed node's RSS must come back to within this of what it was after the
 * warm-up job: it came back to 60–150 MiB above it in measured runs, within 45–90 s, as gossipsub's two-minute
 * records expired and V8 gave pages back. A leak of 1.6 KB a frame would stay above it.
 */
const RSS_SLACK = 160 * MiB

const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-fuzz-'))
let runs = 0

let cluster: Cluster | undefined
const peers: Libp2p[] = []
afterAll(async () => {
  await Promise.allSettled(peers.map(async p => { await p.stop() }))
  await cluster?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

async function wc (c: Cluster, via: number): Promise<{ ok: boolean, why: string, ms: number }> {
  const out = join(scratch, `wc-${runs++}`)
  const started = performance.now()
  const res = await runCli(['submit', 'wc', '--input', ...BOOKS, '--reduces', '3', '--split-size', '200000', '--output', out, '--bootstrap', c.nodes[via].addr, '--timeout', '60'], { cwd: REFERENCE_CWD, timeoutMs: 180_000 })
  const ms = performance.now() - started
  if (res.code !== 0) return { ok: false, why: `submit exited ${String(res.code)}: ${res.stderr.trim().slice(-2000)}`, ms }
  const same = sortedOutput(out).equals(readFileSync(join(REFERENCE_CWD, 'wc.txt')))
  const parts = readdirSync(out).sort().join(',')
  if (!same || parts !== '_SUCCESS,part-00000,part-00001,part-00002') return { ok: false, why: `output differs from the reference (files ${parts})`, ms }
  return { ok: true, why: '', ms }
}

async function idle (c: Cluster): Promise<void> {
  await waitFor(async () => {
    const s = await c.sample()
    return s.size === c.running().length && [...s.values()].every(i => i.members.every(m => m.running === 0) && (i.tasks?.running ?? 0) === 0)
  }, { timeoutMs: 30_000, intervalMs: 200, description: 'every node idle' })
}

/** A throw-away client identity connected to `addr`, once identify has told it what the node serves. */
async function connectedClient (rng: Prng, addr: string, peer: PeerId): Promise<Libp2p> {
  const client = await createClientLibp2p({ version: MRP2P_VERSION, privateKey: await seededKey(rng) })
  peers.push(client)
  await client.dial(multiaddr(addr))
  await waitFor(async () => (await client.peerStore.get(peer)).protocols.includes(INFO_PROTOCOL), { timeoutMs: 10_000, description: 'identify of the fuzzed node' })
  return client
}

const OUR_PROTOCOLS: Array<[string, 'reqresp' | 'bulk']> = [
  [INFO_PROTOCOL, 'reqresp'],
  [JOB_PROTOCOLS.submit, 'reqresp'],
  [JOB_PROTOCOLS.status, 'reqresp'],
  [JOB_PROTOCOLS.register, 'reqresp'],
  [JOB_PROTOCOLS.report, 'reqresp'],
  [JOB_PROTOCOLS.doJob, 'reqresp'],
  [JOB_PROTOCOLS.end, 'reqresp'],
  [JOB_PROTOCOLS.cancel, 'reqresp'],
  [JOB_PROTOCOLS.sources, 'reqresp'],
  [JOB_PROTOCOLS.replicate, 'reqresp'],
  [JOB_PROTOCOLS.localRun, 'reqresp'],
  [JOB_PROTOCOLS.fetchRun, 'bulk']
]

/** Counts a node's log lines as they come: errors (kept, the first 20) and the `reason` of every refusal. */
function watchLog (stderr: NodeJS.ReadableStream | undefined): { errors: string[], reasons: Record<string, number> } {
  const seen = { errors: [] as string[], reasons: {} as Record<string, number> }
  let partial = ''
  stderr?.on('data', (chunk: string | Buffer) => {
    const lines = (partial + chunk.toString()).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      const level = /"level":(\d+)/.exec(line)
      if (level !== null && Number(level[1]) >= 50 && seen.errors.length < 20) seen.errors.push(line.slice(0, 1000))
      const reason = /"reason":"([^"]{1,60})"/.exec(line)
      if (reason !== null) seen.reasons[reason[1]] = (seen.reasons[reason[1]] ?? 0) + 1
    }
  })
  return seen
}

function streamsOf (info: InfoResponse | undefined, ours: boolean): number {
  if (info?.streams === undefined) return Number.POSITIVE_INFINITY
  let n = 0
  for (const [protocol, count] of Object.entries(info.streams)) if (protocol.startsWith('/mrp2p/') === ours) n += count
  return n
}

describe('fuzz: hostile frames at a live node while a job runs', () => {
  it(`${MIN_FRAMES}+ random and mutated frames at every protocol handler and gossip topic; node up, output correct, memory bounded`, async () => {
    console.log(`fuzz seed ${SEED} (replay with MRP2P_FUZZ_SEED=${SEED})`)
    const rng = new Prng(SEED)
    const t0 = performance.now()
    try {
      const c = cluster = await startCluster({ nodes: 3, env: { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn' } })
      const agreement = await waitForAgreement(c, c.running(), 30_000)
      const coord = agreement.coordinator
      // The node under fire is a plain member, so the job's coordinator keeps its lease; the coordinator gets a share too.
      const target = c.running().find(i => i !== coord) as number
      const nodeIds = c.nodes.map(n => n.peerId)
      const pidOf = (i: number): number => c.nodes[i].process.pid as number

      // A job without fuzz first: it proves the mesh works and gives the node's memory after a job, with its task threads.
      const warm = await wc(c, target)
      expect(warm.ok, warm.why).toBe(true)
      await idle(c)
      const baseline = rssBytes(pidOf(target)) as number
      console.log(`warm-up wc: ${(warm.ms / 1000).toFixed(1)} s; target node ${target} (coordinator ${coord}) RSS ${mib(baseline)}`)

      // Fuzzing identities: three clients at the target (a stream limit applies per connection), one at the coordinator.
      const targetPeer = peerIdFromString(nodeIds[target])
      const coordPeer = peerIdFromString(nodeIds[coord])
      const targetClients = [
        await connectedClient(rng, c.nodes[target].addr, targetPeer),
        await connectedClient(rng, c.nodes[target].addr, targetPeer),
        await connectedClient(rng, c.nodes[target].addr, targetPeer)
      ]
      const coordClients = [await connectedClient(rng, c.nodes[coord].addr, coordPeer)]

      // Every protocol the node serves, as its identify answer lists them: ours get structured seeds, libp2p's raw bytes.
      const served = (await targetClients[0].peerStore.get(targetPeer)).protocols
      for (const [p] of OUR_PROTOCOLS) expect(served, `the node serves ${p}`).toContain(p)
      const before = await c.info(target)
      const epoch = before?.epoch ?? 0
      const seedRng = rng.fork()
      // Jobs the fuzzer signed for real: their frames reach past the seal checks (issue #19).
      const sealed = await fuzzSealedSpecs(rng.fork(), targetClients[0].peerId.toString(), await seededKey(rng))
      let gossip: GossipFuzzer | undefined
      const protocolsFor = (self: string): FuzzProtocol[] => served.map((protocol): FuzzProtocol => {
        const ours = OUR_PROTOCOLS.find(([p]) => p === protocol)
        // Orders and reports go out at any epoch, the current one and far above included: a worker obeys only the
        // coordinator it follows, and a coordinator takes a report only for an attempt it gave that very peer.
        if (ours !== undefined) return { protocol, kind: ours[1], weight: 10, seeds: () => requestSeeds(protocol, { rng: seedRng, epoch, nodeIds, self, sealed }) }
        const meshsub = protocol.startsWith('/meshsub/') || protocol.startsWith('/floodsub/')
        // libp2p's own handlers take one or two streams per connection at a time.
        return { protocol, kind: 'foreign', weight: meshsub ? 3 : 2, limit: 1, seeds: () => meshsub ? rawRpcSeeds(seedRng, targetClients[0].peerId, gossip?.samples(CONTROL_TOPIC) ?? []) : [] }
      })
      const targets: StreamFuzzTarget[] = [
        { name: `node ${target}`, peer: targetPeer, addr: multiaddr(c.nodes[target].addr), clients: targetClients, protocols: protocolsFor(targetClients[0].peerId.toString()), weight: 4 },
        { name: `coordinator ${coord}`, peer: coordPeer, addr: multiaddr(c.nodes[coord].addr), clients: coordClients, protocols: protocolsFor(coordClients[0].peerId.toString()), weight: 1 }
      ]

      // The gossip fuzzer: a member of the gossip mesh connected to the target only.
      const gossipPeer: GossipFuzzPeer = await createGossipFuzzPeer(await seededKey(rng))
      peers.push(gossipPeer)
      const keyRng = rng.fork()
      // A fresh member joins in seconds under the fuzz (identify, then gossipsub's streams): a pool joined before
      // it starts, topped up in the background, keeps the fuzzer from waiting on each one.
      const joinFresh = async (timeoutMs: number): Promise<GossipFuzzPeer> => {
        const fresh = await createGossipFuzzPeer(await seededKey(keyRng))
        peers.push(fresh)
        try {
          await fresh.dial(multiaddr(c.nodes[target].addr))
          await waitFor(() => fresh.services.pubsub.getSubscribers(CONTROL_TOPIC).some(p => p.equals(targetPeer)), { timeoutMs, description: 'a fresh gossip fuzzer to see the target on the control topic' })
        } catch (err) {
          await fresh.stop()
          throw err
        }
        return fresh
      }
      let topUp = true
      const ready: GossipFuzzPeer[] = await Promise.all(Array.from({ length: FRESH_MEMBERS }, async () => await joinFresh(15_000)))
      gossip = new GossipFuzzer({
        rng: rng.fork(),
        peer: gossipPeer,
        // The node graylists a member that sends it garbage and stops reading it (issue #19): the fuzzer goes on as
        // a fresh member each time, as an attacker with many keys would.
        nextPeer: async () => {
          const next = ready.shift()
          if (topUp) void joinFresh(30_000).then(async (p) => { if (topUp) ready.push(p); else await p.stop() }, () => {})
          return next ?? await joinFresh(4_000)
        },
        target: targetPeer,
        targetAddr: multiaddr(c.nodes[target].addr),
        maxPerSecond: GOSSIP_PER_SECOND,
        nodeIds,
        modes: {
          'own-json-mutated': 8,
          'own-valid-edge': 8,
          'random-bytes': 8,
          'hostile-json': 8,
          'observed-bytes-mutated': 20,
          'observed-json-mutated': 20,
          'own-stale': 8,
          'own-epoch-overflow': 2,
          oversized: 0.1,
          'discovery-mutated': 10,
          'discovery-random': 4,
          'discovery-fake-peer': 4,
          'discovery-self': 0.5
        }
      })
      await gossipPeer.dial(multiaddr(c.nodes[target].addr))
      await waitFor(() => gossipPeer.services.pubsub.getSubscribers(CONTROL_TOPIC).some(p => p.equals(targetPeer)) && gossip.observedCount(CONTROL_TOPIC) >= 3,
        { timeoutMs: 15_000, description: 'the gossip fuzzer to see the target on the control topic and some of its messages' })

      // What the nodes log from here on: the refusals we expect to see, and any error.
      const logged = c.nodes.map(n => watchLog(n.process.child?.stderr ?? undefined))

      const sampler = new RssSampler(() => new Map(c.nodes.map(n => [`node ${n.index}`, n.process.pid])))
      sampler.start()
      const streams = new StreamFuzzer({ rng: rng.fork(), targets, concurrency: 96, perProtocolLimit: 16, endDeadlineMs: 20_000 })
      const fuzzStart = performance.now()
      streams.start()
      gossip.start()
      const frames = (): number => streams.stats.frames + gossip.stats.frames

      // Real jobs, one after another, for as long as the fuzz lasts; each must equal the reference.
      let fuzzing = true
      const jobs: Array<{ ok: boolean, why: string, ms: number }> = []
      const jobLoop = (async () => {
        while (fuzzing) {
          jobs.push(await wc(c, target))
        }
      })()
      let lastReport = performance.now()
      await waitFor(() => {
        const now = performance.now()
        if (now - lastReport > 15_000) {
          lastReport = now
          console.log(`  ${((now - fuzzStart) / 1000).toFixed(0)} s: ${frames()} frames (streams ${streams.stats.frames}, gossip ${gossip.stats.frames}), jobs done ${jobs.length}, node ${target} RSS ${mib(sampler.last.get(`node ${target}`))}`)
        }
        return frames() >= TARGET_FRAMES && jobs.length >= 1
        // A deadline for the count, not a rate: on 2 cores the frames share them with the jobs' tasks (about 350 to
        // 460 frames a second, the lower since reduces pull while maps run).
      }, { timeoutMs: 420_000, intervalMs: 250, description: `${TARGET_FRAMES} frames and one complete job` })
      fuzzing = false
      topUp = false
      const [streamStats, gossipStats] = await Promise.all([streams.stop(), gossip.stop()]) as [StreamFuzzStats, GossipFuzzStats]
      const fuzzMs = performance.now() - fuzzStart
      await jobLoop
      const total = streamStats.frames + gossipStats.frames
      console.log(`fuzz: ${total} frames in ${(fuzzMs / 1000).toFixed(1)} s = ${Math.round(total / (fuzzMs / 1000))} frames/s; streams ${streamStats.frames} frames on ${streamStats.streams} streams, gossip ${gossipStats.frames} messages`)
      console.log('  stream frames by protocol', JSON.stringify(streamStats.byProtocol))
      console.log('  stream modes', JSON.stringify(streamStats.byMode))
      console.log('  node answers', JSON.stringify(streamStats.outcomes))
      console.log(`  streams ended by the node ${streamStats.endedByNode}, pinned ${streamStats.pinned}, libp2p streams held ${streamStats.foreignHeld}, open failures ${streamStats.openFailures}, write failures ${streamStats.writeFailures}, reconnects ${streamStats.reconnects} (gossip ${gossipStats.reconnects}); idle streams ${streamStats.idle.opened}, ended by the node ${streamStats.idle.endedByNode} (slowest ${Math.round(streamStats.idle.maxMs)} ms)`)
      console.log('  stream open failures', JSON.stringify(streamStats.openFailureReasons))
      console.log('  gossip by topic', JSON.stringify(gossipStats.byTopic), 'by mode', JSON.stringify(gossipStats.byMode), `publish errors ${gossipStats.publishErrors}, identities ${gossipStats.rotations + 1} (${gossipStats.rotationFailures} failed to join in time)`)
      console.log(`  jobs during the fuzz: ${jobs.length} (${jobs.map(j => `${(j.ms / 1000).toFixed(1)} s${j.ok ? '' : ' FAILED'}`).join(', ')})`)

      // The frames went out, and the node took them in.
      expect(total).toBeGreaterThanOrEqual(MIN_FRAMES)
      // Gossip goes out only as fast as the node graylists one identity and the fuzzer joins as another (issue #19).
      expect(gossipStats.byTopic[CONTROL_TOPIC] ?? 0).toBeGreaterThan(2_000)
      expect(gossipStats.byTopic[DISCOVERY_TOPIC] ?? 0).toBeGreaterThan(500)
      for (const p of served) expect(streamStats.byProtocol[p]?.frames ?? 0, `frames sent on ${p}`).toBeGreaterThan(OUR_PROTOCOLS.some(([q]) => q === p) ? 500 : 20)

      // Every job run under fire produced the reference output.
      expect(jobs.length).toBeGreaterThanOrEqual(1)
      for (const j of jobs) expect(j.ok, j.why).toBe(true)

      // Every node is still up and answering.
      for (const n of c.nodes) expect(n.process.running, `node ${n.index} process`).toBe(true)
      const after = await c.sample()
      expect([...after.keys()].sort()).toEqual(c.running())
      const targetAfter = after.get(target) as InfoResponse
      const dropped = (targetAfter.control?.dropped ?? 0) - (before?.control?.dropped ?? 0)
      const rateDropped = (targetAfter.control?.rateDropped ?? 0) - (before?.control?.rateDropped ?? 0)
      console.log(`  control messages the target dropped as invalid: ${dropped} (${rateDropped} of them over their author's rate); gossip identities graylisted and replaced: ${gossipStats.rotations}`)
      // The gossip reached the node's validator, not just its socket, and each identity was cut off: the node
      // graylisted it (it takes nine refusals) and stopped reading it, and the fuzzer had to go on as another.
      expect(gossipStats.rotations).toBeGreaterThanOrEqual(3)
      expect(dropped).toBeGreaterThan(9 * gossipStats.rotations)
      // How many of them were over their author's rate (logged above) depends on how fast this fuzzer gets to
      // publish before the identity is graylisted (two CI runs on 2 cores: some, then none), so it is not asserted
      // here: the rate limit is, where the flood is under the test's control (test/integration/gossip-scoring.test.ts).

      // The forged discovery records and the epochs that would have ended every election were refused, and said so;
      // no node logged an error.
      const t = logged[target]
      console.log(`  target's refusals logged (one line a second per peer and reason): ${JSON.stringify(t.reasons)}`)
      expect(t.reasons['announces another peer'] ?? 0).toBeGreaterThan(0)
      expect(t.reasons['epoch out of range'] ?? 0).toBeGreaterThan(0)
      for (const [i, l] of logged.entries()) expect(l.errors, `node ${i} logged errors`).toEqual([])

      // No stream was pinned: every stream we opened the node ended by itself, idle ones included.
      expect(streamStats.pinned, streamStats.pinnedDetail.join('\n')).toBe(0)
      expect(streamStats.idle.endedByNode).toBe(streamStats.idle.opened)
      // With the fuzzing clients still connected, the node's own protocol streams drain back to (nearly) none.
      await waitFor(async () => streamsOf(await c.info(target), true) <= 2, { timeoutMs: 30_000, intervalMs: 250, description: `node ${target}'s mrp2p streams to drain` })

      // Memory: bounded under fire, and back near the post-job baseline once the fuzzers are gone.
      sampler.stop()
      console.log(`  RSS max under fuzz: ${c.nodes.map(n => `node ${n.index}${n.index === target ? ' (fuzzed)' : n.index === coord ? ' (coordinator)' : ''} ${mib(sampler.max.get(`node ${n.index}`))}`).join(', ')}; node ${target} baseline ${mib(baseline)}; ${sampler.samples} samples`)
      for (const n of c.nodes) expect(sampler.max.get(`node ${n.index}`) ?? Number.POSITIVE_INFINITY, `node ${n.index}'s RSS`).toBeLessThan(RSS_BOUND)
      for (const p of [...targetClients, ...coordClients, gossipPeer]) await p.stop()

      // The mesh still does its job afterwards.
      await waitForAgreement(c, c.running(), 30_000)
      const post = await wc(c, target)
      expect(post.ok, post.why).toBe(true)

      // And the node gives back what it took: gossipsub forgets message ids after two minutes at most.
      // The wait is for gossipsub's two-minute caches to expire, and then for V8, which is slower on a loaded
      // machine: seed 3886397814 settled in 83 s (base commit) and 90 s (head) here, but not within 150 s in a
      // CI run that went at half speed. A real leak never comes back, however long the wait.
      let settled = 0
      const settleStart = performance.now()
      await waitFor(() => {
        settled = rssBytes(pidOf(target)) ?? Number.POSITIVE_INFINITY
        return settled <= baseline + RSS_SLACK
      }, { timeoutMs: 270_000, intervalMs: 500, description: `node ${target}'s RSS to come back within ${mib(RSS_SLACK)} of ${mib(baseline)}` })
      console.log(`  RSS node ${target} after: ${mib(settled)}, ${((performance.now() - settleStart) / 1000).toFixed(1)} s after the post-fuzz job`)
      expect(c.nodes[target].process.running).toBe(true)
      console.log(`fuzz test total ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err))
      e.message = `fuzz seed ${SEED} (replay with MRP2P_FUZZ_SEED=${SEED}): ${e.message}`
      throw e
    }
  }, 680_000)
})
