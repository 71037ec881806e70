// One side of the nat bench's transfer, run inside a network namespace of the lab:
//   serve LISTEN RELAY KEYFILE BYTES   listens on LISTEN, holds a slot on RELAY (a multiaddr ending in /p2p/<id>),
//                                      prints `addrs <json>` once it has a relayed address, then takes streams of
//                                      BYTES bytes, answering each with one byte once all have arrived
//   send ADDR KEYFILE BYTES            dials ADDR (direct or /p2p-circuit), sends BYTES bytes, prints `seconds <s>`
//   dialtime ADDR KEYFILE N            opens a stream to ADDR N times, each from a fresh libp2p, printing `dial <ms>`
//                                      (`NAT_BENCH_DIALS=N npm run bench nat` prints them, direct and relayed)
//   watch ADDR KEYFILE                 asks the node at ADDR what it sees every 100 ms, printing `info <epoch ms>
//                                      <json>` (its connections, relayed peers, reachability) until killed
import '../src/util/polyfills.js'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createClientLibp2p } from '../src/node/client-libp2p.js'
import { readSwarmKey } from '../src/node/private-network.js'
import { writeFrame } from '../src/protocol/bulk.js'
import { queryInfo } from '../src/protocol/info.js'

const PROTOCOL = '/mrp2p-bench/nat/1.0.0'
const CHUNK = 256 * 1024
const [mode, ...rest] = process.argv.slice(2)

async function serve (listen: string, relay: string, keyFile: string, bytes: number): Promise<void> {
  const node = await createClientLibp2p({ version: 'bench', listen: [listen], swarmKey: readSwarmKey(keyFile), relaySlots: 1 })
  await node.start()
  await node.handle(PROTOCOL, (stream: Stream) => {
    let received = 0
    stream.addEventListener('message', (evt) => {
      if (received >= bytes) return
      received += evt.data.byteLength
      if (received >= bytes) {
        stream.send(new Uint8Array([1]))
        void stream.close().catch(() => {})
      }
    })
  })
  node.addEventListener('connection:close', (evt) => { process.stderr.write(`${Date.now()} closed ${evt.detail.remotePeer.toString()} ${evt.detail.remoteAddr.toString()}\n`) })
  node.addEventListener('self:peer:update', () => { process.stderr.write(`${Date.now()} addrs ${node.getMultiaddrs().map(String).join(' ')}\n`) })
  await node.dial(multiaddr(relay))
  const deadline = Date.now() + 30_000
  while (!node.getMultiaddrs().some((a) => a.toString().includes('/p2p-circuit'))) {
    if (Date.now() > deadline) throw new Error('no relay slot within 30 s')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  process.stdout.write(`addrs ${JSON.stringify(node.getMultiaddrs().map(String))}\n`)
}

async function send (addr: string, keyFile: string, bytes: number): Promise<void> {
  const node = await createClientLibp2p({ version: 'bench', swarmKey: readSwarmKey(keyFile) })
  await node.start()
  const stream = await node.dialProtocol(multiaddr(addr), PROTOCOL)
  const acked = new Promise<void>((resolve) => { stream.addEventListener('message', () => { resolve() }) })
  const chunk = Buffer.alloc(CHUNK, 0x61)
  const t0 = performance.now()
  for (let sent = 0; sent < bytes; sent += CHUNK) await writeFrame(stream, chunk)
  await acked
  const seconds = (performance.now() - t0) / 1000
  process.stdout.write(`seconds ${seconds}\n`)
  await node.stop()
}

/** How long opening a stream to ADDR takes, connection included, `rounds` times with a fresh libp2p each. */
async function dialTime (addr: string, keyFile: string, rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const node = await createClientLibp2p({ version: 'bench', swarmKey: readSwarmKey(keyFile) })
    await node.start()
    const t0 = performance.now()
    try {
      const stream = await node.dialProtocol(multiaddr(addr), PROTOCOL, { signal: AbortSignal.timeout(60_000) })
      process.stdout.write(`dial ${(performance.now() - t0).toFixed(0)}\n`)
      stream.abort(new Error('done'))
    } catch (err) {
      process.stdout.write(`dial failed after ${(performance.now() - t0).toFixed(0)}: ${String(err)}\n`)
    }
    await node.stop()
  }
}

async function watch (addr: string, keyFile: string): Promise<void> {
  const node = await createClientLibp2p({ version: 'bench', swarmKey: readSwarmKey(keyFile) })
  await node.start()
  for (;;) {
    try {
      const info = await queryInfo(node, multiaddr(addr), { timeouts: { dialMs: 1_000, firstByteMs: 1_000, responseMs: 1_000 } })
      process.stdout.write(`info ${Date.now()} ${JSON.stringify({ connections: info.connections, relayed: info.relayed, relays: info.reachability?.relays })}\n`)
    } catch {
      // Not up yet, or busy: the next ask.
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

if (mode === 'serve') await serve(rest[0], rest[1], rest[2], Number(rest[3]))
else if (mode === 'send') await send(rest[0], rest[1], Number(rest[2]))
else if (mode === 'watch') await watch(rest[0], rest[1])
else if (mode === 'dialtime') await dialTime(rest[0], rest[1], Number(rest[2]))
else throw new Error(`nat-child: unknown mode ${String(mode)}`)
