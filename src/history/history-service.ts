import type { Startable } from '@libp2p/interface'
import type { z } from 'zod'
import {
  HISTORY_PROTOCOLS, HistoryGetRequest, HistoryGetResponse, HistoryIndexRequest, HistoryIndexResponse, HistoryListRequest,
  HistoryListResponse, HistoryPushRequest, HistoryPushResponse, newerRecord, type JobRecord
} from '../protocol/history-messages.js'
import type { RegisteredHandler } from '../protocol/reqresp.js'
import type { Rpc } from '../protocol/rpc.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { sleep } from '../util/sleep.js'
import type { HistoryStore } from './history-store.js'

export interface HistoryServiceComponents {
  self: string
  rpc: Rpc
  store: HistoryStore
  /** The members alive now, this node excluded. */
  members: () => string[]
  log: Logger
}

export interface HistoryServiceInit {
  /** How often a node compares its history with a random member's (anti-entropy), ms. */
  syncMs?: number
}

/** A record holds at most MAX_RECORDED_ATTEMPTS attempts (under 1 MiB): a batch of 16 fits in a frame. */
const FRAME_BYTES = 16 * 1024 * 1024
const CALL = { timeouts: { dialMs: 3_000, firstByteMs: 5_000, responseMs: 10_000 }, maxFrameBytes: FRAME_BYTES }
/** Records per push or get. */
const BATCH = 16

/**
 * Keeps this node's history in step with the mesh's: serves its records (push, index, get, list), sends the
 * coordinator's records to every member, and now and then (and when told a member came back) asks another
 * member what it holds and fetches what it lacks. Pushes are best effort; the periodic sync is what makes a
 * node that was away, partitioned or restarted end up with every record.
 */
export class HistoryService implements Startable {
  private handlers: RegisteredHandler[] = []
  private lifetime = new AbortController()
  private loop: Promise<void> | undefined
  private wake: (() => void) | undefined
  /** Per peer, the records waiting for the push in flight to end: a peer gets each job's newest version only. */
  private readonly outbox = new Map<string, Map<string, JobRecord>>()
  private readonly pushing = new Set<string>()
  syncs = 0
  fetched = 0

  constructor (private readonly c: HistoryServiceComponents, private readonly init: HistoryServiceInit = {}) {}

  async start (): Promise<void> {
    const { rpc, store } = this.c
    this.lifetime = new AbortController()
    this.handlers = [
      await rpc.serve(HISTORY_PROTOCOLS.push, HistoryPushRequest, (req) => this.onPush(req.records), { maxFrameBytes: FRAME_BYTES }),
      await rpc.serve(HISTORY_PROTOCOLS.index, HistoryIndexRequest, (): z.input<typeof HistoryIndexResponse> => ({ records: store.versions() })),
      await rpc.serve(HISTORY_PROTOCOLS.get, HistoryGetRequest, (req) => this.onGet(req)),
      await rpc.serve(HISTORY_PROTOCOLS.list, HistoryListRequest, (req): z.input<typeof HistoryListResponse> => ({ jobs: store.list({ state: req.state, limit: req.limit ?? 1_000 }), held: store.size }))
    ]
    this.loop = this.syncLoop(this.lifetime.signal)
  }

  async stop (): Promise<void> {
    this.lifetime.abort()
    this.wake?.()
    const handlers = this.handlers
    this.handlers = []
    await Promise.all(handlers.map(async (h) => { await h.unregister() }))
    await this.loop
    this.outbox.clear()
  }

  /** The coordinator's records: kept here and sent to every member. */
  publish (records: JobRecord[]): void {
    if (records.length === 0) return
    for (const r of records) this.c.store.put(r)
    for (const peer of this.c.members()) {
      if (peer === this.c.self) continue
      let box = this.outbox.get(peer)
      if (box === undefined) this.outbox.set(peer, box = new Map())
      for (const r of records) box.set(r.jobId, r)
      if (!this.pushing.has(peer)) void this.pushTo(peer)
    }
  }

