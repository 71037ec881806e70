import { createPublicKey, verify } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { canonicalJson } from '../util/canonical-json.js'
import { MerkleTree, verifyMerkleProof } from '../util/merkle-tree.js'
import { pickDeclared } from '../util/pick-declared.js'
import { SignedJobSchema, UnsealedJobSpecSchema, type JobRef, type JobSeal, type JobSpec, type SplitDescriptor, type UnsealedJobSpec } from './job-messages.js'

/**
 * Signed jobs (docs/security.md): the submitter signs what decides what code runs on which data (the code hash,
 * the streaming commands, the params, R, the job id, its options, and every split through the root of a Merkle
 * tree of them); the coordinator checks the signature at submit, and every worker again before it runs a task.
 * What is signed is the schema's parse of the spec in canonical JSON, so that every party signs or checks the
 * same bytes whatever order its fields came in.
 */

const JOB_DOMAIN = 'mrp2p job seal v1\n'
const CANCEL_DOMAIN = 'mrp2p cancel v1\n'
const BIND_DOMAIN = 'mrp2p dataset bind v1\n'

/** The tree whose root the seal signs: one leaf per split, in map order. */
export function splitsTree (splits: readonly SplitDescriptor[]): MerkleTree {
  return new MerkleTree(splits.map(splitLeaf))
}

function splitLeaf (split: SplitDescriptor): Uint8Array {
  return Buffer.from(canonicalJson(split))
}

function jobBytes (ref: JobRef | UnsealedJobSpec, splitsRoot: string, splitCount: number): Uint8Array {
  return Buffer.from(JOB_DOMAIN + canonicalJson({ job: pickDeclared(SignedJobSchema, ref), splits: { root: splitsRoot, count: splitCount } }))
}

/** The spec, parsed as every receiver will parse it, with the seal of `key` over it. */
export async function sealJob (unsealed: UnsealedJobSpec, key: PrivateKey): Promise<JobSpec> {
  const spec = UnsealedJobSpecSchema.parse(unsealed)
  const tree = splitsTree(spec.splits)
  const seal = { signer: signerOf(key), splitsRoot: tree.root, splitCount: tree.size }
  const signature = await key.sign(jobBytes(spec, seal.splitsRoot, seal.splitCount))
  return { ...spec, seal: { ...seal, signature: Buffer.from(signature).toString('base64') } }
}

/** Why a seal does not hold, in words for a log line or an answer; undefined when it holds. */
export function checkJobSeal (ref: JobRef | JobSpec): string | undefined {
  const seal = ref.seal
  return verifySignature(seal.signer, jobBytes(ref, seal.splitsRoot, seal.splitCount), seal.signature)
    ? undefined
    : `the job's signature (by ${seal.signer}) does not match its spec`
}

/** A whole spec: its seal, and its splits against the signed root. */
export function checkSealedSpec (spec: JobSpec): { problem: string, tree?: undefined } | { problem?: undefined, tree: MerkleTree } {
  const problem = checkJobSeal(spec)
  if (problem !== undefined) return { problem }
  const tree = splitsTree(spec.splits)
  if (tree.root !== spec.seal.splitsRoot || tree.size !== spec.seal.splitCount) return { problem: 'the job\'s splits are not the ones it was signed with' }
  return { tree }
}

/** Whether `split` is split `index` of the job `seal` signed. */
export function splitIsSealed (seal: JobSeal, index: number, split: SplitDescriptor, proof: readonly string[]): boolean {
  return split.index === index && verifyMerkleProof(splitLeaf(split), index, seal.splitCount, proof, seal.splitsRoot)
}

/** A request to cancel `jobId`, signed by `key`. */
export async function sealCancel (jobId: string, key: PrivateKey): Promise<{ signer: string, signature: string }> {
  const signature = await key.sign(Buffer.from(CANCEL_DOMAIN + jobId))
  return { signer: signerOf(key), signature: Buffer.from(signature).toString('base64') }
}

export function checkCancelSeal (jobId: string, seal: { signer: string, signature: string }): boolean {
  return verifySignature(seal.signer, Buffer.from(CANCEL_DOMAIN + jobId), seal.signature)
}

/** What a `put` or `rm` signs: the name, and the manifest it binds (none: a removal). */
function bindBytes (name: string, manifestCid: string | undefined): Uint8Array {
  return Buffer.from(`${BIND_DOMAIN}${name}\n${manifestCid ?? '-'}`)
}

/** A request to bind `name` to the manifest `manifestCid` (undefined: to remove it), signed by `key`. */
export async function sealBind (name: string, manifestCid: string | undefined, key: PrivateKey): Promise<{ signer: string, signature: string }> {
  const signature = await key.sign(bindBytes(name, manifestCid))
  return { signer: signerOf(key), signature: Buffer.from(signature).toString('base64') }
}

export function checkBindSeal (name: string, manifestCid: string | undefined, seal: { signer: string, signature: string }): boolean {
  return verifySignature(seal.signer, bindBytes(name, manifestCid), seal.signature)
}

function signerOf (key: PrivateKey): string {
  if (key.type !== 'Ed25519') throw new TypeError(`a submitter identity must be an Ed25519 key, not ${key.type}`)
  return peerIdFromPrivateKey(key).toString()
}

// node:crypto directly, not the key's own verify (typed as maybe a promise): a worker checks an order's seal
// between its synchronous checks of epoch and slot, with nothing awaited in between.
function verifySignature (signer: string, data: Uint8Array, signature: string): boolean {
  try {
    const peer = peerIdFromString(signer)
    if (peer.type !== 'Ed25519' || peer.publicKey === undefined) return false
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(peer.publicKey.raw).toString('base64url') }, format: 'jwk' })
    return verify(null, data, key, Buffer.from(signature, 'base64'))
  } catch {
    return false
  }
}
