import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Prng } from './prng.js'
import { concat, encodeJsonBytes, hostileValue, mutateBytes, mutateJson, randomBytes, type Json } from './fuzz-mutate.js'
import { frame, varint } from './mesh-peers.js'

/**
 * The stream half of the protocol fuzzer: many concurrent streams from a few
 * throw-away client identities to every protocol a live node serves, each
 * carrying one hostile input (a mutated valid request, random bytes, a lying
 * length prefix, a frame cut short, a stream reset mid-frame, or nothing at
 * all). One frame per stream, because every mrp2p handler reads exactly one
 * request frame and then answers and closes: frames after the first would
 * never be read, so they are not counted.
 *
 * Whatever the input, the node must end every stream it was given within its
 * own timeouts (5 s to receive a request, 10 s to answer): a stream the node
 * never closes is a pinned resource and is counted as such.
 */

export type ProtocolKind = 'reqresp' | 'bulk' | 'foreign'

export interface FuzzProtocol {
  protocol: string
  kind: ProtocolKind
  /** Valid messages to mutate (JSON for ours, encoded bytes for foreign ones); may be empty. */
  seeds: () => Array<Json | Uint8Array>
  /** Relative share of the streams. */
  weight: number
  /** Streams in flight at once per client (default: the fuzzer's perProtocolLimit); libp2p's own protocols allow 1–2. */
  limit?: number
}

export type StreamMode =
  | 'valid' | 'json-mutated' | 'bytes-mutated' | 'hostile-json' | 'random-frame' | 'random-bytes'
  | 'oversized-prefix' | 'endless-varint' | 'zero-length' | 'truncated' | 'reset-mid-frame'
  | 'idle' | 'slowloris' | 'answer-then-hold' | 'huge-valid'

export interface StreamFuzzTarget {
  peer: PeerId
  /** Where to dial it again when a client's connection is lost (an overloaded peer fails libp2p's ping monitor). */
  addr: Multiaddr
  /** Connected clients, each a separate identity (a per-protocol stream limit applies per connection). */
  clients: Libp2p[]
  protocols: FuzzProtocol[]
  /** Share of this target in the stream traffic (relative to the other targets). */
  weight: number
  name: string
}

export interface StreamFuzzStats {
  /** Hostile inputs written whole onto a stream the node accepted. */
  frames: number
  streams: number
  /** dialProtocol refused (stream limit, negotiation failure). */
  openFailures: number
  openFailureReasons: Record<string, number>
  /** Client connections to the target dialled again after libp2p closed them. */
  reconnects: number
  /** Writes that failed part way: the node had already reset the stream. */
  writeFailures: number
  /** Streams the node closed or reset before our deadline. */
  endedByNode: number
  /** Streams of our own protocols the node still held open at our deadline: pinned resources. */
  pinned: number
  /** The same for libp2p's own protocols (gossipsub keeps a peer's inbound stream open by design). */
  foreignHeld: number
  pinnedDetail: string[]
  /** Streams of our protocols opened and left silent: the node must end each within its request timeout. */
  idle: { opened: number, endedByNode: number, maxMs: number }
  byProtocol: Record<string, { frames: number, streams: number, openFailures: number }>
  byMode: Record<string, number>
  /** First response frame of each stream, classified: ok, error name, reset, … */
  outcomes: Record<string, number>
  elapsedMs: number
}

export interface StreamFuzzOptions {
  rng: Prng
  targets: StreamFuzzTarget[]
  /** Streams in flight at once, over all targets. */
  concurrency: number
  /** Streams in flight at once per (client, protocol): below the node's maxInboundStreams of 32. */
  perProtocolLimit?: number
  /** How long the node gets to end a stream we gave it before we call it pinned. */
  endDeadlineMs?: number
  /** Max bytes of one frame body (the node's limit is 1 MiB). */
  maxFrameBytes?: number
}

const MODES: Array<[StreamMode, number]> = [
  ['valid', 6], ['json-mutated', 30], ['bytes-mutated', 16], ['hostile-json', 8], ['random-frame', 6], ['random-bytes', 6],
  ['oversized-prefix', 4], ['endless-varint', 2], ['zero-length', 2], ['truncated', 6], ['reset-mid-frame', 5],
  ['idle', 1], ['slowloris', 1], ['answer-then-hold', 2], ['huge-valid', 1]
]
const FOREIGN_MODES = new Set<StreamMode>(['valid', 'bytes-mutated', 'random-frame', 'random-bytes', 'oversized-prefix', 'endless-varint', 'zero-length', 'truncated', 'reset-mid-frame', 'idle'])

