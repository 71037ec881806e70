import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BLOCKED_PEERS_FILE } from '../node/data-dir.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import type { InfoResponse } from '../protocol/info.js'
import { freePorts } from './free-port.js'
import { NodeProcess } from './node-process.js'
import { createProbe, type Probe } from './probe.js'
import { readSwarmKey } from '../node/private-network.js'
import type { RequestTimeouts } from '../protocol/reqresp.js'
import { waitFor, WaitTimeoutError } from './wait-for.js'
import { errorMessage } from '../util/errors.js'

/**
 * A local mesh of real `mrp2p join` processes on 127.0.0.1, each with its own
 * fixed port and temp data dir, for tests, benchmarks and `mrp2p cluster`.
 *
 * Faults it can inject:
 * - kill(i): SIGKILL, no goodbye.
 * - freeze(i) / thaw(i): SIGSTOP / SIGCONT, a node that stops and later
 *   resumes believing no time has passed (a GC pause, a suspended VM).
 * - restart(i): start again from the same data dir and port: same PeerId,
 *   same address.
 * - partition(a, b) / heal(): each node of `a` gets the PeerIds of `b` in its
 *   DATA_DIR/blocked-peers.json and vice versa; the node's connection gater
 *   refuses those peers in both directions and closes open connections to
 *   them. No iptables needed (this machine has none, and loopback cannot be
 *   split per process without it), yet real traffic stops: no connection
 *   means no gossip, no streams. Nodes outside both groups are untouched.
 */
export type NodeState = 'running' | 'frozen' | 'killed' | 'stopped'

export interface ClusterNode {
  readonly index: number
  readonly dataDir: string
  readonly port: number
  readonly listen: string
  readonly process: NodeProcess
  peerId: string
  /** Dialable address, ending in /p2p/<PeerId>. */
  addr: string
  /** Its dashboard's URL (any free port unless `args` set `--http`). */
  dashboard: string | undefined
  state: NodeState
}

export interface ClusterOptions {
  nodes: number
  /** Extra environment for every node (lease timings, log level). */
  env?: Record<string, string>
  /** Extra `join` flags per node. */
  args?: (index: number) => string[]
  /** Flags for the node runtime of every node (e.g. --cpu-prof). */
  nodeArgs?: string[]
  /** Parent of the temp dirs; default os.tmpdir(). */
  rootDir?: string
  /** Keep data dirs and logs after stop() (for a failing test's post-mortem). */
  keep?: boolean
  /** Runs once per node after its folder is made and before it first starts (a test mounts a small disk there). */
  prepareNode?: (node: { index: number, dataDir: string }) => Promise<void> | void
  /** A private mesh: every node is started with `--swarm-key FILE`, and the probe uses the same key. */
  swarmKeyFile?: string
  readyTimeoutMs?: number
  /** How long the probe waits for a node's answer before counting it as silent. */
  probeTimeouts?: Partial<RequestTimeouts>
}

export interface Cluster {
  readonly nodes: ClusterNode[]
  readonly rootDir: string
  readonly probe: Probe
  kill: (i: number) => Promise<void>
  freeze: (i: number) => void
  thaw: (i: number) => void
  restart: (i: number) => Promise<void>
  stopNode: (i: number) => Promise<void>
  /**
   * Splits `a` from `b`. `outsiders` are peers that are not cluster nodes (a submitter): those listed under `a`
   * stand with `a`, so every node of `b` refuses them too, and the other way round.
   */
  partition: (a: number[], b: number[], options?: { timeoutMs?: number, outsiders?: { a?: string[], b?: string[] } }) => Promise<void>
  heal: (options?: { timeoutMs?: number }) => Promise<void>
  /** One node's answer, or undefined if it did not answer quickly. */
  info: (i: number) => Promise<InfoResponse | undefined>
  /** Answers of the given (default: all running) nodes, asked in parallel. */
  sample: (indices?: number[]) => Promise<Map<number, InfoResponse>>
  /** Until every running node in `indices` has a connection to every other one. */
  waitForMesh: (options?: { indices?: number[], timeoutMs?: number }) => Promise<void>
  running: () => number[]
  stop: () => Promise<void>
}

const live = new Set<NodeProcess>()
let exitHookInstalled = false

/** A harness that dies without stop() still takes its nodes with it (SIGKILL is sync-safe in 'exit'). */
function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const p of live) {
      try { p.child?.kill('SIGKILL') } catch { /* already gone */ }
    }
  })
}

