import { closeSync, openSync, renameSync, rmSync } from 'node:fs'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { z } from 'zod'
import { receiveFrames, sendBytes, sendFileRange, writeAllSync } from '../protocol/bulk.js'
import { withBulkStream } from '../protocol/bulk-rpc.js'
import { DATASET_PROTOCOLS, PutBlockResponse, type GetBlockRequest, type PutBlockRequest } from '../protocol/dataset-messages.js'
import { BulkResponseHeader } from '../protocol/job-messages.js'
import type { StreamOpener } from '../protocol/reqresp.js'
import { errorMessage } from '../util/errors.js'
import { BlockHasher } from './block-cid.js'

export type PeerRef = PeerId | Multiaddr | Multiaddr[]

/** A holder refused a block or could not send one. */
export class BlockTransferError extends Error {
  static readonly NAME = 'BlockTransferError'
  override readonly name = BlockTransferError.NAME
}

/**
 * Sends block `cid`, `bytes` bytes of `path` from `offset` (or bytes in hand); resolves once the holder has checked
 * and kept it.
 */
export async function putBlock (opener: StreamOpener, to: PeerRef, block: { cid: string, bytes: number }, source: { path: string, offset: number } | Uint8Array, signal: AbortSignal): Promise<void> {
  const header: z.output<typeof PutBlockRequest> = { cid: block.cid, bytes: block.bytes }
  await withBulkStream(opener, to, DATASET_PROTOCOLS.putBlock, header, { signal }, async ({ stream, reader }) => {
    if (source instanceof Uint8Array) await sendBytes(stream, source, { signal })
    else await sendFileRange(stream, source.path, source.offset, block.bytes, { signal })
    const answer = await reader.json(PutBlockResponse, { signal })
    if (!answer.ok) throw new BlockTransferError(`holder refused block ${block.cid}: ${answer.error}`)
  })
}

/** Receives block `cid` from `from` into `sink`, hashing it on the way: throws CorruptBlockError if it is not what `cid` names. */
export async function getBlock (opener: StreamOpener, from: PeerRef, block: { cid: string, bytes: number }, sink: (pieces: Uint8Array[]) => void, signal: AbortSignal): Promise<void> {
  const header: z.output<typeof GetBlockRequest> = { cid: block.cid }
  await withBulkStream(opener, from, DATASET_PROTOCOLS.getBlock, header, { signal }, async ({ reader }) => {
    const head = await reader.json(BulkResponseHeader, { signal })
    if (!head.ok) throw new BlockTransferError(head.error)
    if (head.bytes !== block.bytes) throw new BlockTransferError(`holder has ${head.bytes} bytes for block ${block.cid} of ${block.bytes}`)
    const hasher = new BlockHasher(block.cid)
    await receiveFrames(reader, (frame) => {
      const pieces = [...frame]
      for (const p of pieces) hasher.update(p)
      sink(pieces)
    }, block.bytes, { signal })
    hasher.check()
  })
}

/** The first `length` bytes of block `cid` (a sample: the holder checked the block, but a prefix cannot be checked here). */
export async function getBlockPrefix (opener: StreamOpener, from: PeerRef, cid: string, length: number, signal: AbortSignal): Promise<Uint8Array> {
  const header: z.output<typeof GetBlockRequest> = { cid, length }
  return await withBulkStream(opener, from, DATASET_PROTOCOLS.getBlock, header, { signal }, async ({ reader }) => {
    const head = await reader.json(BulkResponseHeader, { signal })
    if (!head.ok) throw new BlockTransferError(head.error)
    if (head.bytes > length) throw new BlockTransferError(`holder sent ${head.bytes} bytes for a prefix of ${length}`)
    const parts: Uint8Array[] = []
    await receiveFrames(reader, (frame) => { parts.push(frame.subarray()) }, head.bytes, { signal })
    return Buffer.concat(parts)
  })
}

/**
 * `attempt` on each holder in turn until one succeeds: that holder and its answer. When none does, throws what
 * `fail` makes of their reasons (`peer: why; …`, empty when there was no holder); an abort is thrown as it is.
 */
export async function fromFirstHolder<T> (holders: Iterable<{ peer: string, ref: PeerRef }>, signal: AbortSignal, attempt: (ref: PeerRef) => Promise<T>, fail: (reasons: string) => Error): Promise<{ peer: string, value: T }> {
  const reasons: string[] = []
  for (const h of holders) {
    signal.throwIfAborted()
    try {
      return { peer: h.peer, value: await attempt(h.ref) }
    } catch (err) {
      if (signal.aborted) throw err
      reasons.push(`${h.peer}: ${errorMessage(err)}`)
    }
  }
  throw fail(reasons.join('; '))
}

/**
 * Puts a block on the first `replicas` of `peers` (in the order given, a rank order) that take it: the peers it is
 * on, and why the others refused. Fewer than `replicas` when too few took it; the caller says what that means.
 */
export async function putOnFirst (peers: readonly string[], replicas: number, signal: AbortSignal, put: (peer: string) => Promise<void>): Promise<{ on: string[], reasons: string }> {
  const on: string[] = []
  const reasons: string[] = []
  for (const peer of peers) {
    if (on.length === replicas) break
    signal.throwIfAborted()
    try {
      await put(peer)
      on.push(peer)
    } catch (err) {
      if (signal.aborted) throw err
      reasons.push(`${peer}: ${errorMessage(err)}`)
    }
  }
  return { on, reasons: reasons.join('; ') }
}

/**
 * Block `cid` into `path` from the first of `holders` that has it intact (the file appears only whole and
 * verified); which one sent it. Throws with every holder's reason when none could.
 */
export async function fetchBlockToFile (opener: StreamOpener, holders: ReadonlyArray<{ peer: string, ref: PeerRef }>, block: { cid: string, bytes: number }, path: string, signal: AbortSignal): Promise<string> {
  const tmp = `${path}.partial`
  const got = await fromFirstHolder(holders, signal, async (ref) => {
    const fd = openSync(tmp, 'w')
    let ok = false
    try {
      await getBlock(opener, ref, block, (pieces) => { writeAllSync(fd, pieces) }, signal)
      ok = true
    } finally {
      closeSync(fd)
      if (ok) renameSync(tmp, path)
      else rmSync(tmp, { force: true })
    }
  }, (reasons) => new BlockTransferError(`no holder could send block ${block.cid}${reasons === '' ? ' (none known)' : `: ${reasons}`}`))
  return got.peer
}
