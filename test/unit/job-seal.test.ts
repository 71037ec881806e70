import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import type { UnsealedJobSpec } from '../../src/protocol/job-messages.js'
import { checkCancelSeal, checkJobSeal, checkSealedSpec, sealCancel, splitIsSealed } from '../../src/protocol/job-seal.js'
import { jobRefOf } from '../../src/protocol/job-messages.js'
import { canonicalJson } from '../../src/util/canonical-json.js'
import { MerkleTree, verifyMerkleProof } from '../../src/util/merkle-tree.js'
import { OrderSealCheck } from '../../src/worker/order-seal-check.js'
import type { WorkOrder } from '../../src/worker/attempt.js'
import { sealedSpec, testIdentity } from '../support/sealed-job.js'

function unsealed (maps = 5): UnsealedJobSpec {
  return {
    jobId: 'wc-0123456789ab',
    jobName: 'wc',
    codeHash: 'c'.repeat(64),
    splits: Array.from({ length: maps }, (_, i) => ({ document: `book-${i}.txt`, index: i, offset: i * 100, length: 100, firstLine: 1 + i * 7 })),
    reduces: 3,
    params: { n: '10' },
    submitter: { peer: '12D3KooWSubmitterAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', addrs: ['/ip4/127.0.0.1/tcp/4001'] },
    maxAttempts: 4
  }
}

describe('MerkleTree', () => {
  it('proves every leaf of trees of 1 to 33 leaves, and nothing else', () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = Array.from({ length: n }, (_, i) => Buffer.from(`leaf ${i}`))
      const tree = new MerkleTree(leaves)
      for (let i = 0; i < n; i++) {
        const proof = tree.proof(i)
        expect(proof.length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)))
        expect(verifyMerkleProof(leaves[i], i, n, proof, tree.root)).toBe(true)
        // Another leaf's bytes, another position, another size, a proof cut short or padded: all refused.
        expect(verifyMerkleProof(Buffer.from(`leaf ${i}!`), i, n, proof, tree.root)).toBe(false)
        if (n > 1) expect(verifyMerkleProof(leaves[i], (i + 1) % n, n, proof, tree.root)).toBe(false)
        expect(verifyMerkleProof(leaves[i], i, n, [...proof, 'a'.repeat(64)], tree.root)).toBe(false)
        if (proof.length > 0) expect(verifyMerkleProof(leaves[i], i, n, proof.slice(1), tree.root)).toBe(false)
      }
    }
  })

  it('a one-leaf tree\'s root is not the leaf\'s bytes hashed plainly (inner and leaf hashes are told apart)', () => {
    const a = new MerkleTree([Buffer.from('x'), Buffer.from('y')])
    // A forged "leaf" made of the two children's hashes must not prove as a leaf of a one-level-smaller tree.
    const forged = Buffer.concat(a.proof(1).concat(a.proof(0)).reverse().map((h) => Buffer.from(h, 'hex')))
    expect(verifyMerkleProof(forged, 0, 1, [], a.root)).toBe(false)
  })
})

describe('canonicalJson', () => {
  it('gives the same bytes whatever the field order, and leaves out undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } })).toBe(canonicalJson({ a: { d: [1, { x: 1, y: 2 }] }, b: 1 }))
    expect(canonicalJson({ b: 1, a: 2 })).toBe('{"a":2,"b":1}')
  })
})

