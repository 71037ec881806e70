import '../../src/util/polyfills.js'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeControlMessage, encodeControlMessage, type ControlMessage } from '../../src/election/messages.js'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { CONTROL_TOPIC } from '../../src/protocol/ids.js'
import { acting, TEST_ELECTION_ENV, TEST_LEASE_MS, waitForAgreement } from '../support/cluster-views.js'
import { createGossipFuzzPeer, seededKey, type GossipFuzzPeer } from '../support/fuzz-gossip.js'
import { Flooder } from '../support/gossip-flooder.js'
import { sortedOutput } from '../support/output.js'
import { Prng } from '../support/prng.js'
import { BOOKS, REFERENCE_CWD, runCli } from '../support/run-cli.js'

/**
 * Issue #6: a member of the mesh (it holds the swarm key, or there is none) that keeps saying, in its own signed
 * name, what would once have deposed the coordinator: higher epochs in heartbeats, leases and claims of the next
 * epoch, and coordinator heartbeats at the holder's epoch from a PeerId that sorts lower. Nodes bound to a live lease
 * take none of it (docs/election.md); the holder re-claims its lease above the epochs it hears, at most as often as
 * the bump spacing allows. Real processes, a real gossipsub member, wc jobs running throughout.
 */
const NODES = 3
const ATTACK_EVERY_MS = 100
/** Jobs run back to back until both counts are reached: the attack lasts several bump spacings. */
const JOBS = 3
const ATTACK_MS = 8 * TEST_LEASE_MS
/** Issue #19's flood: control messages a second from one member. */
const FLOOD_PER_SECOND = 5_000
/** How long the flood goes on after every node graylisted the flooder. */
const FLOOD_AFTER_GRAYLIST_MS = 8_000
/** Issue #19's scenario: a member claiming every 100 ms for 60 s. */
const CLAIMS_FOR_MS = 60_000

let cluster: Cluster | undefined
let rogue: GossipFuzzPeer | undefined
const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-attack-'))
afterAll(async () => {
  await rogue?.stop()
  await cluster?.stop()
  rmSync(scratch, { recursive: true, force: true })
})

async function wc (c: Cluster, via: number, n: number, extra: string[] = []): Promise<string | undefined> {
  const out = join(scratch, `wc-${n}`)
  const res = await runCli(['submit', 'wc', '--input', ...BOOKS, '--reduces', '3', '--split-size', '200000', '--output', out, '--bootstrap', c.nodes[via].addr, '--timeout', '60', ...extra], { cwd: REFERENCE_CWD, timeoutMs: 180_000 })
  if (res.code !== 0) return `submit exited ${String(res.code)}: ${res.stderr.trim().slice(-1500)}`
  if (!sortedOutput(out).equals(readFileSync(join(REFERENCE_CWD, 'wc.txt')))) return `output differs from the reference (files ${readdirSync(out).join(',')})`
  return undefined
}

/** A gossip member of the mesh in its own signed name, connected to every node; tells of the epochs their heartbeats announce. */
async function gossipMember (c: Cluster, key: PrivateKey, epoch: number): Promise<{ peer: GossipFuzzPeer, onEpoch: (f: (epoch: number) => void) => void }> {
  const peer = await createGossipFuzzPeer(key)
  await peer.start()
  peer.services.pubsub.subscribe(CONTROL_TOPIC)
  let tell: (epoch: number) => void = () => {}
  peer.services.pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic !== CONTROL_TOPIC) return
    const m = decodeControlMessage(evt.detail.data)
    if (m !== undefined && m.type === 'heartbeat') tell(m.highestEpoch)
  })
  for (const n of c.nodes) await peer.dial(multiaddr(n.addr))
  await waitFor(() => peer.services.pubsub.getSubscribers(CONTROL_TOPIC).length === c.nodes.length, { timeoutMs: 15_000, description: 'the member to see every node on the control topic' })
  return { peer, onEpoch: (f) => { tell = f; f(epoch) } }
}

