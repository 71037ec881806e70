import '../../src/util/polyfills.js'
import { createServer, type Server, type Socket } from 'node:net'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'
import { pino } from 'pino'
import { z } from 'zod'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { INFO_PROTOCOL, protocolId } from '../../src/protocol/ids.js'
import { queryInfo, serveInfo, type InfoResponse } from '../../src/protocol/info.js'
import { handleRequests, request, type RegisteredHandler } from '../../src/protocol/reqresp.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  DialFailedError, DialTimeoutError, FirstByteTimeoutError, InvalidMessageError, RemoteError, ResponseTimeoutError
} from '../../src/protocol/errors.js'
import type { Logger } from '../../src/util/logger.js'
import { infoFixture } from '../support/info-fixture.js'
import { createTestPeer, frame, varint } from '../support/mesh-peers.js'

/** A logger that keeps its lines, to assert that a drop was reported. */
function memoryLogger (): { log: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const log = pino({ level: 'debug' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>) } })
  return { log, lines }
}

const INFO: InfoResponse = infoFixture('12D3KooWServer')

/** Send raw bytes on a fresh info stream and collect whatever comes back (or the reset). */
async function rawExchange (client: Libp2p, addr: Multiaddr, bytes: Uint8Array, protocol = INFO_PROTOCOL): Promise<{ bytes: Uint8Array, error?: unknown }> {
  const stream = await client.dialProtocol(addr, protocol)
  stream.send(bytes)
  await stream.close().catch(() => {})
  const chunks: Uint8Array[] = []
  try {
    for await (const chunk of stream) chunks.push(chunk instanceof Uint8Array ? chunk : chunk.subarray())
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error }
  }
  return { bytes: Buffer.concat(chunks) }
}

/** The body of the single frame in `bytes`, parsed as JSON. */
function envelopeOf (bytes: Uint8Array): unknown {
  let len = 0
  let shift = 0
  let i = 0
  for (; i < bytes.length; i++) {
    len += (bytes[i] & 0x7f) * 2 ** shift
    shift += 7
    if ((bytes[i] & 0x80) === 0) break
  }
  return JSON.parse(new TextDecoder().decode(bytes.subarray(i + 1, i + 1 + len)))
}