  /** A member came (back): compare histories soon rather than at the next period. */
  syncSoon (): void {
    this.wake?.()
  }

  private onPush (records: JobRecord[]): z.input<typeof HistoryPushResponse> {
    let kept = 0
    for (const r of records) if (this.c.store.put(r)) kept++
    return { kept }
  }

  private onGet (req: z.output<typeof HistoryGetRequest>): z.input<typeof HistoryGetResponse> {
    const { store } = this.c
    if ('ids' in req) return { records: req.ids.map((id) => store.get(id)).filter((r): r is JobRecord => r !== undefined) }
    const ids = store.matching(req.prefix)
    if (ids.length > 1) return { records: [], ambiguous: ids.slice(0, 20) }
    const one = ids.length === 1 ? store.get(ids[0]) : undefined
    return { records: one === undefined ? [] : [one] }
  }

  private async pushTo (peer: string): Promise<void> {
    this.pushing.add(peer)
    try {
      for (;;) {
        const box = this.outbox.get(peer)
        if (box === undefined || box.size === 0 || this.lifetime.signal.aborted) break
        const batch = [...box.values()].slice(0, BATCH)
        for (const r of batch) box.delete(r.jobId)
        try {
          await this.c.rpc.call(peer, HISTORY_PROTOCOLS.push, { records: batch }, HistoryPushResponse, { ...CALL, signal: this.lifetime.signal })
        } catch (err) {
          // The periodic sync brings it what it missed: a failed push is not retried here.
          this.c.log.debug({ peer, err: errorMessage(err) }, 'history push not delivered')
          box.clear()
        }
      }
    } finally {
      this.pushing.delete(peer)
      if (this.outbox.get(peer)?.size === 0) this.outbox.delete(peer)
    }
  }

  private async syncLoop (signal: AbortSignal): Promise<void> {
    const period = this.init.syncMs ?? 30_000
    // The first sync as soon as there is someone to ask: a node that restarts learns what it missed at once.
    let wait = 500
    while (!signal.aborted) {
      const woken = new AbortController()
      this.wake = () => { woken.abort() }
      await sleep(wait, { signal: AbortSignal.any([signal, woken.signal]) }).catch(() => {})
      this.wake = undefined
      if (signal.aborted) return
      const peers = this.c.members().filter((p) => p !== this.c.self)
      if (peers.length === 0) { wait = 500; continue }
      const peer = peers[Math.floor(Math.random() * peers.length)]
      try {
        await this.syncWith(peer, signal)
        wait = period
      } catch (err) {
        if (signal.aborted) return
        this.c.log.debug({ peer, err: errorMessage(err) }, 'history sync failed')
        wait = Math.min(period, 2_000)
      }
    }
  }

  /** Fetches from `peer` every record it holds in a newer version than ours. */
  async syncWith (peer: string, signal: AbortSignal): Promise<number> {
    const { rpc, store } = this.c
    const index = await rpc.call(peer, HISTORY_PROTOCOLS.index, {}, HistoryIndexResponse, { ...CALL, signal })
    this.syncs++
    const wanted = index.records
      .filter((v) => {
        const held = store.get(v.jobId)
        return held === undefined || newerRecord({ generation: v.generation, state: v.ended ? 'succeeded' : 'running', updatedAt: v.updatedAt }, held)
      })
      .map((v) => v.jobId)
    let got = 0
    for (let i = 0; i < wanted.length; i += BATCH) {
      const res = await rpc.call(peer, HISTORY_PROTOCOLS.get, { ids: wanted.slice(i, i + BATCH) }, HistoryGetResponse, { ...CALL, signal })
      for (const r of res.records) if (store.put(r)) got++
    }
    this.fetched += got
    if (got > 0) this.c.log.info({ peer, records: got }, 'history caught up')
    return got
  }
}
