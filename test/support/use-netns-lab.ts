import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { LabNode } from './netns-nodes.js'
import { NetnsLab, natSupport, netnsSupport, type LabOptions } from './netns.js'

/**
 * One lab of `count` namespaces for the test file that calls this inside its `describe`: a first case that fails,
 * saying why, where namespaces cannot be built; the lab built before the cases and torn down after them, with
 * nothing left behind and every process in `nodes` ended; a scratch folder for the nodes' data dirs.
 */
export function useNetnsLab (count: number, nodes: () => LabNode[] = () => [], options: LabOptions = {}): { lab: () => NetnsLab, root: () => string } {
  const support = (options.nats?.length ?? 0) > 0 ? natSupport() : netnsSupport()
  // Namespaces need root and iproute2 (NAT routers nftables, which `npm test` installs), which this project's
  // machines and CI have: without them this case fails.
  it('can build network namespaces here', () => {
    expect(support.ok ? 'ok' : support.reason).toBe('ok')
  })
  let lab: NetnsLab | undefined
  let root: string | undefined
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'mrp2p-netns-'))
    lab = NetnsLab.create(count, options)
  })
  afterAll(async () => {
    const l = lab
    lab = undefined
    if (l !== undefined) {
      await l.teardown()
      expect(l.leftovers()).toEqual([])
      for (const n of nodes()) expect(n.proc.running).toBe(false)
    }
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })
  return {
    lab: () => {
      if (lab === undefined) throw new Error('no lab')
      return lab
    },
    root: () => {
      if (root === undefined) throw new Error('no lab folder')
      return root
    }
  }
}