function weighted<T> (rng: Prng, items: Array<[T, number]>): T {
  let total = 0
  for (const [, w] of items) total += w
  let r = rng.next() * total
  for (const [item, w] of items) {
    r -= w
    if (r < 0) return item
  }
  return items[items.length - 1][0]
}

/** Builds the bytes a mode writes and whether to close our side after them. */
function buildInput (rng: Prng, mode: StreamMode, p: FuzzProtocol, maxFrameBytes: number): { bytes: Uint8Array, closeAfter: boolean } {
  const seeds = p.seeds()
  const seed = seeds.length > 0 ? rng.pick(seeds) : undefined
  const seedBytes = (): Uint8Array => seed === undefined ? randomBytes(rng, rng.int(0, 64)) : seed instanceof Uint8Array ? seed : encodeJsonBytes(seed)
  const clip = (b: Uint8Array): Uint8Array => b.length > maxFrameBytes ? b.slice(0, maxFrameBytes) : b
  switch (mode) {
    case 'valid': return { bytes: frame(seedBytes()), closeAfter: true }
    case 'json-mutated': {
      const v = seed === undefined || seed instanceof Uint8Array ? hostileValue(rng) : mutateJson(rng, seed)
      return { bytes: frame(clip(encodeJsonBytes(v))), closeAfter: true }
    }
    case 'bytes-mutated': return { bytes: frame(mutateBytes(rng, seedBytes(), maxFrameBytes)), closeAfter: true }
    case 'hostile-json': return { bytes: frame(clip(encodeJsonBytes(hostileValue(rng, 3)))), closeAfter: true }
    case 'random-frame': return { bytes: frame(randomBytes(rng, rng.int(0, 2_048))), closeAfter: true }
    case 'random-bytes': return { bytes: randomBytes(rng, rng.int(1, 4_096)), closeAfter: rng.chance(0.7) }
    case 'oversized-prefix': {
      const claimed = rng.pick([maxFrameBytes + 1, maxFrameBytes + 17, 4 * 1024 * 1024, 2 ** 31, 2 ** 32 + 5, 2 ** 49, 2 ** 53 - 1])
      return { bytes: concat(varint(claimed), randomBytes(rng, rng.int(0, 4_096))), closeAfter: rng.chance(0.5) }
    }
    case 'endless-varint': return { bytes: new Uint8Array(rng.int(6, 64)).fill(0xff), closeAfter: rng.chance(0.5) }
    case 'zero-length': return { bytes: rng.chance(0.5) ? varint(0) : concat(varint(0), varint(0), varint(0)), closeAfter: true }
    case 'truncated': {
      const whole = frame(seedBytes())
      return { bytes: whole.slice(0, rng.int(1, Math.max(1, whole.length - 1))), closeAfter: true }
    }
    case 'reset-mid-frame': {
      const whole = frame(seedBytes())
      return { bytes: whole.slice(0, rng.int(0, Math.max(0, whole.length - 1))), closeAfter: false }
    }
    case 'idle': return { bytes: new Uint8Array(0), closeAfter: false }
    case 'slowloris': {
      const whole = frame(seedBytes())
      return { bytes: whole.slice(0, rng.int(1, Math.max(1, whole.length - 1))), closeAfter: false }
    }
    case 'answer-then-hold': return { bytes: frame(seedBytes()), closeAfter: false }
    case 'huge-valid': {
      // A valid message padded with an unknown field up to just under / just over the frame limit.
      const base = seed === undefined || seed instanceof Uint8Array ? {} : seed
      const over = rng.chance(0.5)
      const pad = 'p'.repeat(Math.max(0, maxFrameBytes - encodeJsonBytes(base).length - 16 + (over ? 64 : -64)))
      const v: Json = base !== null && typeof base === 'object' && !Array.isArray(base) ? { ...base, pad } : { v: base, pad }
      return { bytes: frame(encodeJsonBytes(v)), closeAfter: true }
    }
  }
}

/** The first frame the node answered with, in a word. */
function classify (bytes: Uint8Array): string {
  if (bytes.length === 0) return 'no-answer'
  let len = 0
  let shift = 0
  let i = 0
  for (; i < bytes.length && i < 10; i++) {
    len += (bytes[i] & 0x7f) * 2 ** shift
    shift += 7
    if (bytes[i] < 0x80) break
  }
  const body = bytes.subarray(i + 1, i + 1 + len)
  try {
    const v = JSON.parse(new TextDecoder().decode(body)) as { ok?: unknown, error?: unknown, body?: { accepted?: unknown } }
    if (v.ok === true) {
      if (v.body !== undefined && typeof v.body === 'object' && v.body !== null && 'accepted' in v.body) return `ok:accepted=${String(v.body.accepted)}`
      return 'ok'
    }
    if (v.ok === false) {
      const e = v.error
      if (typeof e === 'object' && e !== null && 'name' in e) return `error:${String((e as { name: unknown }).name)}`
      return 'error:bulk'
    }
    return 'answer:other'
  } catch {
    return 'answer:binary'
  }
}

