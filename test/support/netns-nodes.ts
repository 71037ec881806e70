import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import { InfoResponse } from '../../src/protocol/info.js'
import { TEST_ELECTION_ENV } from './cluster-views.js'
import { NetnsLab, netnsSupport, type LabNamespace, type LabProcess } from './netns.js'
import { CLI } from './run-cli.js'

/** A `mrp2p join` process in a namespace of a NetnsLab. */
export interface LabNode {
  ns: LabNamespace
  proc: LabProcess
  peerId: string
  /** The dialable address on the bridge, ending in /p2p/<PeerId>. */
  addr: string
  printed: string[]
}

/** What a node in the lab starts with: none of the harness's variables, and it stops if the test process dies. */
export function labNodeEnv (): NodeJS.ProcessEnv {
  return {
    ...process.env,
    MRP2P_BOOTSTRAP: '',
    MRP2P_LISTEN: '',
    MRP2P_DATA_DIR: '',
    MRP2P_MDNS: '',
    MRP2P_SWARM_KEY: '',
    MRP2P_PARENT_PID: String(process.pid),
    ...TEST_ELECTION_ENV
  }
}

/** `mrp2p join` in namespace `index`, listening on its bridge address; resolves once it printed `ready`. */
export async function startLabNode (lab: NetnsLab, root: string, index: number, extra: string[] = []): Promise<LabNode> {
  const ns = lab.namespaces[index]
  const args = [process.execPath, CLI, 'join', '--listen', `/ip4/${ns.addr}/tcp/0`, '--data-dir', join(root, `node-${index}`), ...extra]
  const proc = lab.spawn(ns, args, { env: labNodeEnv() })
  const printed = await waitFor(() => {
    if (!proc.running) throw new Error(`node ${index} exited (${JSON.stringify(proc.result)}) before ready: ${proc.stderr.slice(-2000)}`)
    return /^ready$/m.test(proc.stdout) ? proc.stdout : undefined
  }, { timeoutMs: 20_000, intervalMs: 50, description: `node ${index} in ${ns.name} to print ready` })
  const peerId = /^peer-id (\S+)$/m.exec(printed)?.[1]
  const addrs = [...printed.matchAll(/^addr (\S+)$/gm)].map(m => m[1])
  expect(peerId, printed).toBeDefined()
  const addr = addrs.find(a => a.startsWith(`/ip4/${ns.addr}/tcp/`))
  expect(addr, `node ${index} printed ${addrs.join(', ')}`).toBeDefined()
  return { ns, proc, peerId: peerId as string, addr: addr as string, printed: addrs }
}

/** `mrp2p status --json` of `node`, run in the root namespace: the answer crosses the bridge. */
export async function labStatus (lab: NetnsLab, node: LabNode, extra: string[] = []): Promise<InfoResponse> {
  const r = await lab.run(undefined, [process.execPath, CLI, 'status', '--bootstrap', node.addr, '--json', '--timeout-ms', '3000', ...extra], { timeoutMs: 15_000 })
  if (r.code !== 0) throw new Error(`status of ${node.ns.name} exited ${String(r.code)}: ${r.stderr.trim()}`)
  return InfoResponse.parse(JSON.parse(r.stdout))
}

/**
 * One lab of `count` namespaces for the test file that calls this inside its `describe`: a first case that fails,
 * saying why, where namespaces cannot be built; the lab built before the cases and torn down after them, with
 * nothing left behind and every process in `nodes` ended; a scratch folder for the nodes' data dirs.
 */
export function useNetnsLab (count: number, nodes: () => LabNode[] = () => []): { lab: () => NetnsLab, root: () => string } {
  const support = netnsSupport()
  // Namespaces need root and iproute2, which this project's machines and CI have: without them this case fails.
  it('can build network namespaces here', () => {
    expect(support.ok ? 'ok' : support.reason).toBe('ok')
  })
  let lab: NetnsLab | undefined
  let root: string | undefined
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'mrp2p-netns-'))
    lab = NetnsLab.create(count)
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