describe('job seals', () => {
  it('a sealed spec checks; changing any signed field, or a split, breaks it', async () => {
    const spec = await sealedSpec(unsealed())
    expect(checkSealedSpec(spec).problem).toBeUndefined()
    expect(spec.seal.signer).toBe(peerIdFromPrivateKey(await testIdentity()).toString())
    for (const tampered of [
      { ...spec, codeHash: 'd'.repeat(64) },
      { ...spec, params: { n: '11' } },
      { ...spec, reduces: 4 },
      { ...spec, jobId: 'wc-0123456789ac' },
      { ...spec, submitter: { ...spec.submitter, addrs: ['/ip4/10.0.0.1/tcp/1'] } },
      { ...spec, streaming: { mapper: 'cat', reducer: 'cat', files: [], env: {} } },
      { ...spec, seal: { ...spec.seal, signer: peerIdFromPrivateKey(await testIdentity(2)).toString() } }
    ]) {
      expect(checkSealedSpec(tampered).problem).toMatch(/does not match its spec/)
    }
    const moved = { ...spec, splits: spec.splits.map((s, i) => i === 2 ? { ...s, offset: s.offset + 1 } : s) }
    expect(checkSealedSpec(moved).problem).toMatch(/splits are not the ones it was signed with/)
  })

  it('maxAttempts and the sample log are not signed: the coordinator may not need them to be', async () => {
    const spec = await sealedSpec(unsealed())
    expect(checkSealedSpec({ ...spec, maxAttempts: 9, sampleLog: 'x' }).problem).toBeUndefined()
  })

  it('a job ref (what orders carry) checks on its own, and each split proves against the seal', async () => {
    const spec = await sealedSpec(unsealed(7))
    const ref = jobRefOf(spec)
    expect(checkJobSeal(ref)).toBeUndefined()
    const tree = checkSealedSpec(spec).tree
    if (tree === undefined) throw new Error('no tree')
    for (const s of spec.splits) expect(splitIsSealed(spec.seal, s.index, s, tree.proof(s.index))).toBe(true)
    const other = { ...spec.splits[3], path: '/etc/shadow' }
    expect(splitIsSealed(spec.seal, 3, other, tree.proof(3))).toBe(false)
    expect(splitIsSealed(spec.seal, 4, spec.splits[3], tree.proof(3))).toBe(false)
  })

  it('a cancel is signed over its job id', async () => {
    const seal = await sealCancel('wc-1', await testIdentity())
    expect(checkCancelSeal('wc-1', seal)).toBe(true)
    expect(checkCancelSeal('wc-2', seal)).toBe(false)
    expect(checkCancelSeal('wc-1', { ...seal, signer: peerIdFromPrivateKey(await testIdentity(2)).toString() })).toBe(false)
  })
})

describe('OrderSealCheck (a worker\'s check before it runs anything)', () => {
  async function order (seed = 1, index = 1): Promise<WorkOrder> {
    const spec = await sealedSpec(unsealed(), seed)
    const tree = checkSealedSpec(spec).tree
    if (tree === undefined) throw new Error('no tree')
    return { epoch: 3, job: jobRefOf(spec), task: { kind: 'map', jobId: spec.jobId, index, attempt: 1, split: spec.splits[index] }, splitProof: tree.proof(index) }
  }

  it('runs an allowed signer\'s order and refuses every other kind, each with its reason', async () => {
    const allowed = peerIdFromPrivateKey(await testIdentity(1)).toString()
    const check = new OrderSealCheck('12D3KooWSelf', new Set([allowed]))
    const good = await order(1)
    expect(check.check(good)).toBeUndefined()
    expect(check.check(await order(2))).toMatchObject({ kind: 'signer-not-allowed', reason: expect.stringMatching(/^identity 12D3Koo\w+ is not allowed to submit to this mesh/) })
    expect(check.check({ ...good, job: { ...good.job, codeHash: 'e'.repeat(64) } })).toMatchObject({ kind: 'bad-signature' })
    // After a good order of the job was checked (and its verdict cached): a changed spec under the same signature.
    expect(check.check({ ...good, job: { ...good.job, codeHash: 'f'.repeat(64) } })).toMatchObject({ kind: 'bad-signature' })
    if (good.task.kind !== 'map') throw new Error('a map order')
    expect(check.check({ ...good, task: { ...good.task, split: { ...good.task.split, path: '/etc/passwd' } } })).toMatchObject({ kind: 'split-not-signed' })
    expect(check.check({ ...good, splitProof: undefined })).toMatchObject({ kind: 'split-not-signed' })
  })

  it('without --submitters any signer runs, but a broken seal is still refused', async () => {
    const check = new OrderSealCheck('12D3KooWSelf', undefined)
    const good = await order(2)
    expect(check.check(good)).toBeUndefined()
    expect(check.check({ ...good, job: { ...good.job, params: { n: '1' } } })).toMatchObject({ kind: 'bad-signature' })
  })
})
