import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import { generateSwarmKey } from '../../src/node/private-network.js'
import type { InfoResponse } from '../../src/protocol/info.js'
import { labNodeEnv, labStatus, startLabNode, type LabNode } from '../support/netns-nodes.js'
import { useNetnsLab } from '../support/use-netns-lab.js'
import { sortedOutput } from '../support/output.js'
import { BOOKS, CLI, REFERENCE_CWD, REPO_ROOT, runCli } from '../support/run-cli.js'

/**
 * A mesh across NATs (docs/mesh.md, "Across NATs"), in network namespaces: two public nodes on one bridge, both
 * relays (`--relay`), and two home networks, each of two nodes behind a NAT router that masquerades out and lets
 * nothing new in. Nodes behind a NAT reach the public nodes directly, each other on their own LAN directly, and the
 * nodes behind the other NAT only through a relay. One private mesh (a swarm key), as the docs advise for public
 * relays.
 */
const PUBLIC = [0, 1]
const NATS = [[2, 3], [4, 5]]
const TIMING_JOB = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'timing.ts')

describe('a mesh across two NATs, through relays', () => {
  const nodes: LabNode[] = []
  const { lab, root: rootOf } = useNetnsLab(6, () => nodes, { nats: NATS })
  let key = ''

  const statusOf = async (n: LabNode): Promise<InfoResponse> => await labStatus(lab(), n, ['--swarm-key', key])
  /** `submit` run in the namespace of `via`, bootstrapping to it, listening on its network (so behind its NAT). */
  const submitFrom = (via: LabNode, args: string[]): ReturnType<ReturnType<typeof lab>['spawn']> =>
    lab().spawn(via.ns, [process.execPath, CLI, 'submit', ...args, '--bootstrap', via.addr, '--listen', `/ip4/${via.ns.addr}/tcp/0`, '--swarm-key', key, '-q'], { cwd: REFERENCE_CWD, env: labNodeEnv() })

  it('forms one mesh: NATed nodes hold relay slots, cross-NAT pairs connect through a relay, the rest directly', async () => {
    const l = lab()
    const root = rootOf()
    key = join(root, 'mesh.key')
    writeFileSync(key, generateSwarmKey(), { mode: 0o600 })
    const started = Date.now()
    const p0 = await startLabNode(l, root, 0, ['--relay', '--no-mdns', '--swarm-key', key])
    const p1 = await startLabNode(l, root, 1, ['--relay', '--no-mdns', '--swarm-key', key, '--bootstrap', p0.addr])
    nodes.push(p0, p1)
    nodes.push(...await Promise.all(NATS.flat().map(async (i) => await startLabNode(l, root, i, ['--no-mdns', '--swarm-key', key, '--bootstrap', p0.addr, '--bootstrap', p1.addr]))))
    const ids = nodes.map((n) => n.peerId)
    const natOf = (peer: string): number | undefined => nodes.find((n) => n.peerId === peer)?.ns.nat

    const infos = await waitFor(async () => {
      const all = await Promise.all(nodes.map(statusOf))
      const leader = all[0].coordinator
      if (leader === null || all.some((i) => i.coordinator !== leader)) return undefined
      // Every node connected to every other, and every NATed node reachable through both relays.
      if (all.some((i) => ids.some((p) => p !== i.peerId && !i.connections.includes(p)))) return undefined
      if (all.some((i) => natOf(i.peerId) !== undefined && (i.reachability?.relays.length ?? 0) < 2)) return undefined
      return all
    }, { timeoutMs: 90_000, intervalMs: 1_000, description: 'six nodes across two NATs to connect pairwise and agree on a coordinator' })
    const formedMs = Date.now() - started

    for (const info of infos) {
      const mine = natOf(info.peerId)
      expect(info.reachability?.nat).toBe('private')
      expect(info.reachability?.relay).toBe(mine === undefined)
      for (const other of ids.filter((p) => p !== info.peerId)) {
        const theirs = natOf(other)
        const crossNat = mine !== undefined && theirs !== undefined && mine !== theirs
        // Behind different NATs nothing but a relay joins them (TCP hole punching needs a port the NAT keeps:
        // libp2p's TCP dials from a fresh one); every other pair can dial one way or the other.
        expect({ pair: [info.peerId, other], relayed: info.relayed?.includes(other) ?? false }).toEqual({ pair: [info.peerId, other], relayed: crossNat })
      }
    }
    console.log(`mesh across NATs: formed in ${formedMs} ms (six nodes started, pairwise connected, NATed nodes on both relays)`)
  }, 150_000)

  it('a wc job submitted from behind one NAT: output exact', async () => {
    const out = join(rootOf(), 'wc-out')
    const submit = submitFrom(nodes[2], ['wc', '--input', ...BOOKS, '--output', out, '--split-size', '200000'])
    const res = await submit.exited
    expect(res.code, res.stderr).toBe(0)
    expect(sortedOutput(out).equals(readFileSync(join(REFERENCE_CWD, 'wc.txt')))).toBe(true)
  }, 120_000)

  it('a relay killed mid-job: the job completes with the exact output, its maps having run behind both NATs', async () => {
    const root = rootOf()
    const log = join(root, 'timing-log')
    mkdirSync(log)
    const params = (ms: number): string[] => ['--input', ...BOOKS, '--split-size', '100000', '--reduces', '3', '--param', `log=${log}`, '--param', `ms=${ms}`]
    const reference = join(root, 'timing-reference')
    const ref = await runCli(['run', TIMING_JOB, ...params(0), '--output', reference, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 60_000 })
    expect(ref.code, ref.stderr).toBe(0)
    const mapsDone = (): number => existsSync(join(log, 'map.log')) ? readFileSync(join(log, 'map.log'), 'utf8').split('\n').filter((l) => l !== '').length : 0
    const before = mapsDone()

    const out = join(root, 'timing-out')
    const submit = submitFrom(nodes[2], [TIMING_JOB, ...params(1_000), '--output', out])
    const maps = await waitFor(() => {
      if (!submit.running) throw new Error(`submit ended before three maps finished: ${submit.stderr}`)
      return mapsDone() - before >= 3 ? mapsDone() - before : undefined
    }, { timeoutMs: 60_000, intervalMs: 100, description: 'three maps of the job to finish' })
    // Still running: the kill comes mid-job.
    expect(submit.running).toBe(true)
    const relay = nodes[0]
    relay.proc.signal('SIGKILL')
    const res = await Promise.race([submit.exited, sleep(120_000).then(() => undefined)])
    // Should it hang, what each process said last is what tells why.
    const tails = (): string => [`submit: ${submit.stderr.slice(-3000)}`, ...nodes.map((n, i) => `node ${i}: ${n.proc.stderr.slice(-3000)}`)].join('\n---\n')
    expect(res?.code, res === undefined ? `submit still running 120 s after the relay's death\n${tails()}` : `${res.stderr}\n${tails()}`).toBe(0)
    expect(sortedOutput(out).equals(sortedOutput(reference))).toBe(true)
    // Each map call notes its process: the node's. Maps ran behind both NATs, so the input the submitter (behind
    // NAT 0) served crossed to NAT 1 through a relay.
    const ranOn = new Set(readFileSync(join(log, 'map.log'), 'utf8').split('\n').slice(before).filter((l) => l !== '').map((l) => Number(l.split(' ')[0])))
    const natsThatRan = new Set(nodes.filter((n) => n.proc.pid !== undefined && ranOn.has(n.proc.pid)).map((n) => n.ns.nat ?? 'public'))
    expect([...natsThatRan].filter((k) => k !== 'public').sort()).toEqual([0, 1])
    console.log(`relay killed after ${maps} maps: job completed; maps ran on ${ranOn.size} nodes`)
  }, 240_000)
})
