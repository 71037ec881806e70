import { z } from 'zod'
import { MemberAddrsSchema } from '../protocol/member-addrs.js'

/**
 * Control-topic messages. Every field is checked before the state machine sees
 * it: a peer that sends junk is ignored, never trusted and never able to throw
 * inside the node. The transport (gossipsub, signed messages) is what ties
 * `from` to the real sender; the adapter must drop a message whose `from`
 * differs from its signer.
 */

export const MAX_CONTROL_MESSAGE_BYTES = 64 * 1024

const peerId = z.string().regex(/^[\x21-\x7e]{1,128}$/)
const epoch = z.int().min(0)
const seq = z.int().min(0)
const duration = z.int().min(1).max(3_600_000)

export const MemberInfoSchema = z.object({
  addrs: MemberAddrsSchema,
  slots: z.int().min(0).max(1_000_000),
  running: z.int().min(0).max(1_000_000),
  worker: z.boolean(),
  version: z.string().max(64)
})

const base = { v: z.literal(1), from: peerId }

export const RoleSchema = z.enum(['follower', 'candidate', 'coordinator'])

/** What every message type carries, and the one definition its TypeScript types derive from. */
const schema = z.discriminatedUnion('type', [
  /** Everything a node says about itself, about once a heartbeatMs. Also carries the follower's lease ack. */
  z.object({
    type: z.literal('heartbeat'),
    ...base,
    info: MemberInfoSchema,
    role: RoleSchema,
    /** The holder this node follows (itself when coordinator). */
    leader: peerId.optional(),
    /** Epoch of that lease (0 when none). */
    epoch,
    highestEpoch: epoch,
    /** Cumulative: "I received your renewal `seq` of `epoch`, and every promise that implies". */
    ack: z.object({ to: peerId, epoch, seq }).optional(),
    /**
     * The sender's running promise (grant or ack) to another peer, with the time
     * it has left on the sender's clock. Others then refuse grants that could
     * build a second quorum around it, which is what keeps a healed partition
     * from electing over a holder whose quorum lay in the other half.
     */
    promise: z.object({ to: peerId, epoch, leftMs: z.int().min(0).max(3_600_000) }).optional()
  }),
  /** The holder's announcement and every renewal after it, every leaseMs/3. */
  z.object({ type: z.literal('lease'), ...base, epoch, seq, durationMs: duration }),
  /** A request for grants. Re-sent with a new seq while the claimant waits; grants of any seq count. */
  z.object({ type: z.literal('claim'), ...base, epoch, seq, durationMs: duration }),
  z.object({ type: z.literal('grant'), ...base, to: peerId, epoch, seq }),
  /**
   * "I no longer hold or seek `epoch`": a stepping-down holder or an abandoning claimant. `leaving`: the sender is
   * shutting down, drop it from membership now rather than after deadAfterMs.
   */
  z.object({ type: z.literal('release'), ...base, epoch, leaving: z.boolean() }),
  /** A non-holder shutting down. */
  z.object({ type: z.literal('leave'), ...base })
])

/** One control-topic message, as the schema accepts it. */
export type ControlMessage = z.output<typeof schema>
export type HeartbeatMessage = Extract<ControlMessage, { type: 'heartbeat' }>
export type LeaseMessage = Extract<ControlMessage, { type: 'lease' }>
export type ClaimMessage = Extract<ControlMessage, { type: 'claim' }>
export type GrantMessage = Extract<ControlMessage, { type: 'grant' }>
export type ReleaseMessage = Extract<ControlMessage, { type: 'release' }>
export type LeaveMessage = Extract<ControlMessage, { type: 'leave' }>
export type MemberInfo = z.output<typeof MemberInfoSchema>
export type Role = z.output<typeof RoleSchema>

/** Validates an already-parsed value. Unknown fields are dropped; anything malformed gives undefined. */
export function parseControlMessage (value: unknown): ControlMessage | undefined {
  try {
    const r = schema.safeParse(value)
    if (!r.success) return undefined
    const m = r.data
    if (m.type === 'heartbeat' && m.epoch > m.highestEpoch) return undefined
    return m
  } catch {
    // Proxies and throwing getters can make even safeParse throw.
    return undefined
  }
}

export function encodeControlMessage (m: ControlMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m))
}

export function decodeControlMessage (bytes: Uint8Array): ControlMessage | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength > MAX_CONTROL_MESSAGE_BYTES) return undefined
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return undefined
  }
  return parseControlMessage(value)
}
