import { createHash, type Hash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { canonicalJson } from '../util/canonical-json.js'
import type { Manifest } from '../protocol/dataset-messages.js'

/** Multicodec codes (the multiformats table): a block is raw bytes; a manifest is JSON. */
const RAW = 0x55
const JSON_CODEC = 0x0200
const SHA2_256 = 0x12

/** A CID that is not a CIDv1 over a SHA-256 of the kind expected: never looked up, never stored. */
export class InvalidCidError extends Error {
  static readonly NAME = 'InvalidCidError'
  override readonly name = InvalidCidError.NAME
}

/** A block whose bytes do not hash to its CID. */
export class CorruptBlockError extends Error {
  static readonly NAME = 'CorruptBlockError'
  override readonly name = CorruptBlockError.NAME
}

function cidText (digest: Uint8Array, codec: number): string {
  return CID.createV1(codec, createDigest(SHA2_256, digest)).toString()
}

/** The CID (v1, raw, sha2-256, base32) of a block whose SHA-256 is `digest`. */
export function blockCidOfDigest (digest: Uint8Array): string {
  return cidText(digest, RAW)
}

export function blockCid (bytes: Uint8Array): string {
  return blockCidOfDigest(createHash('sha256').update(bytes).digest())
}

/** The CID (v1, json) of a manifest: of its canonical JSON, so the same manifest has one CID wherever it was built. */
export function manifestCid (manifest: Manifest): string {
  return cidText(createHash('sha256').update(canonicalJson(manifest)).digest(), JSON_CODEC)
}

/** The block of no bytes: no node stores it, every node has it (an empty file's split). */
export const EMPTY_BLOCK_CID = blockCid(new Uint8Array(0))

/** The SHA-256 a block named `cid` must hash to. */
export function blockDigest (cid: string): Uint8Array {
  let parsed: CID
  try {
    parsed = CID.parse(cid)
  } catch (err) {
    throw new InvalidCidError(`${cid} is not a CID: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (parsed.version !== 1 || parsed.code !== RAW || parsed.multihash.code !== SHA2_256 || parsed.multihash.digest.byteLength !== 32) {
    throw new InvalidCidError(`${cid} is not a raw sha2-256 CIDv1`)
  }
  return parsed.multihash.digest
}

/** Hashes a block as it arrives; `check` throws CorruptBlockError unless the bytes were those `cid` names. */
export class BlockHasher {
  private readonly hash: Hash = createHash('sha256')
  private readonly digest: Uint8Array

  constructor (readonly cid: string) {
    this.digest = blockDigest(cid)
  }

  update (piece: Uint8Array): void {
    this.hash.update(piece)
  }

  check (): void {
    const got = this.hash.digest()
    if (!Buffer.from(this.digest).equals(got)) throw new CorruptBlockError(`block ${this.cid} does not match its CID (got ${blockCidOfDigest(got)})`)
  }
}
