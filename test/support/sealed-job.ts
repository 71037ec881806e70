import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import type { JobSeal, JobSpec, UnsealedJobSpec } from '../../src/protocol/job-messages.js'
import { sealJob } from '../../src/protocol/job-seal.js'

/** A seal for tests of what never checks one (the scheduler, the history): well-formed, signed by nobody. */
export const UNCHECKED_SEAL: JobSeal = {
  signer: '12D3KooWSrKnMZUcSxK8G7wmBbXdU8nFEfWGhLu6H8xjn8LmCSJb',
  signature: `${'A'.repeat(86)}==`,
  splitsRoot: '0'.repeat(64),
  splitCount: 1
}

/** The same Ed25519 key on every run, from a one-byte seed: a test's submitter identity. */
export async function testIdentity (seed = 1): Promise<PrivateKey> {
  return await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(seed))
}

/** `spec` signed by the test identity `seed`, as a submitter sends it. */
export async function sealedSpec (spec: UnsealedJobSpec, seed = 1): Promise<JobSpec> {
  return await sealJob(spec, await testIdentity(seed))
}
