import { describe, expect, it } from 'vitest'
import {
  ElectionNode, Quarantine, QUARANTINE_AFTER_LEASES, QUARANTINE_LEASES, QUARANTINE_MAX_LEASES, QUARANTINE_MIN_CONTRADICTIONS,
  resolveElectionConfig, type ElectionConfig, type ElectionEffect
} from '../../src/election/index.js'
import type { ControlMessage, HeartbeatMessage } from '../../src/election/messages.js'
import { DEFAULT_ELECTION_CONFIG, type MemberInfo } from '../../src/election/types.js'
import { mulberry32 } from '../support/prng.js'
import { StepMesh } from '../support/step-mesh.js'

/**
 * Quarantine (docs/election.md, "Quarantine"), by replaying inputs: the rules of src/election/quarantine.ts alone,
 * then ElectionNode with a member that keeps contradicting. test/unit/election-quarantine-sim.test.ts checks the
 * same in the seeded simulator, with loss, partitions and crashes.
 */

const INFO: MemberInfo = { addrs: [], slots: 1, running: 0, worker: true, version: 'test' }
const TICK = 100
const { leaseMs: L, deadAfterMs } = DEFAULT_ELECTION_CONFIG
const AFTER = QUARANTINE_AFTER_LEASES * L
const BASE = QUARANTINE_LEASES * L
/** The member that lies: the lowest PeerId, so that it would rank first. */
const HOSTILE = '12D3KooWa'

type Quarantined = Extract<ElectionEffect, { type: 'peer-quarantined' }>

/**
 * Honest nodes on a perfect network (every message 5 ms late, ticks every 100 ms on one clock), and `say`, which
 * hands a message from a member outside the mesh's control to every node at once.
 */
class Mesh extends StepMesh {
  constructor (ids: string[], config?: Partial<ElectionConfig>) {
    super(ids, (id, i) => new ElectionNode({ self: id, info: INFO, random: mulberry32(i + 1), config }))
  }

  say (m: ControlMessage): void {
    for (const id of this.nodes.keys()) this.apply(id, this.get(id).receive(m, this.now))
  }

  elect (): string {
    while (this.coordinators().length !== 1) {
      if (this.now > 60_000) throw new Error('never elected')
      this.run(TICK)
    }
    this.run(3000)
    return this.coordinators()[0]
  }

  quarantines (since = 0): Array<Quarantined & { at: number, by: string }> {
    return this.log.flatMap(({ at, id, e }) => (e.type === 'peer-quarantined' && at >= since ? [{ ...e, at, by: id }] : []))
  }

  effectsSince (since: number, type: ElectionEffect['type']): ElectionEffect[] {
    return this.log.filter(l => l.at >= since && l.e.type === type).map(l => l.e)
  }
}

function heartbeat (from: string, fields: Partial<HeartbeatMessage> = {}): HeartbeatMessage {
  return { type: 'heartbeat', v: 1, from, info: INFO, role: 'follower', epoch: 0, highestEpoch: 0, ...fields }
}

function coordinatorHeartbeat (from: string, epoch: number): HeartbeatMessage {
  return heartbeat(from, { role: 'coordinator', leader: from, epoch, highestEpoch: epoch })
}

/**
 * For `ms`, the hostile member claims the epoch above the highest the mesh has seen every 200 ms, and says it is
 * coordinator of it every second, as test/support/sim-network.ts's HostileMember does every 100 ms.
 */
function attack (mesh: Mesh, ms: number, extra?: (epoch: number, t: number) => ControlMessage[]): void {
  const end = mesh.now + ms
  for (let t = 0; mesh.now < end; t += 200) {
    const epoch = Math.max(...[...mesh.nodes.values()].map(n => n.highestEpoch)) + 1
    mesh.say({ type: 'claim', v: 1, from: HOSTILE, epoch, seq: t, durationMs: L })
    if (t % 1000 === 0) mesh.say(coordinatorHeartbeat(HOSTILE, epoch))
    for (const m of extra?.(epoch, t) ?? []) mesh.say(m)
    mesh.run(200)
  }
}

