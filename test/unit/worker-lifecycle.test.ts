import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { z } from 'zod'
import { JOB_PROTOCOLS, jobRefOf } from '../../src/protocol/job-messages.js'
import { LOGS_PROTOCOL } from '../../src/protocol/log-messages.js'
import type { HandlerRegistrar, RegisteredHandler, StreamOpener } from '../../src/protocol/reqresp.js'
import { processLogger } from '../../src/util/logger.js'
import { WorkerService, type WorkerRpc } from '../../src/worker/worker-service.js'
import { sealedSpec } from '../support/sealed-job.js'

const COORDINATOR = '12D3KooWCoordinator'
const SUBMITTER = '12D3KooWSubmitter'

/** An Rpc whose every call fails, as to a coordinator that is gone: a worker then retries its reports. */
class UnreachableCoordinatorRpc implements WorkerRpc {
  readonly handlers = new Map<string, (request: unknown, from: string) => unknown>()
  readonly calls: string[] = []

  async serve<S extends z.ZodType> (protocol: string, schema: S, handle: (request: z.output<S>, from: string) => unknown): Promise<RegisteredHandler> {
    this.handlers.set(protocol, (request, from) => handle(schema.parse(request), from))
    return { unregister: async () => { this.handlers.delete(protocol) }, stats: () => ({ served: 0, dropped: 0 }) }
  }

  async call<S extends z.ZodType> (_peer: string, protocol: string): Promise<z.output<S>> {
    this.calls.push(protocol)
    throw new Error(`${protocol}: coordinator unreachable`)
  }

  count (protocol: string): number {
    return this.calls.filter((p) => p === protocol).length
  }
}

/** A network where nobody answers (the submitter is gone too) and whose handlers can be listed. */
function deadNetwork (): StreamOpener & HandlerRegistrar & { handled: Set<string> } {
  const handled = new Set<string>()
  return {
    handled,
    dialProtocol: async () => { throw new Error('no route to peer') },
    handle: async (protocol) => { handled.add(protocol) },
    unhandle: async (protocol) => { handled.delete(protocol) }
  }
}

/** A map whose code cannot be fetched (the submitter is unreachable): it fails at once, and its report is due. */
const SPLIT = { document: 'doc.txt', index: 0, offset: 0, length: 10, firstLine: 1 }

/** A map order of a signed one-split job (whose split's proof is empty: it is the root's only leaf). */
async function signedOrder (): Promise<unknown> {
  const spec = await sealedSpec({ jobId: 'job-1', jobName: 'wc', codeHash: 'a'.repeat(64), splits: [SPLIT], reduces: 1, params: {}, submitter: { peer: SUBMITTER, addrs: ['/ip4/127.0.0.1/tcp/9'] }, maxAttempts: 1 })
  return { epoch: 1, job: jobRefOf(spec), task: { kind: 'map', jobId: 'job-1', index: 0, attempt: 1, split: SPLIT }, splitProof: [] }
}

describe('worker service lifecycle', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('after stop() it neither retries a report nor registers, and no protocol handler of it is left', async () => {
    const rpc = new UnreachableCoordinatorRpc()
    const network = deadNetwork()
    const worker = new WorkerService(
      { self: '12D3KooWWorker', network, rpc, dataDir: mkdtempSync(join(tmpdir(), 'mrp2p-worker-')), coordinator: () => ({ peer: COORDINATOR, epoch: 1 }), logger: processLogger() },
      { slots: 1, version: 'test', registerIntervalMs: 100 }
    )
    await worker.start()
    expect([...rpc.handlers.keys()].sort()).toEqual([JOB_PROTOCOLS.doJob, JOB_PROTOCOLS.end, JOB_PROTOCOLS.replicate, LOGS_PROTOCOL].sort())
    expect([...network.handled].sort()).toEqual([JOB_PROTOCOLS.fetchRun, JOB_PROTOCOLS.localRun].sort())

    const doJob = rpc.handlers.get(JOB_PROTOCOLS.doJob)
    expect(await doJob?.(await signedOrder(), COORDINATOR)).toEqual({ accepted: true })
    // The report fails and is retried; the register loop keeps trying too.
    await vi.waitFor(() => {
      expect(rpc.count(JOB_PROTOCOLS.report)).toBeGreaterThanOrEqual(2)
      expect(rpc.count(JOB_PROTOCOLS.register)).toBeGreaterThanOrEqual(1)
    }, { timeout: 10_000, interval: 50 })
    expect(worker.getStats()).toMatchObject({ started: 1, failed: 1, running: 0 })

    await worker.stop()
    const callsAtStop = [...rpc.calls]
    // Well past every back-off of the report's retries and many register rounds.
    await vi.advanceTimersByTimeAsync(60_000)
    expect(rpc.calls).toEqual(callsAtStop)
    expect(rpc.handlers.size).toBe(0)
    expect(network.handled.size).toBe(0)
  })
})
