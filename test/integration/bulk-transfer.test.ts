import '../../src/util/polyfills.js'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { BULK_CHUNK, FrameReader, receiveToFile, sendFileRange, TransferIncompleteError, writeFrame, writeJsonFrame } from '../../src/protocol/bulk.js'
import { useClientPair } from '../support/client-pair.js'

/*
 * A bulk transfer into a file over real libp2p (TCP, noise, yamux): a frame arrives in several noise messages and is
 * written as those pieces (one writev); a transfer counts only with an empty frame and a trailer that counts what
 * came. Anything less leaves no file, not even its temporary name.
 */
const pair = useClientPair()
let n = 0
const dir = mkdtempSync(join(tmpdir(), 'mrp2p-bulk-'))

/** Receives what `send` writes into a new file with receiveToFile(maxBytes); resolves to the file, or rejects. */
async function transfer (maxBytes: number, send: (stream: Stream) => Promise<void>): Promise<{ path: string, result: Promise<number> }> {
  const protocol = `/mrp2p-test/bulk/${n++}`
  const path = join(dir, `received-${n}`)
  let result: Promise<number> | undefined
  const handled = new Promise<void>((resolve) => {
    void pair.server().handle(protocol, (stream: Stream) => {
      result = receiveToFile(new FrameReader(stream), path, maxBytes)
      resolve()
    })
  })
  const stream = await pair.client().dialProtocol(multiaddr(pair.server().getMultiaddrs()[0].toString()), protocol)
  await send(stream)
  await stream.close().catch(() => {})
  await handled
  return { path, result: result as Promise<number> }
}

describe('bulk transfer into a file', () => {
  it('writes a range of a file byte for byte, frames of several pieces included', async () => {
    const source = join(dir, 'source')
    const data = randomBytes(3 * BULK_CHUNK + 12_345)
    writeFileSync(source, data)
    const offset = 1_000
    const length = data.length - offset - 7
    const { path, result } = await transfer(length, async (s) => { await sendFileRange(s, source, offset, length) })
    expect(await result).toBe(length)
    expect(readFileSync(path).equals(data.subarray(offset, offset + length))).toBe(true)
    expect(existsSync(`${path}.partial`)).toBe(false)
  })

  it('a sender that stops before its trailer leaves no file', async () => {
    const { path, result } = await transfer(1 << 20, async (s) => { await writeFrame(s, randomBytes(BULK_CHUNK)) })
    await expect(result).rejects.toThrow(/ended before the transfer was complete/)
    expect(existsSync(path) || existsSync(`${path}.partial`)).toBe(false)
  })

  it('a trailer that counts other than what came, or more than was announced, leaves no file', async () => {
    const short = await transfer(1 << 20, async (s) => {
      await writeFrame(s, randomBytes(1000))
      await writeFrame(s, new Uint8Array(0))
      await writeJsonFrame(s, { bytes: 999 })
    })
    await expect(short.result).rejects.toBeInstanceOf(TransferIncompleteError)
    expect(existsSync(short.path) || existsSync(`${short.path}.partial`)).toBe(false)
    const over = await transfer(1000, async (s) => {
      await writeFrame(s, randomBytes(1001))
      await writeFrame(s, new Uint8Array(0))
      await writeJsonFrame(s, { bytes: 1001 })
    })
    await expect(over.result).rejects.toThrow(/exceeds its announced 1000 bytes/)
    expect(existsSync(over.path) || existsSync(`${over.path}.partial`)).toBe(false)
  })
})
