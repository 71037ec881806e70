import { JOB_PROTOCOLS, SourcesResponse, type SourcesRequest } from '../protocol/job-messages.js'
import { errorMessage } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import { sleep } from '../util/sleep.js'
import type { z } from 'zod'
import type { ReduceAssignment, WorkOrder } from './attempt.js'
import { FETCHES_AT_ONCE, FetchError, type FetchedRuns, type MapSource, type ShuffleClient } from './shuffle-client.js'
import { TaskAbortedError } from './task-pool.js'
import type { CoordinatorRef, WorkerRpc } from './worker-components.js'

/** The coordinator holds an ask up to a second when nothing is new; an answer that comes back sooner and empty is not asked again before this. */
const MIN_ASK_GAP_MS = 100
/** Asks in a row that fail (the coordinator gone, the link down) before the attempt gives up as the node's failure. */
const ASK_TRIES = 20
const ASK_BACKOFF_MS = 250

/** What the early shuffle needs: the shuffle itself, the coordinator to ask, and where to log. */
export interface EarlyShuffleParts {
  shuffle: ShuffleClient
  rpc: WorkerRpc
  coordinator: () => CoordinatorRef | undefined
  log: Logger
}

/**
 * The shuffle of a reduce dispatched before every map was done (reduce slow start, docs/scheduler.md): it pulls
 * the outputs it was given to its own disk, tells the coordinator what it holds (so a map whose node dies need
 * not run again for it) and which one it could not fetch (that map runs again, this attempt goes on), and asks
 * for the outputs finished since, until it holds every map's.
 */
export class EarlyShuffle {
  constructor (private readonly parts: EarlyShuffleParts) {}

  async pull (order: WorkOrder, task: ReduceAssignment, work: string, dispatcher: string, signal: AbortSignal): Promise<FetchedRuns> {
    const { shuffle } = this.parts
    const fetched: FetchedRuns = { paths: new Array(task.maps), bytes: 0, rawBytes: 0, linkedBytes: 0, linkedRawBytes: 0 }
    const pulled = new Set<number>()
    let fresh: number[] = []
    let failed: MapSource | undefined
    let todo = task.sources
    for (;;) {
      // The outputs named, a few at once; the first that cannot be fetched is reported, the others still come.
      let next = 0
      const fetchSome = async (): Promise<void> => {
        while (next < todo.length) {
          const src = todo[next++]
          if (pulled.has(src.mapIndex)) continue
          try {
            fetched.paths[src.mapIndex] = await shuffle.fetchOne(order.job.jobId, task.index, src, work, signal, fetched)
            pulled.add(src.mapIndex)
            fresh.push(src.mapIndex)
          } catch (err) {
            if (!(err instanceof FetchError)) throw err
            failed ??= { mapIndex: err.mapIndex, peer: err.peer }
          }
        }
      }
      await Promise.all(Array.from({ length: Math.min(FETCHES_AT_ONCE, todo.length) }, fetchSome))
      if (pulled.size === task.maps) {
        // Said so that a map whose node dies now is not run again for this reduce; the reduce need not wait for the answer.
        if (fresh.length > 0) void this.ask(order, task, dispatcher, { pulled: fresh }, signal, true).catch(() => {})
        return fetched
      }
      const asked = performance.now()
      const answer = await this.ask(order, task, dispatcher, { pulled: fresh, failed }, signal, false)
      fresh = []
      failed = undefined
      if (answer === undefined || answer.stop === true) throw new TaskAbortedError('the coordinator no longer wants this attempt')
      todo = answer.sources.filter((src) => !pulled.has(src.mapIndex) && src.mapIndex < task.maps)
      const gap = MIN_ASK_GAP_MS - (performance.now() - asked)
      if (todo.length === 0 && gap > 0) await sleep(gap, { signal }).catch(() => { throw new TaskAbortedError('task abandoned') })
    }
  }

  /**
   * One ask, retried while the coordinator that gave the order still leads. `last`: the attempt holds every
   * output and only says so (one try, its answer not needed).
   */
  private async ask (order: WorkOrder, task: ReduceAssignment, dispatcher: string, news: Pick<z.input<typeof SourcesRequest>, 'pulled' | 'failed'>, signal: AbortSignal, last: boolean): Promise<z.output<typeof SourcesResponse> | undefined> {
    const req: z.input<typeof SourcesRequest> = { epoch: order.epoch, jobId: order.job.jobId, index: task.index, attempt: task.attempt, ...news }
    for (let tries = 0; ; tries++) {
      if (signal.aborted) throw new TaskAbortedError('task abandoned')
      const lead = this.parts.coordinator()
      // Another coordinator's attempt numbers mean nothing to this one: the attempt is over.
      if (lead !== undefined && lead.epoch !== order.epoch) return undefined
      try {
        return await this.parts.rpc.call(dispatcher, JOB_PROTOCOLS.sources, req, SourcesResponse, { signal, timeouts: { responseMs: 15_000 } })
      } catch (err) {
        if (signal.aborted) throw new TaskAbortedError('task abandoned')
        if (last) return undefined
        if (tries + 1 >= ASK_TRIES) throw new Error(`cannot ask the coordinator for map outputs: ${errorMessage(err)}`)
        this.parts.log.debug({ job: order.job.jobId, reduce: task.index, err: errorMessage(err) }, 'asking for map outputs failed; trying again')
        await sleep(ASK_BACKOFF_MS, { signal }).catch(() => { throw new TaskAbortedError('task abandoned') })
      }
    }
  }
}