describe('Quarantine (the rules alone)', () => {
  const rules = { afterMs: 6000, gapMs: 3000, baseMs: 30_000, maxMs: 100_000 }

  it(`needs a streak of at least afterMs and ${QUARANTINE_MIN_CONTRADICTIONS} contradictions, none a gap apart`, () => {
    const q = new Quarantine(rules)
    // Two contradictions six seconds apart are not a streak (a gap of a lease ends it), nor is a burst.
    expect(q.contradiction('p', 0)).toBeUndefined()
    expect(q.contradiction('p', 3000)).toBeUndefined()
    expect(q.contradiction('p', 5999)).toBeUndefined()
    expect(q.contradiction('p', 6000)).toBeUndefined() // the streak began at 3000
    expect(q.contradiction('p', 8999)).toBeUndefined()
    expect(q.contradiction('p', 9000)).toEqual({ peer: 'p', forMs: 30_000, repeat: 1 })
    expect(q.has('p', 9000)).toBe(true)
    expect(q.has('p', 39_000)).toBe(false)
    expect(q.has('other', 9000)).toBe(false)
    // Many at once do not make up for time.
    const burst = new Quarantine(rules)
    for (let i = 0; i < 100; i++) expect(burst.contradiction('p', 1000)).toBeUndefined()
    // Time does not make up for count.
    const two = new Quarantine(rules)
    expect(two.contradiction('p', 0)).toBeUndefined()
    expect(two.contradiction('p', 2999)).toBeUndefined()
    const three = new Quarantine({ ...rules, afterMs: 2000 })
    expect(three.contradiction('p', 0)).toBeUndefined()
    expect(three.contradiction('p', 2999)).toBeUndefined()
    expect(three.contradiction('p', 3000)).toMatchObject({ repeat: 1 })
  })

  it('starts a streak per run, continues every running one with any contradiction, and clear ends one or all', () => {
    const kinds = (clear: (q: Quarantine) => void): number | undefined => {
      const q = new Quarantine(rules)
      // 'a' from 0 to 2500, then 'b' from 3000 on: 'b' starts a streak of its own and continues the one of 'a'.
      for (let t = 0; t < 3000; t += 500) expect(q.contradiction('p', t, { kind: 'a' })).toBeUndefined()
      clear(q)
      for (let t = 3000; t < 20_000; t += 500) if (q.contradiction('p', t, { kind: 'b' }) !== undefined) return t
      return undefined
    }
    expect(kinds(() => {})).toBe(6000)
    expect(kinds(q => q.clear('p', 'a'))).toBe(9000)
    expect(kinds(q => q.clear('p', 'b'))).toBe(6000)
    expect(kinds(q => q.clear('p'))).toBe(9000)
  })

  it('doubles each repeat up to maxMs; on probation the first contradiction is enough; forgives after maxMs of quiet', () => {
    const q = new Quarantine(rules)
    let t = 0
    const streak = (): ReturnType<Quarantine['contradiction']> => {
      let r: ReturnType<Quarantine['contradiction']>
      for (; r === undefined; t += 100) r = q.contradiction('p', t)
      return r
    }
    expect(streak()).toEqual({ peer: 'p', forMs: 30_000, repeat: 1 })
    // Ignored while it runs. Quiet through the probation after it (as long again): the next takes a full streak.
    expect(q.contradiction('p', t + 29_000)).toBeUndefined()
    t += 30_000 + 30_000
    expect(q.contradiction('p', t)).toBeUndefined()
    expect(streak()).toEqual({ peer: 'p', forMs: 60_000, repeat: 2 })
    // One contradiction within the probation quarantines again, up to maxMs.
    t += 60_000 + 59_000
    expect(q.contradiction('p', t)).toEqual({ peer: 'p', forMs: 100_000, repeat: 3 })
    expect(q.list(t)).toEqual([{ peer: 'p', leftMs: 100_000 }])
    t += 100_000 + 1000
    expect(q.contradiction('p', t)).toEqual({ peer: 'p', forMs: 100_000, repeat: 4 })
    // Quiet for maxMs after it ended: forgiven, back to baseMs after a full streak.
    t += 100_000 + 100_000
    q.prune(t)
    expect(q.list(t)).toEqual([])
    expect(q.contradiction('p', t)).toBeUndefined()
    expect(streak()).toEqual({ peer: 'p', forMs: 30_000, repeat: 1 })
  })

  it('quarantines nobody when baseMs is 0', () => {
    const q = new Quarantine({ ...rules, baseMs: 0 })
    for (let t = 0; t < 60_000; t += 100) expect(q.contradiction('p', t)).toBeUndefined()
  })

  it('a contradiction that does not ask for probation needs a full streak even on probation', () => {
    const q = new Quarantine(rules)
    let r
    for (let t = 0; r === undefined; t += 100) r = q.contradiction('p', t)
    expect(q.contradiction('p', 40_000, { probation: false })).toBeUndefined()
    expect(q.contradiction('p', 40_100)).toMatchObject({ repeat: 2 })
  })
})

