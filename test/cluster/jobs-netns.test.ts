import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import type { InfoResponse } from '../../src/protocol/info.js'
import { labStatus, startLabNode, type LabNode } from '../support/netns-nodes.js'
import { useNetnsLab } from '../support/use-netns-lab.js'
import { CLI, SHARED_DATA } from '../support/run-cli.js'

/**
 * Across hosts, as far as one machine allows: three `mrp2p join` processes,
 * each in a network namespace of its own (veth on a bridge, address
 * 10.231.X.1{1,2,3}), and the submitter in the root namespace on the bridge's
 * 10.231.X.1. A namespace's loopback is its own, so no node can reach another
 * node or the submitter through 127.0.0.1: a wc job whose output matches the
 * reference byte for byte went over the bridge, end to end.
 */
const NODES = 3

describe(`a job across ${NODES} network namespaces`, () => {
  const nodes: LabNode[] = []
  const { lab: labOf, root: rootOf } = useNetnsLab(NODES, () => nodes)

  const startNode = async (index: number, bootstrap: string[]): Promise<LabNode> => await startLabNode(labOf(), rootOf(), index, bootstrap.flatMap(b => ['--bootstrap', b]))
  const status = async (node: LabNode): Promise<InfoResponse> => await labStatus(labOf(), node)

  it('three nodes in separate namespaces elect a coordinator and run wc to the reference output, with no loopback involved', async () => {
    const l = labOf()
    nodes.push(await startNode(0, []))
    nodes.push(...await Promise.all([1, 2].map(async i => await startNode(i, [nodes[0].addr]))))

    // Every node prints only its bridge address: nothing listens on 127.0.0.1.
    for (const n of nodes) {
      expect(n.printed.length).toBeGreaterThan(0)
      for (const a of n.printed) expect(a).toMatch(new RegExp(`^/ip4/${n.ns.addr.replaceAll('.', '\\.')}/tcp/\\d+/p2p/${n.peerId}$`))
    }

    // All three answer and name the same coordinator, which sees the other two alive.
    const ids = nodes.map(n => n.peerId)
    await waitFor(async () => {
      const infos = await Promise.all(nodes.map(status))
      const coordinator = infos[0].coordinator
      if (coordinator === null || !ids.includes(coordinator)) return undefined
      if (infos.some(i => i.coordinator !== coordinator)) return undefined
      const alive = infos.map(i => i.members.filter(m => m.liveness === 'alive' && m.peerId !== i.peerId).length)
      return alive.every(a => a === NODES - 1) ? coordinator : undefined
    }, { timeoutMs: 30_000, intervalMs: 200, description: 'all three nodes to agree on one coordinator and see each other alive' })

    const inputs = readdirSync(SHARED_DATA).filter(f => /^pg-.*\.txt$/.test(f)).sort().map(f => `../${f}`)
    expect(inputs).toHaveLength(8)
    const out = join(rootOf(), 'out')
    const submit = await l.run(undefined, [
      process.execPath, CLI, 'submit', 'wc',
      '--input', ...inputs,
      '--reduces', '3',
      '--output', out,
      '--bootstrap', nodes[2].addr,
      '--listen', `/ip4/${l.hostAddr}/tcp/0`,
      '--timeout', '30'
    ], { cwd: join(SHARED_DATA, 'expected'), env: { ...process.env, MRP2P_BOOTSTRAP: '', MRP2P_LISTEN: '' }, timeoutMs: 50_000 })
    expect(submit.code, `submit: ${submit.stderr.slice(-3000)}`).toBe(0)
    expect(existsSync(join(out, '_SUCCESS'))).toBe(true)
    expect(readdirSync(out).filter(f => f.startsWith('part-'))).toHaveLength(3)

    // Exactly the check a person runs: cat OUT/part-* | LC_ALL=C sort | grep .
    const sorted = spawnSync('sh', ['-c', 'cat part-* | LC_ALL=C sort | grep .'], { cwd: out, maxBuffer: 256 * 1024 * 1024 })
    expect(sorted.status, sorted.stderr.toString()).toBe(0)
    const expected = readFileSync(join(SHARED_DATA, 'expected', 'wc.txt'))
    expect(sorted.stdout.length).toBe(expected.length)
    expect(sorted.stdout.equals(expected)).toBe(true)

    // What the mesh advertises: every member by its bridge address, never 127.0.0.1.
    for (const n of nodes) {
      const info = await status(n)
      expect(info.peerId).toBe(n.peerId)
      const advertised = new Map<string, string[]>([[info.peerId, info.addrs]])
      for (const m of info.members) if (m.peerId !== info.peerId) advertised.set(m.peerId, m.addrs)
      expect([...advertised.keys()].sort()).toEqual([...ids].sort())
      for (const other of nodes) {
        const addrs = advertised.get(other.peerId) ?? []
        expect(addrs.length, `${n.ns.name} knows no address of ${other.ns.name}`).toBeGreaterThan(0)
        expect(addrs.some(a => a.startsWith(`/ip4/${other.ns.addr}/tcp/`)), `${n.ns.name} sees ${other.ns.name} at ${addrs.join(', ')}`).toBe(true)
        for (const a of addrs) expect(a).not.toContain('127.0.0.1')
      }
      // It talks to the other two directly, over the bridge.
      expect(info.connections).toEqual(expect.arrayContaining(ids.filter(id => id !== n.peerId)))
    }
  })

  it('a dataset put from outside the namespaces, wc over it into a dataset, and get of that: the reference output, every block over the bridge', async () => {
    const l = labOf()
    const run = async (args: string[], cwd = rootOf()): Promise<string> => {
      const r = await l.run(undefined, [process.execPath, CLI, ...args, '--bootstrap', nodes[1].addr], { cwd, env: { ...process.env, MRP2P_BOOTSTRAP: '', MRP2P_LISTEN: '' }, timeoutMs: 60_000 })
      expect(r.code, `${args[0]}: ${r.stderr.slice(-3000)}`).toBe(0)
      return r.stdout
    }
    const books = readdirSync(SHARED_DATA).filter(f => /^pg-.*\.txt$/.test(f)).sort()
    await run(['put', ...books, '--name', 'books', '--block-size', '300k'], SHARED_DATA)
    await run(['submit', 'wc', '--input', 'mesh:books', '--reduces', '3', '--output', 'mesh:counts', '--listen', `/ip4/${l.hostAddr}/tcp/0`, '--timeout', '30'])
    const out = join(rootOf(), 'counts')
    await run(['get', 'counts', out])
    const sorted = spawnSync('sh', ['-c', 'cat part-* | LC_ALL=C sort | grep .'], { cwd: out, maxBuffer: 256 * 1024 * 1024 })
    expect(sorted.stdout.equals(readFileSync(join(SHARED_DATA, 'expected', 'wc.txt')))).toBe(true)
    const fsck = JSON.parse(await run(['fsck', '--json'])) as Array<{ name: string, underReplicated: number, missing: number, corrupt: number }>
    expect(fsck.map((h) => [h.name, h.underReplicated + h.missing + h.corrupt])).toEqual([['books', 0], ['counts', 0]])
  })
})
