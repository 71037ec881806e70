import { closeSync, openSync, readSync, renameSync, rmSync, writeSync, writevSync } from 'node:fs'
import type { AbortOptions, Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import type { z } from 'zod'
import { errorMessage } from '../util/errors.js'
import { InvalidFrameError, ProtocolError, StreamEndedError } from './errors.js'
import { decodeJson, encodeJson } from './framing.js'

/**
 * Bulk transfer on a libp2p 3 stream: length-prefixed frames, read with our
 * own buffer that pauses the stream past a high-water mark (the stream's own
 * reader and iterator buffer without bound), written with a bound on the
 * stream's write buffer (send() + onDrain alone let 250 MiB pile up here).
 *
 *   [JSON header] [chunk]... [empty frame] [JSON trailer {bytes}]
 *
 * A peer killed mid-transfer looks like a clean end of stream, so a transfer
 * is complete only when the trailer arrives and counts what was received.
 * The bytes themselves need no checksum of ours: noise seals every message
 * of the connection with ChaCha20-Poly1305, end to end even through a relay,
 * so a changed byte fails the connection. A SHA-256 of each transfer cost
 * the submitter's input path 0.55× of a bare stream against 0.76× without
 * (docs/performance.md). Content that must be what its name says (job code,
 * streaming files) is checked against its hash where it is used.
 */

export const BULK_CHUNK = 256 * 1024
const MAX_FRAME = BULK_CHUNK + 64 * 1024
const READ_HIGH_WATER = 2 * 1024 * 1024
const WRITE_HIGH_WATER = 1024 * 1024

export class TransferIncompleteError extends ProtocolError {
  static override readonly NAME = 'TransferIncompleteError'
  override name = TransferIncompleteError.NAME
}

function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}

/** Reads frames from a stream, pausing it while more than READ_HIGH_WATER bytes wait unread. */
export class FrameReader {
  private readonly buf = new Uint8ArrayList()
  private ended = false
  private error: Error | undefined
  private wake: (() => void) | undefined
  private paused = false
  private pauseQueued = false

  constructor (private readonly stream: Stream) {
    stream.addEventListener('message', (evt) => {
      this.buf.append(evt.data)
      if (this.buf.byteLength > READ_HIGH_WATER && !this.paused && !this.pauseQueued) {
        // Not from inside this handler: resume() hands the stream's buffer to us before it tells the muxer to send
        // window again, which would undo a pause made here; the stream would read "paused" while yamux kept the
        // sender going, until the stream's read buffer overflowed and reset it.
        this.pauseQueued = true
        queueMicrotask(() => {
          this.pauseQueued = false
          if (this.buf.byteLength > READ_HIGH_WATER && !this.paused && stream.readStatus === 'readable') {
            this.paused = true
            stream.pause()
          }
        })
      }
      this.notify()
    })
    stream.addEventListener('remoteCloseWrite', () => { this.ended = true; this.notify() })
    stream.addEventListener('close', (evt) => {
      this.ended = true
      if (evt.error !== undefined) this.error = evt.error
      this.notify()
    })
  }

  private notify (): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }

  private tryFrame (): Uint8ArrayList | undefined {
    let len = 0
    let shift = 0
    let i = 0
    for (;;) {
      if (i >= this.buf.byteLength) return undefined
      const b = this.buf.get(i++)
      len += (b & 0x7f) * 2 ** shift
      if (b < 0x80) break
      shift += 7
      if (shift > 28) throw new InvalidFrameError('bad frame length')
    }
    if (len > MAX_FRAME) throw new InvalidFrameError(`frame of ${len} bytes exceeds ${MAX_FRAME}`)
    if (this.buf.byteLength < i + len) return undefined
    // The frame's bytes as they arrived (noise messages of up to 64 KiB), not copied into one buffer.
    const frame = this.buf.sublist(i, i + len)
    this.buf.consume(i + len)
    if (this.paused && this.buf.byteLength < READ_HIGH_WATER / 2) {
      this.paused = false
      // A stream whose remote end finished while we were paused has handed over all it had and is closed for
      // reading: nothing to resume (resume() would throw).
      if (this.stream.readStatus === 'paused') this.stream.resume()
    }
    return frame
  }

  async next (options: AbortOptions = {}): Promise<Uint8Array> {
    return (await this.nextList(options)).subarray()
  }

  /** The next frame as the pieces it arrived in: a sink that writes them (writev) copies nothing. */
  async nextList (options: AbortOptions = {}): Promise<Uint8ArrayList> {
    for (;;) {
      const frame = this.tryFrame()
      if (frame !== undefined) return frame
      if (this.error !== undefined) throw new StreamEndedError(`stream failed: ${errorMessage(this.error)}`)
      if (this.ended) throw new StreamEndedError('stream ended before the transfer was complete')
      options.signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { reject(options.signal?.reason) }
        options.signal?.addEventListener('abort', onAbort, { once: true })
        this.wake = () => { options.signal?.removeEventListener('abort', onAbort); resolve() }
      })
    }
  }

  async json<S extends z.ZodType> (schema: S, options?: AbortOptions): Promise<z.output<S>> {
    return decodeJson(schema, await this.next(options))
  }
}

