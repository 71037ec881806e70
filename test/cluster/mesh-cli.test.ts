import '../../src/util/polyfills.js'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createConnectionGater } from '../../src/node/gater.js'
import { createMeshLibp2p, type MeshLibp2p } from '../../src/node/libp2p.js'
import { NodeInfoFile } from '../../src/node/data-dir.js'
import { NodeProcess, binPath } from '../../src/harness/node-process.js'
import { createProbe, type Probe } from '../../src/harness/probe.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { CONTROL_TOPIC, INFO_PROTOCOL } from '../../src/protocol/ids.js'
import { runCli } from '../support/run-cli.js'
import { frame, varint } from '../support/mesh-peers.js'

/**
 * The command line of the mesh as a person meets it, each case a real
 * process: bad flags, an unreachable bootstrap, a taken port, an unusable data
 * dir, hostile peers, `status`, `cluster` and its clean-up.
 */
let root: string

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mrp2p-cli-'))
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

async function someFreePort (): Promise<number> {
  return await new Promise(resolve => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => { resolve(p) }) })
  })
}

async function strangerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('mrp2p join: bad input', () => {
  it('rejects a malformed --bootstrap with exit 2, naming the argument', async () => {
    const r = await runCli(['join', '--data-dir', join(root, 'bad-bootstrap'), '--bootstrap', 'not-a-multiaddr'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^mrp2p: invalid --bootstrap "not-a-multiaddr"/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('rejects a --bootstrap without /p2p/<PeerId>', async () => {
    const r = await runCli(['join', '--data-dir', join(root, 'bad-bootstrap2'), '--bootstrap', '/ip4/127.0.0.1/tcp/4001'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--bootstrap "/ip4/127.0.0.1/tcp/4001"')
    expect(r.stderr).toContain('/p2p/<PeerId>')
  })

  it('rejects a malformed MRP2P_BOOTSTRAP naming the variable, and bad --slots / --lease-ms', async () => {
    const env = await runCli(['join', '--data-dir', join(root, 'bad-env')], { env: { MRP2P_BOOTSTRAP: '/ip4/1.2.3/tcp/1' } })
    expect(env.code).toBe(2)
    expect(env.stderr).toContain('MRP2P_BOOTSTRAP')
    const slots = await runCli(['join', '--data-dir', join(root, 'bad-slots'), '--slots', 'many'])
    expect(slots.code).toBe(2)
    expect(slots.stderr).toContain('--slots "many"')
    const lease = await runCli(['join', '--data-dir', join(root, 'bad-lease'), '--lease-ms', '-5'])
    expect(lease.code).toBe(2)
    expect(lease.stderr).toContain('--lease-ms')
  })

  it('names the port when the listen port is in use', async () => {
    const blocker: Server = createServer()
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    try {
      const r = await runCli(['join', '--data-dir', join(root, 'port-in-use'), '--listen', `/ip4/127.0.0.1/tcp/${port}`])
      expect(r.code).not.toBe(0)
      expect(r.stderr).toContain(`port ${port} is already in use`)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    } finally {
      await new Promise(resolve => blocker.close(resolve))
    }
  })

  it('says clearly, on one line, that the data dir is not writable', async () => {
    // We run as root, so permissions cannot stop us: a regular file in the path can.
    const file = join(root, 'a-file')
    await writeFile(file, 'x')
    const r = await runCli(['join', '--data-dir', join(file, 'sub')])
    expect(r.code).not.toBe(0)
    expect(r.stderr.trim()).toMatch(/^mrp2p: data dir .*a-file\/sub is not writable \(ENOTDIR\)$/)
  })

  it('keeps retrying an unreachable bootstrap with backoff, says so, and still runs; SIGTERM stops it within 2 s', async () => {
    const port = await someFreePort()
    const node = new NodeProcess({ dataDir: join(root, 'lonely'), listen: '/ip4/127.0.0.1/tcp/0', bootstrap: [`/ip4/127.0.0.1/tcp/${port}/p2p/${await strangerId()}`] })
    node.start()
    try {
      await node.waitReady()
      await waitFor(() => (node.stderr.match(/bootstrap peer unreachable, retrying in/g) ?? []).length >= 3, { timeoutMs: 15_000, description: 'three retry messages' })
      const delays = [...node.stderr.matchAll(/"retryInMs":(\d+)/g)].map(m => Number(m[1]))
      expect(delays[2]).toBeGreaterThan(delays[0])
      expect(node.running).toBe(true)
      node.signal('SIGTERM')
      // The documented bound for a clean stop.
      expect(await node.waitExit(2_000)).toBe(true)
      expect(node.exitCode).toBe(0)
    } finally {
      await node.stop()
    }
  })
})

describe('a running node against hostile peers', () => {
  let node: NodeProcess
  let attacker: MeshLibp2p
  let probe: Probe
  let addr: string

  beforeAll(async () => {
    node = new NodeProcess({ dataDir: join(root, 'target'), listen: '/ip4/127.0.0.1/tcp/0', bootstrap: [], env: { MRP2P_LOG_LEVEL: 'debug' } })
    node.start()
    addr = (await node.waitReady()).addrs[0]
    attacker = await createMeshLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      listen: [],
      connectionGater: createConnectionGater({ has: () => false }),
      discoveryIntervalMs: 60_000,
      version: 'attacker'
    })
    await attacker.start()
    probe = await createProbe()
  })

  afterAll(async () => {
    await probe.stop()
    await attacker.stop()
    await node.stop()
  })

  it('drops garbage and forged messages on the control topic and keeps running', async () => {
    await attacker.dial(multiaddr(addr))
    attacker.services.pubsub.subscribe(CONTROL_TOPIC)
    await waitFor(() => attacker.services.pubsub.getSubscribers(CONTROL_TOPIC).length > 0, { timeoutMs: 10_000, description: 'the node on the control topic' })
    const forged = JSON.stringify({ type: 'lease', v: 1, from: (await probe.info(addr)).peerId, epoch: 1000, seq: 0, durationMs: 60_000 })
    for (const bytes of [Uint8Array.of(0xde, 0xad, 0xbe, 0xef), new TextEncoder().encode('{"type":"heartbeat"}'), new TextEncoder().encode(forged)]) {
      await attacker.services.pubsub.publish(CONTROL_TOPIC, bytes)
    }
    await waitFor(() => node.stderr.includes('dropped control message'), { timeoutMs: 10_000, description: 'the drop to be logged' })
    const info = await probe.info(addr)
    expect(info.epoch).toBeLessThan(1000)
    expect(info.highestEpoch).toBeLessThan(1000)
    expect(node.running).toBe(true)
  })

  it('drops garbage frames on /mrp2p/info and still answers', async () => {
    for (const bytes of [varint(64 * 1024 * 1024), frame('not json'), new Uint8Array(20).fill(0xff)]) {
      const stream = await attacker.dialProtocol(multiaddr(addr), INFO_PROTOCOL)
      stream.send(bytes)
      await stream.close().catch(() => {})
      try {
        for await (const chunk of stream) void chunk
      } catch {
        // reset by the node: expected for broken framing
      }
    }
    await waitFor(() => node.stderr.includes('dropped bad request'), { timeoutMs: 10_000, description: 'the drop to be logged' })
    const info = await probe.info(addr)
    expect(info.peerId).toBe(multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value)
    expect(node.running).toBe(true)
  })
})

describe('mrp2p status and mrp2p cluster', () => {
  it('status prints peers, coordinator, epoch and lease age; --json parses; unreachable exits 1', async () => {
    const a = new NodeProcess({ dataDir: join(root, 'status-a'), listen: '/ip4/127.0.0.1/tcp/0', bootstrap: [], env: { MRP2P_LEASE_MS: '1500', MRP2P_HEARTBEAT_MS: '300' } })
    a.start()
    const ready = await a.waitReady()
    const b = new NodeProcess({ dataDir: join(root, 'status-b'), listen: '/ip4/127.0.0.1/tcp/0', bootstrap: [ready.addrs[0]], env: { MRP2P_LEASE_MS: '1500', MRP2P_HEARTBEAT_MS: '300' } })
    b.start()
    const readyB = await b.waitReady()
    try {
      const json = await waitFor(async () => {
        const r = await runCli(['status', '--bootstrap', ready.addrs[0], '--json'])
        if (r.code !== 0) throw new Error(r.stderr)
        const parsed = JSON.parse(r.stdout) as { coordinator: string | null, members: Array<{ peerId: string, liveness: string }> }
        return parsed.coordinator !== null && parsed.members.some(m => m.peerId === readyB.peerId && m.liveness === 'alive') ? parsed : undefined
      }, { timeoutMs: 20_000, intervalMs: 300, description: 'a coordinator and both peers in status' })
      const text = await runCli(['status', '--bootstrap', ready.addrs[0]])
      expect(text.code).toBe(0)
      expect(text.stdout).toContain(`coordinator ${String(json.coordinator)}`)
      expect(text.stdout).toMatch(/epoch +\d+ \(lease age \d+\.\d s/)
      expect(text.stdout).toContain(readyB.peerId)
      expect(text.stdout).toMatch(/PEER +ADDRESS +ROLE +STATE +SLOTS/)

      const gone = await runCli(['status', '--bootstrap', `/ip4/127.0.0.1/tcp/${await someFreePort()}/p2p/${await strangerId()}`, '--timeout-ms', '2000'])
      expect(gone.code).toBe(1)
      expect(gone.stderr).toMatch(/^mrp2p: no node answered/)
      // Told nowhere to look: one line naming both ways; asked to look on the LAN where no node of the mesh is: the
      // same, after the wait (nodes on loopback answer no mDNS query).
      const nowhere = await runCli(['status'], { env: { MRP2P_BOOTSTRAP: '' } })
      expect(nowhere.code).toBe(1)
      expect(nowhere.stderr).toBe('mrp2p: status needs --bootstrap <multiaddr> (or MRP2P_BOOTSTRAP) naming a node of the mesh, or --mdns to find one on the LAN\n')
      const lan = await runCli(['status', '--mdns', '--timeout-ms', '1000'], { env: { MRP2P_BOOTSTRAP: '' } })
      expect(lan.code).toBe(1)
      expect(lan.stderr).toBe('mrp2p: no node of the mesh answered on the LAN within 1000 ms (mDNS _mrp2p._udp.local; a private mesh also needs --swarm-key FILE)\n')
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('cluster --nodes 3 prints addresses and leaves no process behind on Ctrl-C', async () => {
    const child = spawn(process.execPath, [binPath(), 'cluster', '--nodes', '3', '--keep'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.stderr.resume()
    const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
    await waitFor(() => /^ready$/m.test(out), { timeoutMs: 30_000, description: 'the cluster to be ready' })
    expect(out.match(/^node \d \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\w+$/gm)).toHaveLength(3)
    // Each node's dashboard, from 8470 up (a port already taken is skipped), one each, every one answering.
    const dashboards = [...out.matchAll(/^dashboard \d (http:\/\/127\.0\.0\.1:(\d+)\/)$/gm)]
    expect(dashboards).toHaveLength(3)
    expect(new Set(dashboards.map((d) => d[2])).size).toBe(3)
    for (const d of dashboards) {
      expect(Number(d[2])).toBeGreaterThanOrEqual(8470)
      expect((await fetch(d[1])).status).toBe(200)
    }
    const dataRoot = /^data (.+)$/m.exec(out)?.[1] ?? ''
    const pids = await Promise.all([0, 1, 2].map(async i => NodeInfoFile.parse(JSON.parse(await readFile(join(dataRoot, `node-${i}`, 'data', 'node.json'), 'utf8'))).pid))
    expect(pids.every(isAlive)).toBe(true)
    child.kill('SIGINT')
    expect(await exited).toBe(0)
    expect(out).toMatch(/^stopped$/m)
    expect(pids.filter(isAlive)).toEqual([])
    await rm(dataRoot, { recursive: true, force: true })
  })

  it('nodes of a cluster whose parent is SIGKILLed stop by themselves', async () => {
    const child = spawn(process.execPath, [binPath(), 'cluster', '--nodes', '2', '--keep'], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
    await waitFor(() => /^ready$/m.test(out), { timeoutMs: 30_000, description: 'the cluster to be ready' })
    const dataRoot = /^data (.+)$/m.exec(out)?.[1] ?? ''
    const pids = await Promise.all([0, 1].map(async i => NodeInfoFile.parse(JSON.parse(await readFile(join(dataRoot, `node-${i}`, 'data', 'node.json'), 'utf8'))).pid))
    child.kill('SIGKILL')
    await waitFor(() => pids.every(p => !isAlive(p)), { timeoutMs: 10_000, description: 'orphaned nodes to exit' })
    await rm(dataRoot, { recursive: true, force: true })
  })
})
