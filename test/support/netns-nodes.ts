import { join } from 'node:path'
import { waitFor } from '../../src/harness/wait-for.js'
import { InfoResponse } from '../../src/protocol/info.js'
import { TEST_ELECTION_ENV } from './cluster-views.js'
import type { LabNamespace, LabProcess, NetnsLab } from './netns.js'
import { binPath } from '../../src/harness/node-process.js'

// `mrp2p join` nodes in a NetnsLab (tests and the nat bench); the vitest hooks that build a lab are in use-netns-lab.ts.

/** A `mrp2p join` process in a namespace of a NetnsLab. */
export interface LabNode {
  ns: LabNamespace
  proc: LabProcess
  peerId: string
  /** The dialable address on the bridge, ending in /p2p/<PeerId>. */
  addr: string
  printed: string[]
}

/**
 * What a node in the lab starts with: none of the harness's variables, and it stops if the test process dies.
 * Each namespace stands for a host of its own, but they share one file system: with local reads off, a submitter's
 * inputs cross the lab's network (and its NATs and relays) as they would between hosts.
 */
export function labNodeEnv (): NodeJS.ProcessEnv {
  return {
    ...process.env,
    MRP2P_BOOTSTRAP: '',
    MRP2P_LISTEN: '',
    MRP2P_DATA_DIR: '',
    MRP2P_MDNS: '',
    MRP2P_SWARM_KEY: '',
    MRP2P_PARENT_PID: String(process.pid),
    MRP2P_LOCAL_READS: '0',
    ...TEST_ELECTION_ENV
  }
}

/** `mrp2p join` in namespace `index`, listening on its bridge address; resolves once it printed `ready`. */
export async function startLabNode (lab: NetnsLab, root: string, index: number, extra: string[] = []): Promise<LabNode> {
  const ns = lab.namespaces[index]
  const args = [process.execPath, binPath(), 'join', '--listen', `/ip4/${ns.addr}/tcp/0`, '--data-dir', join(root, `node-${index}`), ...extra]
  const proc = lab.spawn(ns, args, { env: labNodeEnv() })
  const printed = await waitFor(() => {
    if (!proc.running) throw new Error(`node ${index} exited (${JSON.stringify(proc.result)}) before ready: ${proc.stderr.slice(-2000)}`)
    return /^ready$/m.test(proc.stdout) ? proc.stdout : undefined
  }, { timeoutMs: 20_000, intervalMs: 50, description: `node ${index} in ${ns.name} to print ready` })
  const peerId = /^peer-id (\S+)$/m.exec(printed)?.[1]
  const addrs = [...printed.matchAll(/^addr (\S+)$/gm)].map(m => m[1])
  if (peerId === undefined) throw new Error(`node ${index} printed no peer id: ${printed}`)
  const addr = addrs.find(a => a.startsWith(`/ip4/${ns.addr}/tcp/`))
  if (addr === undefined) throw new Error(`node ${index} printed no address on ${ns.addr}: ${addrs.join(', ')}`)
  return { ns, proc, peerId, addr, printed: addrs }
}

/**
 * `mrp2p status --json` of `node`, run in the root namespace (the answer crosses the bridge), or, for a node behind
 * NAT, which nothing outside can dial, in its own namespace.
 */
export async function labStatus (lab: NetnsLab, node: LabNode, extra: string[] = []): Promise<InfoResponse> {
  const r = await lab.run(node.ns.nat === undefined ? undefined : node.ns, [process.execPath, binPath(), 'status', '--bootstrap', node.addr, '--json', '--timeout-ms', '3000', ...extra], { timeoutMs: 15_000 })
  if (r.code !== 0) throw new Error(`status of ${node.ns.name} exited ${String(r.code)}: ${r.stderr.trim()}`)
  return InfoResponse.parse(JSON.parse(r.stdout))
}