export async function startCluster (options: ClusterOptions): Promise<Cluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1) throw new RangeError('nodes must be a positive integer')
  installExitHook()
  const rootDir = await mkdtemp(join(options.rootDir ?? tmpdir(), 'mrp2p-cluster-'))
  const ports = await freePorts(options.nodes)
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000
  const nodes: ClusterNode[] = []
  for (let i = 0; i < options.nodes; i++) {
    const dir = join(rootDir, `node-${i}`)
    await mkdir(dir, { recursive: true })
    const listen = `/ip4/127.0.0.1/tcp/${ports[i]}`
    const dataDir = join(dir, 'data')
    await options.prepareNode?.({ index: i, dataDir })
    nodes.push({
      index: i,
      dataDir,
      port: ports[i],
      listen,
      peerId: '',
      addr: '',
      dashboard: undefined,
      state: 'stopped',
      process: new NodeProcess({ dataDir, listen, bootstrap: [], env: options.env, extraArgs: [...(options.swarmKeyFile === undefined ? [] : ['--swarm-key', options.swarmKeyFile]), ...(options.args?.(i) ?? [])], nodeArgs: options.nodeArgs, logFile: join(dir, 'node.log') })
    })
  }
  const probe = await createProbe({ swarmKey: options.swarmKeyFile === undefined ? undefined : readSwarmKey(options.swarmKeyFile) })

  const launch = async (node: ClusterNode, bootstrap: string[]): Promise<void> => {
    node.process.init.bootstrap = bootstrap
    node.process.start()
    live.add(node.process)
    const ready = await node.process.waitReady(readyTimeoutMs)
    node.peerId = ready.peerId
    node.addr = ready.addrs.find(a => a.startsWith(node.listen)) ?? ready.addrs[0]
    node.dashboard = ready.dashboard
    node.state = 'running'
  }

  const cluster: Cluster = {
    nodes,
    rootDir,
    probe,
    running: () => nodes.filter(n => n.state === 'running').map(n => n.index),

    async kill (i) {
      const n = nodes[i]
      n.process.signal('SIGKILL')
      await n.process.waitExit()
      live.delete(n.process)
      n.state = 'killed'
    },
    freeze (i) {
      nodes[i].process.signal('SIGSTOP')
      nodes[i].state = 'frozen'
    },
    thaw (i) {
      nodes[i].process.signal('SIGCONT')
      nodes[i].state = 'running'
    },
    async restart (i) {
      const n = nodes[i]
      if (n.process.running) {
        await n.process.stop()
        live.delete(n.process)
      }
      const others = nodes.filter(o => o.index !== i && o.state === 'running').map(o => o.addr)
      await launch(n, others)
    },
    async stopNode (i) {
      await nodes[i].process.stop()
      live.delete(nodes[i].process)
      nodes[i].state = 'stopped'
    },

    async partition (a, b, opts = {}) {
      const blockedBy = (group: number[], outsiders: string[] = []): string[] => [...group.map(i => nodes[i].peerId), ...outsiders]
      const fromA = blockedBy(b, opts.outsiders?.b)
      const fromB = blockedBy(a, opts.outsiders?.a)
      await Promise.all([
        ...a.map(async i => { await writeBlocked(nodes[i], fromA) }),
        ...b.map(async i => { await writeBlocked(nodes[i], fromB) })
      ])
      const expect = new Map<number, Set<string>>()
      for (const i of a) expect.set(i, new Set(fromA))
      for (const i of b) expect.set(i, new Set(fromB))
      // Only a node that answers can confirm; a frozen one applies it when thawed.
      await waitFor(async () => {
        for (const [i, blocked] of expect) {
          if (nodes[i].state !== 'running') continue
          const info = await cluster.info(i)
          if (info === undefined) return false
          if (info.blocked.length !== blocked.size || !info.blocked.every(p => blocked.has(p))) return false
          if (info.connections.some(p => blocked.has(p))) return false
        }
        return true
      }, { timeoutMs: opts.timeoutMs ?? 10_000, description: 'the partition to take effect' })
    },

    async heal (opts = {}) {
      await Promise.all(nodes.map(async n => { await writeBlocked(n, []) }))
      let problem = ''
      await waitFor(async () => {
        for (const i of cluster.running()) {
          const info = await cluster.info(i)
          problem = info === undefined ? `node ${i} does not answer` : `node ${i} still blocks ${info.blocked.length} peers`
          if (info === undefined || info.blocked.length > 0) return false
        }
        return true
      }, { timeoutMs: opts.timeoutMs ?? 10_000, description: 'the block lists to clear' }).catch((err: unknown) => { throw new WaitTimeoutError(`${errorMessage(err)}; ${problem}`) })
      await cluster.waitForMesh({ timeoutMs: opts.timeoutMs ?? 20_000 })
    },

    async info (i) {
      const n = nodes[i]
      if (n.addr === '') return undefined
      return await probe.tryInfo(n.addr, options.probeTimeouts)
    },

    async sample (indices) {
      const which = indices ?? cluster.running()
      const answers = await Promise.all(which.map(async i => [i, await cluster.info(i)] as const))
      const out = new Map<number, InfoResponse>()
      for (const [i, info] of answers) if (info !== undefined) out.set(i, info)
      return out
    },

    async waitForMesh (opts = {}) {
      const which = opts.indices ?? cluster.running()
      let problem = 'no answers yet'
      try {
        await waitFor(async () => {
          const infos = await cluster.sample(which)
          const silent = which.filter(i => !infos.has(i))
          if (silent.length > 0) {
            problem = `nodes ${silent.join(',')} did not answer`
            return false
          }
          const gaps: string[] = []
          for (const [i, info] of infos) {
            const have = new Set(info.connections)
            const missing = which.filter(j => j !== i && !have.has(nodes[j].peerId))
            if (missing.length > 0) gaps.push(`${i}→${missing.join('+')}`)
          }
          problem = `missing connections ${gaps.join(' ')}`
          return gaps.length === 0
        }, { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 200, description: `a full mesh of nodes ${which.join(',')}` })
      } catch (err) {
        throw new WaitTimeoutError(`${errorMessage(err)}; ${problem}`)
      }
    },

    async stop () {
      await Promise.all(nodes.map(async n => {
        await n.process.stop()
        live.delete(n.process)
        n.process.closeLog()
        n.state = 'stopped'
      }))
      await probe.stop().catch(() => {})
      if (options.keep !== true) await rm(rootDir, { recursive: true, force: true })
    }
  }

  try {
    await launch(nodes[0], [])
    await Promise.all(nodes.slice(1).map(async n => { await launch(n, [nodes[0].addr]) }))
  } catch (err) {
    await cluster.stop()
    throw err
  }
  return cluster
}

async function writeBlocked (node: ClusterNode, peers: string[]): Promise<void> {
  await writeFileAtomic(join(node.dataDir, BLOCKED_PEERS_FILE), `${JSON.stringify({ blocked: peers })}\n`)
}
