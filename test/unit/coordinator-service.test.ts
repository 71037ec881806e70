import { afterEach, describe, expect, it } from 'vitest'
import { CoordinatorService, type CoordinatorServiceComponents } from '../../src/coordinator/coordinator-service.js'
import { blockCid } from '../../src/dataset/block-cid.js'
import { waitFor } from '../../src/harness/wait-for.js'
import type { JobRecord } from '../../src/protocol/history-messages.js'
import type { JobSpec, SchedulerEffect } from '../../src/coordinator/scheduler-types.js'
import { JOB_PROTOCOLS } from '../../src/protocol/job-messages.js'
import type { Rpc } from '../../src/protocol/rpc.js'
import { createLogger } from '../../src/util/logger.js'
import { sealedSpec } from '../support/sealed-job.js'

type Handler = (request: unknown, from: string) => unknown

/** The coordinator's side of the wire, without a wire: handlers are called directly, orders are recorded and accepted. */
class FakeRpc {
  readonly handlers = new Map<string, Handler>()
  readonly orders: Array<{ peer: string, kind: string, index: number, rawRuns?: true }> = []

  async serve (protocol: string, _schema: unknown, handle: Handler): Promise<{ unregister: () => Promise<void> }> {
    this.handlers.set(protocol, handle)
    return { unregister: async () => { this.handlers.delete(protocol) } }
  }

  async call (peer: string, protocol: string, body: { task?: { kind: string, index: number, rawRuns?: true } }): Promise<unknown> {
    if (protocol === JOB_PROTOCOLS.doJob && body.task !== undefined) this.orders.push({ peer, kind: body.task.kind, index: body.task.index, rawRuns: body.task.rawRuns })
    return { accepted: true, ok: true }
  }

  handle (protocol: string, request: unknown, from: string): unknown {
    const h = this.handlers.get(protocol)
    if (h === undefined) throw new Error(`${protocol} not served`)
    return h(request, from)
  }
}

async function spec (jobId: string, maps: number, splitBytes = 100): Promise<JobSpec> {
  return await sealedSpec({
    jobId,
    jobName: 'wc',
    codeHash: 'a'.repeat(64),
    splits: Array.from({ length: maps }, (_, i) => ({ document: `doc-${i}.txt`, index: i, offset: 0, length: splitBytes, firstLine: 1 })),
    reduces: 1,
    params: {},
    submitter: { peer: '12D3KooWSubmitterAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', addrs: [] },
    maxAttempts: 3
  })
}

