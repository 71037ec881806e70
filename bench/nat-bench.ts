// `npm run bench nat`: a mesh across two NATs in network namespaces (the lab of test/cluster/nat-netns.test.ts:
// two public relays, two nodes behind each of two NAT routers). Measures, from `join` of the NATed nodes: the time
// to a direct connection to a public node, to a relay slot, to a relayed connection to a node behind the other NAT,
// and to a direct one to it (hole punching); then a transfer from behind a NAT to a public node, direct and through
// a relay, in the same run (the relayed rate as a ratio of the direct one). Needs root, iproute2 and nftables.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateSwarmKey } from '../src/node/private-network.js'
import { startLabNode, type LabNode } from '../test/support/netns-nodes.js'
import { NetnsLab, natSupport } from '../test/support/netns.js'

const NATS = [[2, 3], [4, 5]]
const WATCH_MS = 45_000
const TRANSFER_BYTES = 64 * 1024 * 1024
const ROUNDS = 3
const CHILD = join(import.meta.dirname, 'nat-child.js')

interface Milestones { ready: number, directPublic?: number, slot?: number, twoSlots?: number, crossRelayed?: number, crossDirect?: number }

export async function runNatBench (): Promise<Record<string, number>> {
  const support = natSupport()
  if (!support.ok) throw new Error(`nat bench: ${support.reason}`)
  const lab = NetnsLab.create(6, { nats: NATS })
  const root = mkdtempSync(join(tmpdir(), 'mrp2p-nat-bench-'))
  try {
    const key = join(root, 'mesh.key')
    writeFileSync(key, generateSwarmKey(), { mode: 0o600 })
    const keyArgs = ['--swarm-key', key]
    const p0 = await startLabNode(lab, root, 0, ['--relay', '--no-mdns', ...keyArgs])
    const p1 = await startLabNode(lab, root, 1, ['--relay', '--no-mdns', ...keyArgs, '--bootstrap', p0.addr])
    // Timed by the epoch clock: the watchers in the namespaces stamp what they saw with it.
    const joined = Date.now()
    const natted = await Promise.all(NATS.flat().map(async (i) => {
      const node = await startLabNode(lab, root, i, ['--no-mdns', ...keyArgs, '--bootstrap', p0.addr, '--bootstrap', p1.addr])
      const watcher = lab.spawn(node.ns, [process.execPath, CHILD, 'watch', node.addr, key])
      return { node, watcher, seen: { ready: Date.now() - joined } satisfies Milestones as Milestones }
    }))
    const publicIds = new Set([p0.peerId, p1.peerId])
    const natOf = new Map(natted.map(({ node }) => [node.peerId, node.ns.nat]))
    const read = (node: LabNode, out: string, seen: Milestones): void => {
      for (const m of out.matchAll(/^info (\d+) (.*)$/gm)) {
        const at = Number(m[1]) - joined
        const info = JSON.parse(m[2]) as { connections: string[], relayed?: string[], relays?: string[] }
        const direct = info.connections.filter((p) => info.relayed?.includes(p) !== true)
        const cross = info.connections.filter((p) => natOf.has(p) && natOf.get(p) !== node.ns.nat)
        if (seen.directPublic === undefined && direct.some((p) => publicIds.has(p))) seen.directPublic = at
        if (seen.slot === undefined && (info.relays?.length ?? 0) >= 1) seen.slot = at
        if (seen.twoSlots === undefined && (info.relays?.length ?? 0) >= 2) seen.twoSlots = at
        if (seen.crossRelayed === undefined && cross.some((p) => info.relayed?.includes(p) === true)) seen.crossRelayed = at
        if (seen.crossDirect === undefined && cross.some((p) => direct.includes(p))) seen.crossDirect = at
      }
    }
    while (Date.now() - joined < WATCH_MS) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      for (const n of natted) read(n.node, n.watcher.stdout, n.seen)
      if (natted.every((n) => n.seen.crossDirect !== undefined)) break
    }
    for (const n of natted) n.watcher.signal('SIGKILL')
    const median = (xs: Array<number | undefined>): number => {
      const got = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b)
      return got.length < xs.length ? -1 : got[Math.floor(got.length / 2)]
    }
    const seen = natted.map((n) => n.seen)
    for (const { node, seen: s } of natted) {
      process.stderr.write(`nat bench: node ${node.ns.index} (NAT ${String(node.ns.nat)}): ${JSON.stringify(Object.fromEntries(Object.entries(s).map(([k, v]) => [k, Math.round(v)])))} ms after join\n`)
    }

    // The transfer: a server on public node 1's host with a slot on relay 0, a sender behind NAT 1.
    const server = lab.spawn(lab.namespaces[1], [process.execPath, CHILD, 'serve', `/ip4/${lab.namespaces[1].addr}/tcp/0`, p0.addr, key, String(TRANSFER_BYTES)])
    const addrs = await new Promise<string[]>((resolve, reject) => {
      const timer = setInterval(() => {
        const line = /^addrs (.*)$/m.exec(server.stdout)?.[1]
        if (line !== undefined) { clearInterval(timer); resolve(JSON.parse(line) as string[]) }
        if (!server.running) { clearInterval(timer); reject(new Error(`nat bench: the transfer server ended: ${server.stderr}`)) }
      }, 50)
    })
    const direct = addrs.find((a) => a.startsWith(`/ip4/${lab.namespaces[1].addr}/`) && !a.includes('/p2p-circuit'))
    const relayed = addrs.find((a) => a.includes('/p2p-circuit'))
    if (direct === undefined || relayed === undefined) throw new Error(`nat bench: the server has no direct or no relayed address: ${addrs.join(', ')}`)
    const sendOnce = async (addr: string): Promise<number> => {
      const r = await lab.run(lab.namespaces[4], [process.execPath, CHILD, 'send', addr, key, String(TRANSFER_BYTES)], { timeoutMs: 120_000 })
      const seconds = Number(/^seconds (\S+)$/m.exec(r.stdout)?.[1])
      if (r.code !== 0 || !Number.isFinite(seconds)) throw new Error(`nat bench: send to ${addr} failed (${String(r.code)}) at ${Date.now()}: ${r.stderr.slice(-1000)}; the server said: ${server.stderr.slice(-3000)}`)
      return TRANSFER_BYTES / 1e6 / seconds
    }
    if (process.env.NAT_BENCH_DIALS !== undefined) {
      for (const [name, addr] of [['direct', direct], ['relayed', relayed]]) {
        const r = await lab.run(lab.namespaces[4], [process.execPath, CHILD, 'dialtime', addr, key, process.env.NAT_BENCH_DIALS], { timeoutMs: 300_000 })
        process.stderr.write(`nat bench: ${name} dials (ms): ${r.stdout.replace(/\n/g, ' ')}\n`)
      }
    }
    const directRates: number[] = []
    const relayedRates: number[] = []
    for (let i = 0; i < ROUNDS; i++) {
      directRates.push(await sendOnce(direct))
      relayedRates.push(await sendOnce(relayed))
    }
    server.signal('SIGKILL')
    const directMBps = median(directRates)
    const relayedMBps = median(relayedRates)
    return {
      joinToReadyMs: median(seen.map((s) => s.ready)),
      joinToDirectPublicMs: median(seen.map((s) => s.directPublic)),
      joinToRelaySlotMs: median(seen.map((s) => s.slot)),
      joinToTwoRelaySlotsMs: median(seen.map((s) => s.twoSlots)),
      joinToRelayedCrossNatMs: median(seen.map((s) => s.crossRelayed)),
      // -1: some node never got a direct connection across the NATs within the watch (hole punching failed).
      joinToDirectCrossNatMs: median(seen.map((s) => s.crossDirect)),
      nodesHolePunched: seen.filter((s) => s.crossDirect !== undefined).length,
      directMBps,
      relayedMBps,
      relayedVsDirect: relayedMBps / directMBps
    }
  } finally {
    await lab.teardown()
    rmSync(root, { recursive: true, force: true })
  }
}
