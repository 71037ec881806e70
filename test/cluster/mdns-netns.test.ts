import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import { binPath } from '../../src/harness/node-process.js'
import { generateSwarmKey } from '../../src/node/private-network.js'
import { InfoResponse } from '../../src/protocol/info.js'
import { labNodeEnv, labStatus, startLabNode, type LabNode } from '../support/netns-nodes.js'
import { sortedOutput } from '../support/output.js'
import { BOOKS, REFERENCE_CWD } from '../support/run-cli.js'
import { useNetnsLab } from '../support/use-netns-lab.js'

/**
 * LAN discovery (`join` with no --bootstrap on a non-loopback address turns mDNS on): five nodes of one private
 * mesh, each in a network namespace of its own on one bridge and told nothing of the others, form one mesh; a
 * sixth on the same bridge with another swarm key (so another mDNS service) stays out, as the five stay out of it.
 * `status --mdns` and `submit --mdns`, given no address, find a node of their own mesh.
 */
const MESH = 5

describe('a mesh that forms on a LAN by mDNS', () => {
  const nodes: LabNode[] = []
  const { lab, root: rootOf } = useNetnsLab(MESH + 1, () => nodes)

  it(`${MESH} nodes with no --bootstrap find each other and elect one coordinator; a node with another swarm key stays out`, async () => {
    const l = lab()
    const root = rootOf()
    const ours = join(root, 'mesh.key')
    const theirs = join(root, 'other.key')
    writeFileSync(ours, generateSwarmKey(), { mode: 0o600 })
    writeFileSync(theirs, generateSwarmKey(), { mode: 0o600 })
    nodes.push(...await Promise.all(Array.from({ length: MESH }, async (_, i) => await startLabNode(l, root, i, ['--swarm-key', ours]))))
    const outsider = await startLabNode(l, root, MESH, ['--swarm-key', theirs])
    const ids = nodes.map(n => n.peerId)

    const coordinator = await waitFor(async () => {
      const infos = await Promise.all(nodes.map(async n => await labStatus(l, n, ['--swarm-key', ours])))
      const leader = infos[0].coordinator
      if (leader === null || !ids.includes(leader) || infos.some(i => i.coordinator !== leader)) return undefined
      const alive = infos.map(i => i.members.filter(m => m.liveness === 'alive' && m.peerId !== i.peerId).map(m => m.peerId))
      return alive.every(a => a.length === MESH - 1) ? leader : undefined
    }, { timeoutMs: 60_000, intervalMs: 500, description: `the ${MESH} nodes to find each other by mDNS and agree on a coordinator` })
    expect(ids).toContain(coordinator)

    // The outsider heard the same LAN all along: it is alone in its own mesh, and no member knows it.
    const alone = await waitFor(async () => {
      const info = await labStatus(l, outsider, ['--swarm-key', theirs])
      return info.coordinator === outsider.peerId ? info : undefined
    }, { timeoutMs: 30_000, intervalMs: 500, description: 'the outsider to lead its own one-node mesh' })
    expect(alone.members.filter(m => m.peerId !== alone.peerId)).toEqual([])
    for (const n of nodes) {
      const info = await labStatus(l, n, ['--swarm-key', ours])
      expect(info.members.map(m => m.peerId)).not.toContain(outsider.peerId)
      expect(info.connections).not.toContain(outsider.peerId)
    }

    // `status --mdns` on the same LAN, told no address, finds a node of its own mesh only.
    const cli = [process.execPath, binPath()]
    const ask = async (key: string): Promise<InfoResponse> => {
      const r = await l.run(l.namespaces[MESH], [...cli, 'status', '--mdns', '--json', '--swarm-key', key], { timeoutMs: 20_000 })
      expect(r.code, r.stderr).toBe(0)
      return InfoResponse.parse(JSON.parse(r.stdout))
    }
    expect(ids).toContain((await ask(ours)).peerId)
    expect((await ask(theirs)).peerId).toBe(outsider.peerId)
    // And `submit --mdns`: a job with no address given, its output the reference.
    const out = join(root, 'wc-out')
    const ns = l.namespaces[0]
    const sub = await l.run(ns, [...cli, 'submit', 'wc', '--mdns', '--swarm-key', ours, '--listen', `/ip4/${ns.addr}/tcp/0`, '--input', ...BOOKS, '--output', out, '-q'], { cwd: REFERENCE_CWD, env: labNodeEnv(), timeoutMs: 60_000 })
    expect(sub.code, sub.stderr).toBe(0)
    expect(sortedOutput(out).equals(readFileSync(join(REFERENCE_CWD, 'wc.txt')))).toBe(true)
  }, 150_000)
})