describe('a member that keeps claiming the coordinatorship', () => {
  // One mesh for every case: each starts from a coordinator that all nodes agree on.
  beforeAll(async () => {
    cluster = await startCluster({ nodes: NODES, env: TEST_ELECTION_ENV, keep: process.env.MRP2P_KEEP_CLUSTER === '1' })
  }, 60_000)

  it('cannot take it from a coordinator that a majority renews: the coordinator never changes, every job is correct, re-claims stay within the spacing', async () => {
    const c = cluster as Cluster
    const all = Array.from({ length: NODES }, (_, i) => i)
    const before = await waitForAgreement(c, all, 20_000)

    // A member whose PeerId sorts below the holder's: at equal epochs, the old rule made the lower one win at once.
    const rng = new Prng(20261125)
    let key = await seededKey(rng)
    while (peerIdFromPrivateKey(key).toString() >= before.peerId) key = await seededKey(rng)
    const member = await gossipMember(c, key, before.epoch)
    const r = rogue = member.peer
    const self = r.peerId.toString()
    let highest = before.epoch
    member.onEpoch((e) => { highest = Math.max(highest, e) })
    const publish = async (m: ControlMessage): Promise<void> => {
      await r.services.pubsub.publish(CONTROL_TOPIC, encodeControlMessage(m)).catch(() => {})
    }
    const info = { addrs: [], slots: 0, running: 0, worker: false, version: '0.1.0' }
    // First an ordinary member for two leases, so that every node has long known it.
    const settleUntil = performance.now() + 2 * TEST_LEASE_MS
    while (performance.now() < settleUntil) {
      await publish({ type: 'heartbeat', v: 1, from: self, info, role: 'follower', epoch: highest, highestEpoch: highest })
      await new Promise(resolve => setTimeout(resolve, 200))
    }

    const attacks = [
      (): ControlMessage => ({ type: 'heartbeat', v: 1, from: self, info, role: 'follower', epoch: highest, highestEpoch: highest + 5 }),
      (): ControlMessage => ({ type: 'lease', v: 1, from: self, epoch: highest + 1, seq: Date.now(), durationMs: TEST_LEASE_MS }),
      (): ControlMessage => ({ type: 'claim', v: 1, from: self, epoch: highest + 1, seq: Date.now(), durationMs: TEST_LEASE_MS }),
      (): ControlMessage => ({ type: 'heartbeat', v: 1, from: self, info, role: 'coordinator', leader: self, epoch: highest, highestEpoch: highest })
    ]
    let sent = 0
    let attacking = true
    const attackLoop = (async () => {
      while (attacking) {
        await publish(attacks[sent++ % attacks.length]())
        await new Promise(resolve => setTimeout(resolve, ATTACK_EVERY_MS))
      }
    })()

    // Watch who acts while the attack and the jobs run.
    const coordinators = new Set<string>()
    const epochs = new Set<number>()
    let samples = 0
    let watching = true
    const watchLoop = (async () => {
      while (watching) {
        const s = await c.sample(all)
        for (const i of acting(s)) {
          coordinators.add(s.get(i)?.peerId ?? '?')
          epochs.add(s.get(i)?.epoch ?? -1)
        }
        samples++
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    })()

    const started = performance.now()
    const failures: string[] = []
    for (let j = 0; j < JOBS || performance.now() - started < ATTACK_MS; j++) {
      const why = await wc(c, (j + 1) % NODES, j)
      if (why !== undefined) failures.push(`job ${j}: ${why}`)
    }
    attacking = false
    watching = false
    await Promise.all([attackLoop, watchLoop])
    const seconds = (performance.now() - started) / 1000
    const after = await waitForAgreement(c, all, 10_000)
    console.log(`attack: ${sent} messages over ${seconds.toFixed(1)} s; ${samples} samples; coordinators seen ${[...coordinators].join(',')}; epochs ${[...epochs].sort((a, b) => a - b).join(',')} (rogue ${self.slice(-6)} < holder ${before.peerId.slice(-6)})`)

    expect(failures).toEqual([])
    expect(sent).toBeGreaterThan(4 * 10)
    expect(samples).toBeGreaterThan(10)
    expect([...coordinators]).toEqual([before.peerId])
    expect(after.peerId).toBe(before.peerId)
    // Re-claims (bumps) at most FIRST then MAX bump spacing leases apart: 2, 4, 4, ... leases of TEST_LEASE_MS.
    const maxBumps = 2 + Math.floor(seconds * 1000 / (4 * TEST_LEASE_MS))
    expect(epochs.size - 1).toBeLessThanOrEqual(maxBumps)
    expect(after.epoch).toBeGreaterThan(before.epoch)
  }, 240_000)

  it('claims every 100 ms for 60 s: quarantined by every node, at most one change of coordinator, every job correct', async () => {
    const c = cluster as Cluster
    const all = Array.from({ length: NODES }, (_, i) => i)
    const before = await waitForAgreement(c, all, 20_000)
    // A member of its own, with no record of earlier quarantines.
    const member = await gossipMember(c, await seededKey(new Prng(20261206)), before.epoch)
    const r = member.peer
    const self = r.peerId.toString()
    try {
      let highest = before.epoch
      member.onEpoch((e) => { highest = Math.max(highest, e) })

      let sent = 0
      let attacking = true
      const attackLoop = (async () => {
        while (attacking) {
          const claim: ControlMessage = { type: 'claim', v: 1, from: self, epoch: highest + 1, seq: sent++, durationMs: TEST_LEASE_MS }
          await r.services.pubsub.publish(CONTROL_TOPIC, encodeControlMessage(claim)).catch(() => {})
          await new Promise(resolve => setTimeout(resolve, ATTACK_EVERY_MS))
        }
      })()
      const coordinators: string[] = []
      const quarantinedBy = new Set<number>()
      let watching = true
      const watchLoop = (async () => {
        while (watching) {
          const s = await c.sample(all)
          for (const i of acting(s)) {
            const peer = s.get(i)?.peerId ?? '?'
            if (coordinators.at(-1) !== peer) coordinators.push(peer)
          }
          for (const [i, info] of s) if (info.quarantined?.some((q) => q.peer === self) === true) quarantinedBy.add(i)
          await new Promise(resolve => setTimeout(resolve, 200))
        }
      })()

      const started = performance.now()
      const failures: string[] = []
      for (let j = 0; performance.now() - started < CLAIMS_FOR_MS; j++) {
        const why = await wc(c, j % NODES, 100 + j)
        if (why !== undefined) failures.push(`job ${j}: ${why}`)
      }
      attacking = false
      watching = false
      await Promise.all([attackLoop, watchLoop])
      const seconds = (performance.now() - started) / 1000
      console.log(`claims: ${sent} over ${seconds.toFixed(1)} s; coordinators in turn ${coordinators.map((p) => p.slice(-6)).join(' → ')}; quarantined by nodes ${[...quarantinedBy].join(',')}`)

      expect(failures).toEqual([])
      expect(sent).toBeGreaterThan(CLAIMS_FOR_MS / ATTACK_EVERY_MS / 2)
      expect(coordinators.length).toBeGreaterThanOrEqual(1)
      expect(coordinators.length).toBeLessThanOrEqual(2)
      expect([...quarantinedBy].sort()).toEqual(all)
    } finally {
      await r.stop()
    }
  }, 240_000)

  it('a member publishing 5,000 control messages a second: graylisted by every node, no lease lapses, the job meanwhile is correct', async () => {
    const c = cluster as Cluster
    const all = Array.from({ length: NODES }, (_, i) => i)
    const before = await waitForAgreement(c, all, 20_000)
    const flooder = new Flooder(c.nodes.map((n) => n.addr))
    try {
      const self = await flooder.ready()
      // Well formed and signed by its author: only its rate gives it away.
      flooder.setBytes(encodeControlMessage({ type: 'heartbeat', v: 1, from: self, info: { addrs: [], slots: 0, running: 0, worker: false, version: '0.1.0' }, role: 'follower', epoch: before.epoch, highestEpoch: before.epoch }))
      // First an ordinary member: one heartbeat now and then, until every node knows it.
      await waitFor(async () => {
        await flooder.publishOne()
        const s = await c.sample(all)
        return s.size === NODES && [...s.values()].every((i) => i.members.some((m) => m.peerId === self))
      }, { timeoutMs: 20_000, intervalMs: 300, description: 'every node to know the flooder as a member' })

      let lapses = 0
      let samples = 0
      const coordinators = new Set<string>()
      const graylistedAt = new Map<number, number>()
      let watching = true
      const started = performance.now()
      flooder.flood(FLOOD_PER_SECOND)
      const watchLoop = (async () => {
        while (watching) {
          const s = await c.sample(all)
          samples++
          // A node that does not answer in the probe's time, or answers without a valid lease, is a lapse.
          if (s.size < NODES) lapses++
          for (const [i, info] of s) {
            if (info.leaseValid !== true || info.coordinator === null) lapses++
            else coordinators.add(info.coordinator)
            if (!graylistedAt.has(i) && info.graylisted?.includes(self) === true) graylistedAt.set(i, performance.now() - started)
          }
          await new Promise(resolve => setTimeout(resolve, 100))
        }
      })()
      // Reduces after every map (as before issue #17): with reduces pulling while maps run, three nodes, the job and
      // a flooder thread at 100 % of one of the 2 cores gave 9 and 12 lapses in ~300 node samples (two CI runs; a
      // node not answering the probe in time, or without a valid lease). That load is issue #17's to bring down;
      // this test is about the flood.
      const why = await wc(c, 1, 200, ['--reduce-slow-start', '1'])
      await waitFor(() => graylistedAt.size === NODES, { timeoutMs: 30_000, description: 'every node to graylist the flooder' })
      // The flood goes on a while after: the leases must hold under it too, not only until it is cut off.
      const until = performance.now() + FLOOD_AFTER_GRAYLIST_MS
      await waitFor(() => performance.now() >= until, { timeoutMs: FLOOD_AFTER_GRAYLIST_MS + 5_000, intervalMs: 250, description: 'the rest of the flood' })
      watching = false
      await watchLoop
      const flood = await flooder.stop()
      const seconds = flood.elapsedMs / 1000
      console.log(`flood: ${flood.published} messages in ${seconds.toFixed(1)} s (${Math.round(flood.published / seconds)}/s); graylisted after ${[...graylistedAt].map(([i, ms]) => `node ${i} ${(ms / 1000).toFixed(2)} s`).join(', ')}; ${samples} samples, lapses ${lapses}, coordinators ${[...coordinators].map((p) => p.slice(-6)).join(',')}`)

      expect(why).toBeUndefined()
      // The load generator's own pace (it shares this machine's cores with three nodes): a flood, whatever its figure.
      expect(flood.published / seconds).toBeGreaterThan(1_000)
      expect(samples).toBeGreaterThan(10)
      expect(lapses).toBe(0)
      expect([...coordinators]).toEqual([before.peerId])
    } finally {
      await flooder.terminate()
    }
  }, 240_000)
})