/** Writes frames, waiting whenever the stream holds more than WRITE_HIGH_WATER unsent bytes. */
export async function writeFrame (stream: Stream, data: Uint8Array, options: AbortOptions = {}): Promise<void> {
  stream.send(new Uint8ArrayList(varint(data.byteLength), data))
  while (stream.writeBufferLength > WRITE_HIGH_WATER) {
    options.signal?.throwIfAborted()
    if (stream.status !== 'open') throw new StreamEndedError('stream closed while sending')
    await new Promise<void>((resolve) => {
      const done = (): void => {
        stream.removeEventListener('idle', done)
        stream.removeEventListener('drain', done)
        stream.removeEventListener('close', done)
        options.signal?.removeEventListener('abort', done)
        resolve()
      }
      stream.addEventListener('idle', done)
      stream.addEventListener('drain', done)
      stream.addEventListener('close', done)
      options.signal?.addEventListener('abort', done)
    })
  }
}

export async function writeJsonFrame (stream: Stream, value: unknown, options?: AbortOptions): Promise<void> {
  await writeFrame(stream, encodeJson(value), options)
}

interface Trailer { bytes: number }

/** Sends `length` bytes of a file from `offset`, then the trailer. */
export async function sendFileRange (stream: Stream, path: string, offset: number, length: number, options: AbortOptions = {}): Promise<Trailer> {
  const fd = openSync(path, 'r')
  let sent = 0
  try {
    while (sent < length) {
      const chunk = Buffer.allocUnsafe(Math.min(BULK_CHUNK, length - sent))
      const n = readSync(fd, chunk, 0, chunk.length, offset + sent)
      if (n === 0) throw new TransferIncompleteError(`${path} ended after ${sent} of ${length} bytes`)
      await writeFrame(stream, chunk.subarray(0, n), options)
      sent += n
    }
  } finally {
    closeSync(fd)
  }
  return await sendTrailer(stream, sent, options)
}

export async function sendBytes (stream: Stream, data: Uint8Array, options: AbortOptions = {}): Promise<Trailer> {
  for (let off = 0; off < data.byteLength; off += BULK_CHUNK) await writeFrame(stream, data.subarray(off, off + BULK_CHUNK), options)
  return await sendTrailer(stream, data.byteLength, options)
}

async function sendTrailer (stream: Stream, bytes: number, options: AbortOptions): Promise<Trailer> {
  const trailer = { bytes }
  await writeFrame(stream, new Uint8Array(0), options)
  await writeJsonFrame(stream, trailer, options)
  return trailer
}

/** Receives a transfer's frames into `sink` and checks its trailer; the count of bytes received. */
export async function receiveFrames (reader: FrameReader, sink: (chunk: Uint8ArrayList) => void, maxBytes: number, options: AbortOptions = {}): Promise<number> {
  let got = 0
  for (;;) {
    const frame = await reader.nextList(options)
    if (frame.byteLength === 0) break
    got += frame.byteLength
    if (got > maxBytes) throw new TransferIncompleteError(`transfer exceeds its announced ${maxBytes} bytes`)
    sink(frame)
  }
  let trailer: unknown
  try {
    trailer = JSON.parse(new TextDecoder().decode(await reader.next(options)))
  } catch (err) {
    if (err instanceof ProtocolError) throw err
    throw new TransferIncompleteError('bad transfer trailer')
  }
  const t = trailer as Partial<Trailer>
  if (t.bytes !== got) throw new TransferIncompleteError(`transfer does not match its trailer (${got} bytes received)`)
  return got
}

/** Receives a transfer into `path` (written to a temporary name, renamed only when complete and verified). */
export async function receiveToFile (reader: FrameReader, path: string, maxBytes: number, options: AbortOptions = {}): Promise<number> {
  const tmp = `${path}.partial`
  const fd = openSync(tmp, 'w')
  let ok = false
  try {
    const n = await receiveFrames(reader, (chunk) => { writeAllSync(fd, [...chunk]) }, maxBytes, options)
    ok = true
    return n
  } finally {
    closeSync(fd)
    if (ok) renameSync(tmp, path)
    else rmSync(tmp, { force: true })
  }
}

export async function receiveBytes (reader: FrameReader, maxBytes: number, options: AbortOptions = {}): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  await receiveFrames(reader, (chunk) => { parts.push(chunk.subarray()) }, maxBytes, options)
  return Buffer.concat(parts)
}

/** One writev for a frame's pieces; a short write (a full disk) is finished piece by piece, or throws. */
export function writeAllSync (fd: number, pieces: Uint8Array[]): void {
  let written = writevSync(fd, pieces)
  for (const p of pieces) {
    if (written >= p.byteLength) {
      written -= p.byteLength
      continue
    }
    let off = written
    written = 0
    while (off < p.byteLength) off += writeSync(fd, p, off, p.byteLength - off)
  }
}
