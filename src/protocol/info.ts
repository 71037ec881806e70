import { z } from 'zod'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../util/logger.js'
import { INFO_PROTOCOL } from './ids.js'
import { MemberAddrsSchema } from './member-addrs.js'
import { handleRequests, request, type HandlerRegistrar, type RegisteredHandler, type RequestOptions, type StreamOpener } from './reqresp.js'

/**
 * `/mrp2p/info/1.0.0`: ask a node what it sees. The answer is a wire copy of
 * its election view, flattened into a schema of its own so that the internal
 * ElectionView can change without changing the wire. `status` prints it; the
 * test harness samples it from every node to check that no two nodes act as
 * coordinator at once. `isCoordinator` is computed when the answer is made,
 * so a node that was frozen and has not noticed yet still answers truthfully
 * by its own clock.
 */
export const InfoRequest = z.object({}).loose()
export type InfoRequest = z.infer<typeof InfoRequest>

const peerIdString = z.string().min(1).max(200)

export const InfoMember = z.object({
  peerId: peerIdString,
  addrs: MemberAddrsSchema,
  liveness: z.enum(['alive', 'suspect', 'dead']),
  /** The role that member reported in its last heartbeat. */
  role: z.string().max(50),
  slots: z.number().int().nonnegative(),
  running: z.number().int().nonnegative(),
  worker: z.boolean(),
  version: z.string().max(100),
  /** How long ago this node last heard from that member; null when unknown. */
  lastHeardMsAgo: z.number().nonnegative().nullable()
})
export type InfoMember = z.infer<typeof InfoMember>

/** What the worker role of a node holds and does (tests and `status` use it to see that a job left nothing behind). */
export const InfoTasks = z.object({
  started: z.number().int().nonnegative(),
  succeeded: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  running: z.number().int().nonnegative(),
  /** DoJob orders refused because a newer coordinator had already been obeyed. */
  staleEpochRefusals: z.number().int().nonnegative(),
  /** DoJob orders refused for their job's seal: a bad signature, a split not signed, a signer this node does not allow. */
  sealRefusals: z.number().int().nonnegative().optional(),
  /** Map outputs copied here from their mapper (`--intermediate-replicas`), and copies that failed. */
  copies: z.object({ made: z.number().int().nonnegative(), failed: z.number().int().nonnegative() }).optional(),
  /** Jobs with a task running here or intermediate files on this node's disk. */
  jobs: z.array(z.string().max(200)).max(10_000),
  /**
   * Map output pulled from other nodes by reducers here: bytes as sent, the records' bytes before compression
   * (absent from older nodes), and the time at least one such fetch ran.
   */
  shuffle: z.object({
    bytes: z.number().int().nonnegative(),
    rawBytes: z.number().int().nonnegative().optional(),
    busyMs: z.number().nonnegative(),
    /** Map outputs of mappers on this host linked in place (job/local-run), not fetched: how many, and their bytes. */
    inPlaceRuns: z.number().int().nonnegative().optional(),
    inPlaceBytes: z.number().int().nonnegative().optional()
  }).optional()
})
export type InfoTasks = z.infer<typeof InfoTasks>

export const InfoResponse = z.object({
  peerId: peerIdString,
  addrs: MemberAddrsSchema,
  version: z.string().max(100),
  worker: z.boolean(),
  slots: z.number().int().nonnegative(),
  /** Peers with an open connection right now. */
  connections: z.array(peerIdString).max(10_000),
  /** Of `connections`, the peers reached only through a relay (no direct connection yet); absent from older nodes. */
  relayed: z.array(peerIdString).max(10_000).optional(),
  /** How others reach this node (docs/mesh.md, "Across NATs"); absent from older nodes. */
  reachability: z.object({
    /** AutoNAT's verdict: `public` (a public address confirmed by peers), `private` (no public address), `unknown`. */
    nat: z.enum(['public', 'private', 'unknown']),
    /** Whether this node serves as a circuit relay (`join --relay`). */
    relay: z.boolean(),
    /** Relays this node holds a slot on. */
    relays: z.array(peerIdString).max(64)
  }).optional(),
  /** Peers this node refuses (partition control). */
  blocked: z.array(peerIdString).max(10_000),
  role: z.string().max(50),
  isCoordinator: z.boolean(),
  epoch: z.number().int().nonnegative(),
  /** Highest epoch this node has ever seen (persisted). */
  highestEpoch: z.number().int().nonnegative(),
  coordinator: peerIdString.nullable(),
  /** Whether this node currently sees a valid lease (held or followed); always sent by this version. */
  leaseValid: z.boolean().optional(),
  /** Time since the lease was last renewed as this node sees it; null without a lease. */
  leaseAgeMs: z.number().nullable(),
  /** Lease duration minus its age, by this node's clock; null without a valid lease. */
  leaseRemainingMs: z.number().nullable(),
  members: z.array(InfoMember).max(10_000),
  uptimeMs: z.number().nonnegative(),
  /** Present on nodes that run tasks. */
  tasks: InfoTasks.optional(),
  /** Open libp2p streams on this node, by protocol. */
  streams: z.record(z.string().max(300), z.number().int().nonnegative()).optional(),
  /** The node process's memory and CPU (the dashboard's mesh page); absent from older nodes. */
  resources: z.object({
    rssBytes: z.number().int().nonnegative(),
    heapUsedBytes: z.number().int().nonnegative(),
    /** CPU time used per wall time since the previous answer (or since start), in percent of one core. */
    cpuPercent: z.number().nonnegative()
  }).optional(),
  /** Members whose election messages this node ignores now (docs/election.md, "Quarantine"), and for how long yet. */
  quarantined: z.array(z.object({ peer: peerIdString, leftMs: z.number().nonnegative() })).max(10_000).optional(),
  /** Peers whose gossip this node drops for their peer score (docs/security.md, "Gossip peer scoring"). */
  graylisted: z.array(peerIdString).max(10_000).optional(),
  /** How many submitter identities this node's `--submitters` allows; absent: any member may submit (or an older node). */
  submitters: z.number().int().min(1).optional(),
  /** Control-topic counters since start (benchmarks, diagnosis). */
  control: z.object({
    published: z.number().int().nonnegative(),
    publishedBytes: z.number().int().nonnegative(),
    received: z.number().int().nonnegative(),
    /** Control-topic messages refused by the election's validator. */
    dropped: z.number().int().nonnegative(),
    /** Of `dropped`, those over their author's rate (the flood detector, src/election/sender-rate.ts); absent from older nodes. */
    rateDropped: z.number().int().nonnegative().optional(),
    /** Discovery-topic messages refused by the mesh's check (not in `dropped`); absent from older nodes. */
    discoveryDropped: z.number().int().nonnegative().optional()
  }).optional()
})
export type InfoResponse = z.infer<typeof InfoResponse>

export interface InfoServerInit {
  registrar: HandlerRegistrar
  info: () => InfoResponse
  log: Logger
  maxFrameBytes?: number
}

export async function serveInfo (init: InfoServerInit): Promise<RegisteredHandler> {
  return await handleRequests(init.registrar, {
    protocol: INFO_PROTOCOL,
    requestSchema: InfoRequest,
    log: init.log,
    maxFrameBytes: init.maxFrameBytes,
    handle: () => InfoResponse.parse(init.info())
  })
}

export async function queryInfo (opener: StreamOpener, peer: PeerId | Multiaddr | Multiaddr[], options: RequestOptions = {}): Promise<InfoResponse> {
  return await request(opener, peer, INFO_PROTOCOL, {}, InfoResponse, options)
}
