import '../../src/util/polyfills.js'
import { createHash } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { FrameReader, sendBytes } from '../../src/protocol/bulk.js'
import { useClientPair } from '../support/client-pair.js'

/**
 * A reader slower than its sender: FrameReader pauses the stream past its high-water mark and resumes it once it
 * has caught up. Found while trying a slower disk writer: the stream was reset ("Read buffer length … exceeded")
 * because a pause made while the stream was resuming was undone by the resume, and yamux's window could outgrow
 * the stream's read buffer. Real libp2p (TCP, noise, yamux) in one process.
 */
const PROTOCOL = '/mrp2p-test/slow-reader/1.0.0'
const BYTES = 40 * 1024 * 1024

const pair = useClientPair()

describe('bulk transfer to a slow reader', () => {
  it('the reader pauses and resumes the stream, and every byte arrives in order: no reset', async () => {
    const data = Buffer.alloc(BYTES)
    for (let i = 0; i < BYTES; i += 4) data.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, i)
    let pauses = 0
    const received = new Promise<{ bytes: number, sha: string }>((resolve, reject) => {
      void pair.server().handle(PROTOCOL, (stream: Stream) => {
        const pause = stream.pause.bind(stream)
        stream.pause = () => { pauses++; pause() }
        const reader = new FrameReader(stream)
        void (async () => {
          const hash = createHash('sha256')
          let bytes = 0
          for (;;) {
            const frame = await reader.next()
            if (frame.byteLength === 0) break
            hash.update(frame)
            bytes += frame.byteLength
            // A consumer busy elsewhere (a disk, a merge): the sender runs ahead until the stream pauses.
            await new Promise(resolve => setTimeout(resolve, 5))
          }
          resolve({ bytes, sha: hash.digest('hex') })
        })().catch(reject)
      })
    })
    const stream = await pair.client().dialProtocol(multiaddr(pair.server().getMultiaddrs()[0].toString()), PROTOCOL)
    const sent = await sendBytes(stream, data).catch(async (err: unknown) => {
      throw new Error(`sender: ${String(err)}; reader: ${await received.then(() => 'finished', (e: unknown) => String(e))}`)
    })
    const got = await received
    expect(got.bytes).toBe(BYTES)
    expect(got.sha).toBe(createHash('sha256').update(data).digest('hex'))
    expect(sent.bytes).toBe(BYTES)
    expect(pauses).toBeGreaterThan(0)
    await stream.close().catch(() => {})
  })
})
