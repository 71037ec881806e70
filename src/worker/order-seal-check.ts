import { createHash } from 'node:crypto'
import { checkJobSeal, splitIsSealed } from '../protocol/job-seal.js'
import { canonicalJson } from '../util/canonical-json.js'
import type { WorkOrder } from './attempt.js'

/** Why an order was refused for its job's seal: the label of `mrp2p_orders_refused_total`. */
export type SealRefusalKind = 'bad-signature' | 'split-not-signed' | 'signer-not-allowed'

export interface SealRefusal { kind: SealRefusalKind, reason: string }

/** Jobs whose seal was checked, kept per node: a job's orders share one spec, so its signature is verified once. */
const CHECKED_JOBS = 256

/**
 * A worker's own check of an order's job before any of its code runs (docs/security.md, "Signed jobs"): the
 * seal's signature over the job, the map's split against the signed root, and the signer against this node's
 * `--submitters`. The coordinator checked the same at submit; a worker checks again because the coordinator is
 * only a member that won an election: one that is rogue, or forged orders, must not make this node run code
 * that no allowed submitter signed.
 */
export class OrderSealCheck {
  /** By digest of the job ref: undefined for a good seal, else why not. */
  private readonly checked = new Map<string, SealRefusal | undefined>()

  constructor (private readonly self: string, private readonly allowed: ReadonlySet<string> | undefined) {}

  /** Undefined when the order may run here. */
  check (order: WorkOrder): SealRefusal | undefined {
    const job = order.job
    // By everything the order says of its job, not its id or signature: a coordinator that sent one good order must
    // not get a changed spec under the same signature past the cache.
    const key = createHash('sha256').update(canonicalJson(job)).digest('base64')
    let verdict: SealRefusal | undefined
    if (this.checked.has(key)) {
      verdict = this.checked.get(key)
    } else {
      verdict = this.checkJob(order)
      if (this.checked.size >= CHECKED_JOBS) this.checked.delete(this.checked.keys().next().value ?? '')
      this.checked.set(key, verdict)
    }
    if (verdict !== undefined) return verdict
    const task = order.task
    if (task.kind === 'map' && !splitIsSealed(job.seal, task.index, task.split, order.splitProof ?? [])) {
      return { kind: 'split-not-signed', reason: `map ${task.index}'s split is not one that job ${job.jobId}'s submitter signed` }
    }
    return undefined
  }

  private checkJob (order: WorkOrder): SealRefusal | undefined {
    const problem = checkJobSeal(order.job)
    if (problem !== undefined) return { kind: 'bad-signature', reason: problem }
    const signer = order.job.seal.signer
    if (this.allowed !== undefined && !this.allowed.has(signer)) {
      return { kind: 'signer-not-allowed', reason: `identity ${signer} is not allowed to submit to this mesh (not in node ${this.self}'s --submitters)` }
    }
    return undefined
  }
}