async function writeAll (stream: Stream, bytes: Uint8Array, signal: AbortSignal): Promise<void> {
  // Chunked so that one huge input does not sit in our own buffer.
  for (let off = 0; off < bytes.length; off += 64 * 1024) {
    if (stream.status !== 'open' || stream.writeStatus !== 'writable') throw new Error(`stream ${stream.status} while writing`)
    if (!stream.send(bytes.subarray(off, off + 64 * 1024))) await stream.onDrain({ signal })
  }
}

/** Waits until the node ends the stream (reset, or its write side closed) or the deadline; returns what it sent first. */
async function awaitEnd (stream: Stream, deadlineMs: number): Promise<{ ended: boolean, first: Uint8Array, ms: number }> {
  const started = performance.now()
  const chunks: Uint8Array[] = []
  let got = 0
  return await new Promise((resolve) => {
    let done = false
    const finish = (ended: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onEnd)
      stream.removeEventListener('remoteCloseWrite', onEnd)
      resolve({ ended, first: concat(...chunks), ms: performance.now() - started })
    }
    const onMessage = (evt: { data: Uint8Array | { subarray: () => Uint8Array } }): void => {
      if (got < 4096) {
        const b = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
        chunks.push(b.slice(0, 4096 - got))
        got += b.length
      }
    }
    const onEnd = (): void => { finish(true) }
    const timer = setTimeout(() => { finish(false) }, deadlineMs)
    stream.addEventListener('message', onMessage as never)
    stream.addEventListener('close', onEnd)
    stream.addEventListener('remoteCloseWrite', onEnd)
    if (stream.status !== 'open' || stream.remoteWriteStatus !== 'writable') finish(true)
  })
}

export class StreamFuzzer {
  readonly stats: StreamFuzzStats = {
    frames: 0, streams: 0, openFailures: 0, openFailureReasons: {}, reconnects: 0, writeFailures: 0, endedByNode: 0, pinned: 0, foreignHeld: 0, pinnedDetail: [],
    idle: { opened: 0, endedByNode: 0, maxMs: 0 }, byProtocol: {}, byMode: {}, outcomes: {}, elapsedMs: 0
  }

  private running = false
  private readonly inFlight = new Map<string, number>()
  private loops: Array<Promise<void>> = []
  private startedAt = 0
  private readonly endDeadlineMs: number
  private readonly perProtocolLimit: number
  private readonly maxFrameBytes: number

  constructor (private readonly opts: StreamFuzzOptions) {
    this.endDeadlineMs = opts.endDeadlineMs ?? 20_000
    this.perProtocolLimit = opts.perProtocolLimit ?? 20
    this.maxFrameBytes = opts.maxFrameBytes ?? 1024 * 1024
  }

  start (): void {
    this.running = true
    this.startedAt = performance.now()
    this.loops = Array.from({ length: this.opts.concurrency }, (_, i) => this.loop(this.opts.rng.fork(), i))
  }

  /** Stops opening streams and waits for every stream in flight to end (or to be declared pinned). */
  async stop (): Promise<StreamFuzzStats> {
    this.running = false
    await Promise.all(this.loops)
    this.stats.elapsedMs = performance.now() - this.startedAt
    return this.stats
  }