describe('ElectionNode quarantine', () => {
  it('quarantines a member that keeps claiming against the lease a majority renews, which then changes nothing', () => {
    const mesh = new Mesh(['12D3KooWb', '12D3KooWc', '12D3KooWd'])
    const holder = mesh.elect()
    const start = mesh.now
    attack(mesh, AFTER + 1000)
    const qs = mesh.quarantines()
    expect(qs.map(q => q.by).sort()).toEqual([...mesh.nodes.keys()].sort())
    for (const q of qs) {
      expect(q).toMatchObject({ type: 'peer-quarantined', peer: HOSTILE, forMs: BASE, repeat: 1 })
      expect(q.at - start).toBeGreaterThanOrEqual(AFTER)
      expect(q.at - start).toBeLessThanOrEqual(AFTER + 300)
    }

    // Now everything it says is ignored: claims, leases and heartbeats of ever higher epochs, grants, releases.
    const quiet = mesh.now
    const epoch = mesh.get(holder).view(mesh.now).epoch
    const highest = [...mesh.nodes.values()].map(n => n.highestEpoch)
    attack(mesh, BASE - (mesh.now - qs[0].at) - 1000, (e, t) => [
      { type: 'lease', v: 1, from: HOSTILE, epoch: e + 5, seq: t, durationMs: L },
      heartbeat(HOSTILE, { highestEpoch: e + 50, promise: { to: HOSTILE, epoch: e + 50, leftMs: L } }),
      { type: 'grant', v: 1, from: HOSTILE, to: holder, epoch: e + 1, seq: 0 },
      { type: 'release', v: 1, from: HOSTILE, epoch: e + 60, leaving: false }
    ])
    expect(mesh.effectsSince(quiet, 'epoch-observed')).toEqual([])
    expect(mesh.effectsSince(quiet, 'role-changed')).toEqual([])
    expect(mesh.effectsSince(quiet, 'peer-quarantined')).toEqual([])
    expect(mesh.effectsSince(quiet, 'publish').filter(e => e.type === 'publish' && (e.message.type === 'grant' || e.message.type === 'claim'))).toEqual([])
    expect(mesh.coordinators()).toEqual([holder])
    expect(mesh.get(holder).view(mesh.now).epoch).toBe(epoch)
    expect([...mesh.nodes.values()].map(n => n.highestEpoch)).toEqual(highest)
    // Still a member, alive, and what it reports about itself is shown.
    for (const n of mesh.nodes.values()) {
      const v = n.view(mesh.now)
      expect(v.members.find(m => m.peer === HOSTILE)).toMatchObject({ liveness: 'alive', role: 'follower' })
      expect(v.quarantined).toHaveLength(1)
      expect(v.quarantined?.[0].peer).toBe(HOSTILE)
      expect(v.quarantined?.[0].leftMs).toBeGreaterThan(0)
      expect(v.quarantined?.[0].leftMs).toBeLessThanOrEqual(1000 + 300)
    }
  })

  it('ends a quarantine after quarantineMs; on probation, the next claim quarantines again for twice as long, up to the cap', () => {
    const config = { quarantineMs: 5000, quarantineMaxMs: 12_000 }
    const mesh = new Mesh(['12D3KooWb', '12D3KooWc', '12D3KooWd'], config)
    const holder = mesh.elect()
    attack(mesh, AFTER + 5000 + 10_000 + 12_000 + 1000)
    const qs = mesh.quarantines().filter(q => q.by === holder)
    expect(qs.map(q => [q.repeat, q.forMs])).toEqual([[1, 5000], [2, 10_000], [3, 12_000], [4, 12_000]])
    // Each one starts as the last ends: the first claim after it (one every 200 ms here).
    expect(qs[1].at - qs[0].at).toBeGreaterThanOrEqual(5000)
    expect(qs[1].at - qs[0].at).toBeLessThanOrEqual(5000 + 200)
    expect(qs[2].at - qs[1].at).toBeLessThanOrEqual(10_000 + 200)
    // Between them it was heard for one message at most: the coordinator never changed epoch after the first bump.
    const bumps = mesh.effectsSince(qs[0].at + 1, 'epoch-observed')
    expect(bumps).toEqual([])
    expect(mesh.coordinators()).toEqual([holder])
  })

  it('does not quarantine honest members that contradict briefly: a claim given up after a lease, the holder of the smaller side of a heal', () => {
    const mesh = new Mesh(['12D3KooWb', '12D3KooWc', '12D3KooWd'])
    mesh.elect()
    const epoch = (): number => Math.max(...[...mesh.nodes.values()].map(n => n.highestEpoch))
    // A member whose view of the lease lapsed early claims for one lease, re-sent every half heartbeat, then gives up.
    for (let t = 0; t < L; t += 500) {
      mesh.say({ type: 'claim', v: 1, from: '12D3KooWe', epoch: epoch() + 1, seq: t / 500, durationMs: L })
      mesh.run(500)
    }
    mesh.say({ type: 'release', v: 1, from: '12D3KooWe', epoch: epoch(), leaving: false })
    mesh.say(heartbeat('12D3KooWe', { highestEpoch: epoch() }))
    mesh.run(5000)
    // The holder of the other side of a healed partition renews twice as often (no quorum covers it any more) and
    // says it is coordinator, until its lease runs out: less than a lease after the heal.
    const other = epoch() + 1
    for (let t = 0; t < L * 0.95; t += 500) {
      mesh.say({ type: 'lease', v: 1, from: '12D3KooWf', epoch: other, seq: 10 + t / 500, durationMs: L })
      if (t % 1000 === 0) mesh.say(coordinatorHeartbeat('12D3KooWf', other))
      mesh.run(500)
    }
    mesh.say({ type: 'release', v: 1, from: '12D3KooWf', epoch: other, leaving: false })
    mesh.run(10_000)
    expect(mesh.quarantines()).toEqual([])
  })

  it('keeps a quarantined member alive on its heartbeats, with what it reports, and counts it as a voter', () => {
    const mesh = new Mesh(['12D3KooWb', '12D3KooWc', '12D3KooWd'])
    const holder = mesh.elect()
    attack(mesh, AFTER + 1000)
    expect(mesh.quarantines()).toHaveLength(3)
    const from = mesh.now
    for (let t = 0; t < 4 * deadAfterMs; t += 1000) {
      mesh.say(heartbeat(HOSTILE, { info: { ...INFO, running: 3 }, highestEpoch: 999 }))
      mesh.run(1000)
    }
    const changes = mesh.log.filter(l => l.at >= from && l.e.type === 'member-changed').map(l => l.e)
    expect(changes).toEqual([])
    const v = mesh.get(holder).view(mesh.now)
    expect(v.members.find(m => m.peer === HOSTILE)).toMatchObject({ liveness: 'alive', info: { running: 3 } })
    expect(mesh.coordinators()).toEqual([holder])
    expect(mesh.get(holder).highestEpoch).toBeLessThan(999)
  })

  it('quarantines, where no lease binds anyone, a member that claims and says it is coordinator without end; the others then elect', () => {
    // Without quarantine such a member holds every vote and keeps everyone from claiming, for ever.
    const run = (config?: Partial<ElectionConfig>): { mesh: Mesh, electedAt: number | undefined } => {
      const mesh = new Mesh(['12D3KooWb', '12D3KooWc', '12D3KooWd'], config)
      let electedAt: number | undefined
      attack(mesh, 60_000, () => {
        if (electedAt === undefined && mesh.coordinators().length === 1) electedAt = mesh.now
        return []
      })
      return { mesh, electedAt }
    }
    expect(run({ quarantineMs: 0 }).electedAt).toBeUndefined()
    const { mesh, electedAt } = run()
    expect(electedAt).toBeDefined()
    const first = Math.min(...mesh.quarantines().map(q => q.at))
    expect(first).toBeGreaterThanOrEqual(AFTER)
    // A fresh node does not claim before deadAfterMs; after the quarantine, the promises it got run out within a lease.
    expect(electedAt).toBeLessThanOrEqual(Math.max(first, deadAfterMs) + 2 * L)
    expect(mesh.coordinators()).toHaveLength(1)
  })

  it('counts another holder against its own only while it sees a majority renew its own (the smaller side of a heal does not)', () => {
    const quarantinedOther = (acksTo: string): boolean => {
      const f = new ElectionNode({ self: '12D3KooWf', info: INFO, random: mulberry32(1) })
      const out: ElectionEffect[] = [...f.start(0)]
      for (let t = 100; t <= 20_000; t += 100) {
        out.push(...f.tick(t))
        if (t % 1000 !== 0) continue
        // f follows h's lease; x, y and z ack h's, or k's (then h's side is the smaller one: 2 of 6 voters).
        out.push(...f.receive({ type: 'lease', v: 1, from: '12D3KooWh', epoch: 1, seq: t / 1000, durationMs: L }, t + 1))
        for (const p of ['12D3KooWx', '12D3KooWy', '12D3KooWz']) {
          out.push(...f.receive(heartbeat(p, { epoch: 1, highestEpoch: 2, leader: acksTo, ack: { to: acksTo, epoch: acksTo === '12D3KooWh' ? 1 : 2, seq: t / 1000 } }), t + 2))
        }
        out.push(...f.receive({ type: 'lease', v: 1, from: '12D3KooWk', epoch: 2, seq: t / 1000, durationMs: L }, t + 3))
        out.push(...f.receive(coordinatorHeartbeat('12D3KooWk', 2), t + 4))
        expect(f.view(t + 4).leader).toBe('12D3KooWh')
      }
      return out.some(e => e.type === 'peer-quarantined' && e.peer === '12D3KooWk')
    }
    expect(quarantinedOther('12D3KooWh')).toBe(true)
    expect(quarantinedOther('12D3KooWk')).toBe(false)
  })

  it('never quarantines with quarantineMs 0', () => {
    const mesh = new Mesh(['12D3KooWb', '12D3KooWc', '12D3KooWd'], { quarantineMs: 0 })
    mesh.elect()
    attack(mesh, 4 * AFTER)
    expect(mesh.quarantines()).toEqual([])
    expect(mesh.get('12D3KooWb').view(mesh.now).quarantined).toEqual([])
  })
})

describe('quarantine configuration', () => {
  it('defaults to leases of the node\'s own lease, and is checked', () => {
    expect(DEFAULT_ELECTION_CONFIG).toMatchObject({ quarantineAfterMs: 2 * L, quarantineMs: 10 * L, quarantineMaxMs: 320 * L })
    expect(QUARANTINE_MAX_LEASES).toBe(320)
    expect(resolveElectionConfig({ leaseMs: 1000 })).toMatchObject({ quarantineAfterMs: 2000, quarantineMs: 10_000, quarantineMaxMs: 320_000 })
    expect(resolveElectionConfig({ leaseMs: 1000, quarantineMs: 500 })).toMatchObject({ quarantineMs: 500, quarantineMaxMs: 320_000 })
    expect(() => resolveElectionConfig({ quarantineMs: 10_000, quarantineMaxMs: 5000 })).toThrow(RangeError)
    expect(() => resolveElectionConfig({ quarantineAfterMs: 0 })).toThrow(RangeError)
    expect(() => resolveElectionConfig({ quarantineMs: -1 })).toThrow(RangeError)
  })
})