describe('CoordinatorService: a new coordinator waits for the inventories', () => {
  let service: CoordinatorService | undefined
  afterEach(async () => {
    const rpc = fakes.pop()
    await service?.stop()
    // A stopped coordinator serves nothing: every handler it registered is gone.
    expect([...(rpc?.handlers.keys() ?? [])]).toEqual([])
  })
  const fakes: FakeRpc[] = []

  async function start (rpc: FakeRpc, liveWorkers: string[], submitters?: ReadonlySet<string>, more: Partial<CoordinatorServiceComponents> = {}): Promise<CoordinatorService> {
    fakes.push(rpc)
    const effects: SchedulerEffect[] = []
    service = new CoordinatorService(
      { self: 'C', rpc: rpc as unknown as Rpc, lease: () => 5, liveness: () => 'alive', liveWorkers: () => liveWorkers, log: createLogger('test'), ...more },
      { inventoryGraceMs: 60_000, tickMs: 60_000, submitters },
      { onEffect: (e) => effects.push(e) }
    )
    await service.start()
    return service
  }

  it('a report of an earlier epoch is not an inventory: the job waits for that worker to register', async () => {
    const rpc = new FakeRpc()
    await start(rpc, ['A', 'B'])
    const job = await spec('wc-000000000001', 4)
    rpc.handle(JOB_PROTOCOLS.register, { slots: 2, version: 'test', incarnation: 'a', outputs: [] }, 'A')
    // B finished map 0 under the old coordinator and reports it late, to us, before it registers (a CI run caught
    // this: the report counted as B's registration, the job started without B's inventory, and map 1 ran again).
    rpc.handle(JOB_PROTOCOLS.report, { epoch: 4, jobId: job.jobId, kind: 'map', index: 0, attempt: 1, ok: true, partitionBytes: [10] }, 'B')
    rpc.handle(JOB_PROTOCOLS.submit, { job, committed: [] }, 'S')
    expect(rpc.orders).toEqual([])

    rpc.handle(JOB_PROTOCOLS.register, { slots: 2, version: 'test', incarnation: 'b', outputs: [{ jobId: job.jobId, mapIndex: 0 }, { jobId: job.jobId, mapIndex: 1 }] }, 'B')
    const maps = rpc.orders.filter((o) => o.kind === 'map').map((o) => o.index).sort()
    expect(maps).toEqual([2, 3])
  })

  it('a peer that never registered cannot say it holds a map output: the map still runs', async () => {
    const rpc = new FakeRpc()
    await start(rpc, ['A'])
    const job = await spec('wc-000000000003', 2)
    rpc.handle(JOB_PROTOCOLS.register, { slots: 2, version: 'test', incarnation: 'a', outputs: [] }, 'A')
    rpc.handle(JOB_PROTOCOLS.report, { epoch: 4, jobId: job.jobId, kind: 'map', index: 0, attempt: 1, ok: true, partitionBytes: [10] }, 'X')
    rpc.handle(JOB_PROTOCOLS.submit, { job, committed: [] }, 'S')
    expect(rpc.orders.map((o) => `${o.peer} ${o.kind} ${o.index}`).sort()).toEqual(['A map 0', 'A map 1'])
    // A registered worker's late report is taken (its output is real): here, for a job submitted after it.
    const next = await spec('wc-000000000004', 2)
    rpc.handle(JOB_PROTOCOLS.report, { epoch: 4, jobId: next.jobId, kind: 'map', index: 1, attempt: 1, ok: true, partitionBytes: [10] }, 'A')
    rpc.handle(JOB_PROTOCOLS.submit, { job: next, committed: [] }, 'S')
    expect(rpc.orders.filter((o) => o.index === 1 && o.kind === 'map').length).toBe(1)
  })

  it('with every live worker registered, a submitted job is scheduled at once', async () => {
    const rpc = new FakeRpc()
    await start(rpc, ['A', 'B'])
    const job = await spec('wc-000000000002', 2)
    rpc.handle(JOB_PROTOCOLS.register, { slots: 1, version: 'test', incarnation: 'a', outputs: [] }, 'A')
    rpc.handle(JOB_PROTOCOLS.register, { slots: 1, version: 'test', incarnation: 'b', outputs: [] }, 'B')
    rpc.handle(JOB_PROTOCOLS.submit, { job, committed: [] }, 'S')
    expect(rpc.orders.map((o) => `${o.kind} ${o.index}`).sort()).toEqual(['map 0', 'map 1'])
  })

  // A map on one host with every worker, of a job small against the host's memory, stores its runs uncompressed
  // (attempt-runner.ts): reducers link them in place, and they stay in the page cache.
  const GiB = 2 ** 30
  const one = { host: 'a'.repeat(32), memoryBytes: 24 * GiB }
  it.each([
    ['both on one host, 400 bytes of input', one, one, 100, true],
    ['both on one host, an input just under a tenth of their memory', one, one, Math.floor(2.4 * GiB / 4), true],
    ['both on one host, an input just over a tenth of their memory', one, one, Math.floor(2.4 * GiB / 4) + 1, undefined],
    ['on two hosts', one, { ...one, host: 'b'.repeat(32) }, 100, undefined],
    ['one that did not say its host (an older version, or --no-local-shuffle)', one, { memoryBytes: one.memoryBytes }, 100, undefined],
    ['one that did not say its memory', one, { host: one.host }, 100, undefined]
  ])('maps store raw runs only if every registered worker is on their host and the job is small: workers %s', async (_name, a, b, splitBytes, rawRuns) => {
    const rpc = new FakeRpc()
    await start(rpc, ['A', 'B'])
    const job = await spec('wc-000000000003', 4, splitBytes)
    rpc.handle(JOB_PROTOCOLS.register, { slots: 2, version: 'test', incarnation: 'a', outputs: [], ...a }, 'A')
    rpc.handle(JOB_PROTOCOLS.register, { slots: 2, version: 'test', incarnation: 'b', outputs: [], ...b }, 'B')
    rpc.handle(JOB_PROTOCOLS.submit, { job, committed: [] }, 'S')
    await waitFor(() => rpc.orders.length === 4 ? true : undefined, { timeoutMs: 5_000, intervalMs: 5, description: 'four map orders' })
    expect(new Set(rpc.orders.map((o) => o.peer))).toEqual(new Set(['A', 'B']))
    expect(rpc.orders.map((o) => o.rawRuns)).toEqual([rawRuns, rawRuns, rawRuns, rawRuns])
  })

  it('takes a job only under a seal that holds, from an allowed identity, and not under another job\'s id', async () => {
    const rpc = new FakeRpc()
    const allowed = await spec('wc-000000000005', 2)
    await start(rpc, [], new Set([allowed.seal.signer]))
    const submit = (job: JobSpec): unknown => rpc.handle(JOB_PROTOCOLS.submit, { job, committed: [] }, 'S')
    expect(submit({ ...allowed, codeHash: 'b'.repeat(64) })).toMatchObject({ refused: expect.stringMatching(/signature .* does not match its spec/) })
    expect(submit({ ...allowed, splits: allowed.splits.slice(0, 1) })).toMatchObject({ refused: expect.stringMatching(/splits are not the ones it was signed with/) })
    const stranger = await sealedSpec({ ...allowed, jobId: 'wc-000000000006' }, 7)
    expect(submit(stranger)).toEqual({ epoch: 5, refused: `identity ${stranger.seal.signer} is not allowed to submit to this mesh` })
    expect(submit(allowed)).toEqual({ epoch: 5 })
    // The same job again (its submitter re-sends it to each new coordinator) is taken; another under its id is not.
    expect(submit(allowed)).toEqual({ epoch: 5 })
    const impostor = await sealedSpec({ ...allowed, params: { n: '1' } })
    expect(submit(impostor)).toMatchObject({ refused: 'job id wc-000000000005 is taken by another job' })
  })

  it('answers a detached submit only once its spec is stored in the mesh and recorded, and refuses one whose spec cannot be stored', async () => {
    const rpc = new FakeRpc()
    const where = { cid: blockCid(Buffer.from('spec')), bytes: 4 }
    const stores: Array<{ jobId: string, settle: (ok: boolean) => void }> = []
    const published: JobRecord[] = []
    await start(rpc, [], undefined, {
      detached: {
        bindOutput: () => undefined,
        storeSpec: async (s) => await new Promise((resolve, reject) => { stores.push({ jobId: s.jobId, settle: (ok) => { if (ok) resolve(where); else reject(new Error('no storing node has room')) } }) }),
        fetchSpec: async () => { throw new Error('not asked here') }
      },
      history: { held: () => undefined, running: () => [], publish: (records) => { published.push(...records) } }
    })
    const detachedSpec = async (jobId: string): Promise<JobSpec> => await sealedSpec({
      ...(await spec(jobId, 1)),
      splits: [{ document: 'doc-0.txt', index: 0, offset: 0, length: 100, firstLine: 1, block: { cid: blockCid(Buffer.from('block')), hosts: [] } }],
      meshOutput: { name: 'out', replicas: 2, blockSize: 1024 },
      detached: {}
    })
    const submit = (job: JobSpec): Promise<unknown> => Promise.resolve(rpc.handle(JOB_PROTOCOLS.submit, { job, committed: [] }, 'S'))
    const settled = async (): Promise<void> => { for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve)) }

    const job = await detachedSpec('wc-000000000010')
    let answered = 0
    const first = submit(job).finally(() => { answered++ })
    // Sent again (its submitter timed out and asks again): it waits on the same store.
    const again = submit(job).finally(() => { answered++ })
    await settled()
    expect(answered).toBe(0)
    expect(stores.map((s) => s.jobId)).toEqual([job.jobId])
    expect(published).toEqual([])
    stores[0].settle(true)
    await expect(first).resolves.toEqual({ epoch: 5 })
    await expect(again).resolves.toEqual({ epoch: 5 })
    expect(published.filter((r) => r.jobId === job.jobId).at(-1)?.detached?.spec).toEqual(where)

    const other = await detachedSpec('wc-000000000011')
    const refused = submit(other)
    await settled()
    stores[1].settle(false)
    await expect(refused).resolves.toEqual({ epoch: 5, refused: 'its spec cannot be stored in the mesh, where a later coordinator would find it: no storing node has room' })
    // Nothing of it was taken: a later submit stores the spec again, and is answered once it is stored.
    const retried = submit(other)
    await settled()
    expect(stores.map((s) => s.jobId)).toEqual([job.jobId, other.jobId, other.jobId])
    stores[2].settle(true)
    await expect(retried).resolves.toEqual({ epoch: 5 })
  })
})