  private async loop (rng: Prng, _id: number): Promise<void> {
    const targets = this.opts.targets.map((t): [StreamFuzzTarget, number] => [t, t.weight])
    while (this.running) {
      const target = weighted(rng, targets)
      const client = rng.pick(target.clients)
      const p = weighted(rng, target.protocols.map((x): [FuzzProtocol, number] => [x, x.weight]))
      let mode = weighted(rng, MODES)
      if (p.kind === 'foreign' && !FOREIGN_MODES.has(mode)) mode = 'bytes-mutated'
      const key = `${client.peerId.toString()}|${target.name}|${p.protocol}`
      if ((this.inFlight.get(key) ?? 0) >= (p.limit ?? this.perProtocolLimit)) {
        // That (client, protocol) is at its limit: pick again in a moment (a bare setImmediate loop burns a core).
        await new Promise(resolve => setTimeout(resolve, 2))
        continue
      }
      this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1)
      try {
        await this.one(rng, target, client, p, mode)
      } finally {
        this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1)
      }
    }
  }

  private count (p: FuzzProtocol): { frames: number, streams: number, openFailures: number } {
    let c = this.stats.byProtocol[p.protocol]
    if (c === undefined) c = this.stats.byProtocol[p.protocol] = { frames: 0, streams: 0, openFailures: 0 }
    return c
  }

  private async one (rng: Prng, target: StreamFuzzTarget, client: Libp2p, p: FuzzProtocol, mode: StreamMode): Promise<void> {
    const pc = this.count(p)
    const { bytes, closeAfter } = buildInput(rng, mode, p, this.maxFrameBytes)
    let stream: Stream
    try {
      stream = await client.dialProtocol(target.peer, p.protocol, { signal: AbortSignal.timeout(10_000) })
    } catch (err) {
      this.stats.openFailures++
      pc.openFailures++
      const why = `${target.name}: ${err instanceof Error ? `${err.name} ${err.message}` : String(err)}`.slice(0, 160)
      this.stats.openFailureReasons[why] = (this.stats.openFailureReasons[why] ?? 0) + 1
      if (err instanceof Error && err.name === 'ConnectionClosedError') await this.reconnect(client, target)
      // A refusal can come back without any I/O: never let a loop of them starve the event loop.
      await new Promise(resolve => setTimeout(resolve, 10))
      return
    }
    this.stats.streams++
    pc.streams++
    this.stats.byMode[mode] = (this.stats.byMode[mode] ?? 0) + 1
    // Never let a huge answer pile up on our side: we only look at its start.
    stream.maxReadBufferLength = 8 * 1024 * 1024
    const write = new AbortController()
    const writeTimer = setTimeout(() => { write.abort() }, 10_000)
    try {
      if (bytes.length > 0) await writeAll(stream, bytes, write.signal)
    } catch {
      this.stats.writeFailures++
      clearTimeout(writeTimer)
      stream.abort(new Error('fuzz: write failed'))
      this.bump('write-failed')
      return
    }
    clearTimeout(writeTimer)
    const wholeInput = mode !== 'idle' && mode !== 'slowloris' && mode !== 'reset-mid-frame'
    if (wholeInput) {
      this.stats.frames++
      pc.frames++
    }
    if (mode === 'reset-mid-frame') {
      stream.abort(new Error('fuzz: reset mid-frame'))
      this.bump('reset-by-us')
      return
    }
    if (closeAfter) {
      try {
        await stream.close({ signal: AbortSignal.timeout(10_000) })
      } catch {
        // The node may already have reset it: that is an answer too.
      }
    }
    const ourIdle = mode === 'idle' && p.kind !== 'foreign'
    if (ourIdle) this.stats.idle.opened++
    const end = await awaitEnd(stream, p.kind === 'foreign' ? Math.min(6_000, this.endDeadlineMs) : this.endDeadlineMs)
    if (end.ended) {
      this.stats.endedByNode++
      if (ourIdle) {
        this.stats.idle.endedByNode++
        this.stats.idle.maxMs = Math.max(this.stats.idle.maxMs, end.ms)
      }
    } else if (p.kind === 'foreign') {
      this.stats.foreignHeld++
    } else {
      this.stats.pinned++
      if (this.stats.pinnedDetail.length < 20) this.stats.pinnedDetail.push(`${target.name} ${p.protocol} ${mode} status=${stream.status} remoteWrite=${stream.remoteWriteStatus}`)
    }
    this.bump(stream.status === 'reset' || stream.status === 'aborted' ? (end.first.length > 0 ? `${classify(end.first)}+reset` : 'reset') : classify(end.first))
    if (stream.status === 'open' || stream.status === 'closing') stream.abort(new Error('fuzz: done'))
  }

  private readonly reconnecting = new Map<string, Promise<void>>()

  /** Drops a client's dead connection to the target and dials a new one (once, however many loops noticed). */
  private async reconnect (client: Libp2p, target: StreamFuzzTarget): Promise<void> {
    const key = `${client.peerId.toString()}|${target.name}`
    let p = this.reconnecting.get(key)
    if (p === undefined) {
      this.stats.reconnects++
      p = (async () => {
        await client.hangUp(target.peer).catch(() => {})
        await client.dial(target.addr, { signal: AbortSignal.timeout(10_000) }).catch(() => {})
      })().finally(() => { this.reconnecting.delete(key) })
      this.reconnecting.set(key, p)
    }
    await p
  }

  private bump (outcome: string): void {
    this.stats.outcomes[outcome] = (this.stats.outcomes[outcome] ?? 0) + 1
  }
}