describe('request/response over real libp2p streams', () => {
  let server: Libp2p
  let client: Libp2p
  let addr: Multiaddr
  const serverLog = memoryLogger()
  let silentTcp: Server
  const silentSockets = new Set<Socket>()
  let silentAddr: Multiaddr
  let strangerId: string
  let info: RegisteredHandler

  beforeAll(async () => {
    server = await createTestPeer()
    client = await createTestPeer(false)
    info = await serveInfo({ registrar: server, info: () => INFO, log: serverLog.log })
    // Dials must name a peer we have no connection to, or libp2p reuses the open one.
    strangerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    addr = server.getMultiaddrs()[0]

    // Handlers that misbehave on purpose, one per client-side timeout.
    await handleRequests(server, {
      protocol: protocolId('test-stall'),
      requestSchema: z.object({}),
      log: serverLog.log,
      handle: async (_req, { signal }) => await new Promise((_resolve, reject) => { signal?.addEventListener('abort', () => { reject(new Error('gave up')) }) })
    })
    await server.handle(protocolId('test-half'), async (stream) => {
      // One byte of a length prefix, then nothing: the response has begun and never ends.
      stream.send(Uint8Array.of(0x85))
      await new Promise(resolve => setTimeout(resolve, 3_000))
      stream.abort(new Error('done'))
    })
    await handleRequests(server, {
      protocol: protocolId('test-throw'),
      requestSchema: z.object({ n: z.number() }),
      log: serverLog.log,
      handle: (req) => { throw new RangeError(`n=${req.n} is out of range`) }
    })
    await handleRequests(server, {
      protocol: protocolId('test-echo'),
      requestSchema: z.object({ n: z.number() }),
      log: serverLog.log,
      handle: (req) => ({ n: req.n })
    })

    // Accepts TCP and then says nothing: the noise handshake never completes.
    silentTcp = createServer((socket) => { silentSockets.add(socket) })
    await new Promise<void>(resolve => silentTcp.listen(0, '127.0.0.1', resolve))
    const port = (silentTcp.address() as { port: number }).port
    silentAddr = multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${strangerId}`)
  })

  afterAll(async () => {
    await client.stop()
    await server.stop()
    for (const socket of silentSockets) socket.destroy()
    await new Promise(resolve => silentTcp.close(resolve))
  })

  it('answers /mrp2p/info with a validated view', async () => {
    const info = await queryInfo(client, addr)
    expect(info).toEqual(INFO)
  })

  it('resets the stream on a frame over the size limit, logs it, and keeps serving', async () => {
    const before = serverLog.lines.length
    const result = await rawExchange(client, addr, varint(50 * 1024 * 1024))
    expect(result.bytes.byteLength).toBe(0)
    const dropped = serverLog.lines.slice(before).find(l => l.msg === 'dropped bad request')
    expect(dropped?.errName).toBe('InvalidFrameError')
    expect(await queryInfo(client, addr)).toEqual(INFO)
  })

  it('resets the stream on a length prefix that never ends', async () => {
    // Drops from one peer are logged at most once a second; the counter sees them all.
    const before = info.stats().dropped
    const result = await rawExchange(client, addr, new Uint8Array(16).fill(0xff))
    expect(result.bytes.byteLength).toBe(0)
    expect(info.stats().dropped).toBe(before + 1)
    expect(await queryInfo(client, addr)).toEqual(INFO)
  })

  it('answers a frame that is not JSON with an error and closes the stream', async () => {
    const result = await rawExchange(client, addr, frame(Uint8Array.of(0xc3, 0x28, 0x7b, 0x00)))
    expect(envelopeOf(result.bytes)).toMatchObject({ ok: false, error: { name: 'InvalidMessageError' } })
    expect(await queryInfo(client, addr)).toEqual(INFO)
  })

  it('answers JSON that fails the schema with an error', async () => {
    const result = await rawExchange(client, addr, frame('"hello"'))
    expect(envelopeOf(result.bytes)).toMatchObject({ ok: false, error: { name: 'InvalidMessageError' } })
  })

  it('drops a truncated frame and keeps serving', async () => {
    const before = info.stats().dropped
    const result = await rawExchange(client, addr, Uint8Array.of(...varint(100), 0x7b))
    expect(result.bytes.byteLength).toBe(0)
    await expect.poll(() => info.stats().dropped).toBe(before + 1)
    expect(await queryInfo(client, addr)).toEqual(INFO)
  })

  it('rejects a response that fails the caller\'s schema', async () => {
    await expect(request(client, addr, protocolId('test-echo'), { n: 1 }, z.object({ n: z.string() })))
      .rejects.toBeInstanceOf(InvalidMessageError)
  })

  it('carries the remote handler\'s error name back', async () => {
    const err = await request(client, addr, protocolId('test-throw'), { n: 7 }, z.unknown()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteError)
    expect((err as RemoteError).remoteName).toBe('RangeError')
    expect((err as RemoteError).message).toContain('n=7 is out of range')
  })

  it('times out waiting for the first byte', async () => {
    await expect(request(client, addr, protocolId('test-stall'), {}, z.unknown(), { timeouts: { firstByteMs: 300 } }))
      .rejects.toBeInstanceOf(FirstByteTimeoutError)
  })

  it('times out a response that started but did not finish', async () => {
    await expect(request(client, addr, protocolId('test-half'), {}, z.unknown(), { timeouts: { firstByteMs: 2_000, responseMs: 300 } }))
      .rejects.toBeInstanceOf(ResponseTimeoutError)
  })

  it('names an unknown protocol version as such: another mrp2p version, not a network fault', async () => {
    const err = await request(client, addr, protocolId('info', '9.0.0'), {}, z.unknown()).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DialFailedError)
    expect((err as Error).message).toMatch(/could not open \/mrp2p\/info\/9\.0\.0: the peer does not speak \/mrp2p\/info\/9\.0\.0 \(another mrp2p version/)
  })

  it('fails the dial at once when nobody listens', async () => {
    const port = await new Promise<number>(resolve => {
      const s = createServer()
      s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => { resolve(p) }) })
    })
    const nowhere = multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${strangerId}`)
    await expect(queryInfo(client, nowhere, { timeouts: { dialMs: 3_000 } })).rejects.toBeInstanceOf(DialFailedError)
  })

  it('times out a dial whose handshake never completes', async () => {
    await expect(queryInfo(client, silentAddr, { timeouts: { dialMs: 400 } })).rejects.toBeInstanceOf(DialTimeoutError)
  })
})
