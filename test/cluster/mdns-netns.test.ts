import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import { generateSwarmKey } from '../../src/node/private-network.js'
import { labStatus, startLabNode, useNetnsLab, type LabNode } from '../support/netns-nodes.js'

/**
 * LAN discovery (`join` with no --bootstrap on a non-loopback address turns mDNS on): five nodes of one private
 * mesh, each in a network namespace of its own on one bridge and told nothing of the others, form one mesh; a
 * sixth on the same bridge with another swarm key (so another mDNS service) stays out, as the five stay out of it.
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
  }, 120_000)
})
