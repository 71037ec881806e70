import '../../src/util/polyfills.js'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import type { Libp2p } from '@libp2p/interface'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { z } from 'zod'
import { CoordinatorService } from '../../src/coordinator/coordinator-service.js'
import type { SchedulerEffect } from '../../src/coordinator/scheduler-types.js'
import { bundleJob } from '../../src/mapreduce/job-loader.js'
import { OutputDir } from '../../src/mapreduce/output-dir.js'
import { planSplits } from '../../src/mapreduce/splits.js'
import { createClientLibp2p } from '../../src/node/client-libp2p.js'
import { serveInfo, type InfoResponse } from '../../src/protocol/info.js'
import { JOB_PROTOCOLS, LocalCommitResponse, LocalReadResponse, type LocalCommitRequest } from '../../src/protocol/job-messages.js'
import { probeProof, probeSubject, writeProbe } from '../../src/protocol/local-read-probe.js'
import { request } from '../../src/protocol/reqresp.js'
import { Rpc } from '../../src/protocol/rpc.js'
import { PartCollector } from '../../src/submitter/part-collector.js'
import { newJobId, Submission, type SubmissionEvent } from '../../src/submitter/submission.js'
import { createLogger, processLogger } from '../../src/util/logger.js'
import { WorkerService } from '../../src/worker/worker-service.js'
import { sortedOutput } from '../support/output.js'
import { BOOKS, REFERENCE_CWD, SHARED_DATA } from '../support/run-cli.js'
import { testIdentity } from '../support/sealed-job.js'

const log = createLogger('test')

/**
 * The job path without the election: node 0 is made coordinator by fiat, nodes
 * 1 and 2 are workers, a fourth libp2p is the submitter. Real libp2p streams
 * over TCP, real task threads.
 */
describe('Register / DoJob / fetch / commit over libp2p (one process)', () => {
  const nodes: Array<Libp2p<any>> = []
  const workers: WorkerService[] = []
  let coordinator: CoordinatorService
  let submitterNode: Libp2p<any>
  const effects: SchedulerEffect[] = []
  const dir = mkdtempSync(join(tmpdir(), 'mrp2p-jobproto-'))

  beforeAll(async () => {
    for (let i = 0; i < 4; i++) {
      const n = await createClientLibp2p({ version: 'test', listen: ['/ip4/127.0.0.1/tcp/0'] })
      await n.start()
      nodes.push(n)
    }
    submitterNode = nodes[3]
    const ids = nodes.map((n) => n.peerId.toString())
    for (const a of nodes) for (const b of nodes) if (a !== b) await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
    const lead = { peer: ids[0], epoch: 1 }
    const rpcs = nodes.slice(0, 3).map((n, i) => new Rpc(ids[i], n, log))
    coordinator = new CoordinatorService({ self: ids[0], rpc: rpcs[0], lease: () => 1, liveness: () => 'alive', liveWorkers: () => [ids[1], ids[2]], log }, {}, { onEffect: (e) => effects.push(e) })
    await coordinator.start()
    const info = (): InfoResponse => ({
      peerId: ids[0], addrs: nodes[0].getMultiaddrs().map((a) => a.toString()), version: 'test', worker: false, slots: 0, connections: [], blocked: [],
      role: 'coordinator', isCoordinator: true, epoch: 1, highestEpoch: 1, coordinator: ids[0], leaseAgeMs: 0, leaseRemainingMs: 1000, members: [], uptimeMs: 1
    })
    await serveInfo({ registrar: nodes[0], info, log })
    for (let i = 1; i < 3; i++) {
      const w = new WorkerService({ self: ids[i], network: nodes[i], rpc: rpcs[i], dataDir: join(dir, `node-${i}`), coordinator: () => lead, logger: processLogger() }, { slots: 2, version: 'test' })
      await w.start()
      workers.push(w)
    }
  })

  afterAll(async () => {
    await coordinator.stop()
    for (const w of workers) await w.stop()
    for (const n of nodes) await n.stop()
  })

  /** wc over the eight books: its code, its splits, and a fresh output folder `out` collecting `reduces` parts. */
  async function wcJob (splitSize: number, out: string, reduces: number): Promise<{ code: Awaited<ReturnType<typeof bundleJob>>, splits: Awaited<ReturnType<typeof planSplits>>, outDir: string, parts: PartCollector }> {
    const outDir = join(dir, out)
    return { code: await bundleJob('wc'), splits: await planSplits(BOOKS, { cwd: REFERENCE_CWD, splitSize }), outDir, parts: new PartCollector(OutputDir.prepare(outDir), reduces) }
  }

  it('runs wc on the eight books across two workers and equals the reference', async () => {
    const { code, splits, outDir, parts } = await wcJob(200_000, 'out', 3)
    const events: SubmissionEvent[] = []
    const submission = new Submission(
      { self: submitterNode.peerId.toString(), addrs: submitterNode.getMultiaddrs().map((a) => a.toString()), network: submitterNode, bootstrap: nodes[0].getMultiaddrs(), log, identity: await testIdentity() },
      { jobId: newJobId('wc'), jobName: 'wc', code, splits, reduces: 3, params: {}, maxAttempts: 2, parts }
    )
    await submission.start()
    await submission.run({ coordinatorTimeoutMs: 10_000, onEvent: (e) => events.push(e) })
    parts.publish()
    expect(sortedOutput(outDir).equals(readFileSync(join(SHARED_DATA, 'expected', 'wc.txt')))).toBe(true)
    expect(readdirSync(outDir)).toContain('_SUCCESS')
    // both workers ran maps; each map ran exactly once
    const dispatched = effects.filter((e): e is Extract<SchedulerEffect, { type: 'dispatch' }> => e.type === 'dispatch')
    const maps = dispatched.filter((d) => d.task.kind === 'map')
    expect(new Set(maps.map((d) => d.peer)).size).toBe(2)
    expect(maps.length).toBe(splits.length)
    expect(events.some((e) => e.type === 'coordinator')).toBe(true)
    // Submitter and workers share this host and user: every split was read in place, none sent.
    expect(submission.inputBytesSent).toBe(0)
  })

  it('a file changed after submit is fetched from the submitter instead of read in place; the others are still read in place', async () => {
    const books = join(dir, 'books')
    mkdirSync(books)
    for (const b of BOOKS) copyFileSync(join(REFERENCE_CWD, b), join(books, basename(b)))
    const names = BOOKS.map((b) => basename(b))
    const splits = await planSplits(names, { cwd: books, splitSize: 200_000 })
    // Same bytes, a new modification time: no longer provably the file the job was planned on.
    const touched = join(books, names[1])
    const later = new Date(Date.now() + 60_000)
    utimesSync(touched, later, later)
    const outDir = join(dir, 'out-changed')
    const parts = new PartCollector(OutputDir.prepare(outDir), 2)
    const submitter = await createClientLibp2p({ version: 'test', listen: ['/ip4/127.0.0.1/tcp/0'] })
    await submitter.start()
    let sent: number
    try {
      for (const n of nodes.slice(0, 3)) await n.peerStore.merge(submitter.peerId, { multiaddrs: submitter.getMultiaddrs() })
      const submission = new Submission(
        { self: submitter.peerId.toString(), addrs: submitter.getMultiaddrs().map((a) => a.toString()), network: submitter, bootstrap: nodes[0].getMultiaddrs(), log, identity: await testIdentity() },
        { jobId: newJobId('wc'), jobName: 'wc', code: await bundleJob('wc'), splits, reduces: 2, params: {}, maxAttempts: 2, parts }
      )
      await submission.start()
      await submission.run({ coordinatorTimeoutMs: 10_000 })
      await submission.stop()
      sent = submission.inputBytesSent
    } finally {
      await submitter.stop()
    }
    parts.publish()
    expect(sortedOutput(outDir).equals(readFileSync(join(SHARED_DATA, 'expected', 'wc.txt')))).toBe(true)
    expect(sent).toBe(statSync(touched).size)
  })

  it('a part is taken in place only for a proof of the submitter\'s probe made by that reducer for that submitter and partition, and only as a regular file of the size said', async () => {
    const parts = new PartCollector(OutputDir.prepare(join(dir, 'out-in-place')), 2)
    const submitter = await createClientLibp2p({ version: 'test', listen: ['/ip4/127.0.0.1/tcp/0'] })
    await submitter.start()
    const submission = new Submission(
      { self: submitter.peerId.toString(), addrs: submitter.getMultiaddrs().map((a) => a.toString()), network: submitter, bootstrap: nodes[0].getMultiaddrs(), log, identity: await testIdentity() },
      { jobId: newJobId('wc'), jobName: 'wc', code: await bundleJob('wc'), splits: await planSplits(BOOKS.slice(0, 1), { cwd: REFERENCE_CWD, splitSize: 200_000 }), reduces: 2, params: {}, maxAttempts: 2, parts }
    )
    await submission.start()
    try {
      const spec = submission.jobSpec
      const probe = spec.submitter.commitProbe
      if (probe === undefined) throw new Error('no commit probe in the spec')
      const nonce = readFileSync(probe, 'utf8')
      const asker = nodes[1].peerId.toString()
      const proof = (over: { jobId?: string, partition?: number } = {}, who = asker, to = submitter.peerId.toString()): string =>
        probeProof(nonce, who, to, probeSubject.localCommit({ jobId: spec.jobId, partition: 0, ...over }))
      const part = join(dir, 'a-part')
      writeFileSync(part, 'a 1\nb 2\n')
      const link = join(dir, 'a-link')
      symlinkSync(part, link)
      const commit = async (over: Partial<z.input<typeof LocalCommitRequest>>): Promise<z.output<typeof LocalCommitResponse>> =>
        await request(nodes[1], submitter.getMultiaddrs(), JOB_PROTOCOLS.localCommit, { jobId: spec.jobId, partition: 0, epoch: 1, attempt: 1, bytes: 8, path: part, proof: proof(), ...over }, LocalCommitResponse)
      const incoming = (): string[] => readdirSync(parts.output.temporary).filter((f) => f.startsWith('incoming-'))

      expect(await commit({ proof: '0'.repeat(64) })).toMatchObject({ inPlace: false, accepted: false, reason: expect.stringMatching(/proof of the nonce/) })
      // The nonce itself, or a proof made for another peer (one a remote submitter got from a reducer and relays): refused.
      expect(await commit({ proof: nonce })).toMatchObject({ inPlace: false, accepted: false })
      expect(await commit({ proof: proof({}, nodes[2].peerId.toString()) })).toMatchObject({ inPlace: false, accepted: false })
      expect(await commit({ proof: proof({}, asker, nodes[0].peerId.toString()) })).toMatchObject({ inPlace: false, accepted: false })
      expect(await commit({ proof: proof({ partition: 1 }) })).toMatchObject({ inPlace: false, accepted: false })
      expect(await commit({ path: link })).toMatchObject({ inPlace: false, reason: expect.stringMatching(/not a regular file/) })
      expect(await commit({ bytes: 9 })).toMatchObject({ inPlace: false, reason: expect.stringMatching(/holds 8 bytes, not 9/) })
      expect(await commit({ path: 'a-part' })).toMatchObject({ inPlace: false, reason: expect.stringMatching(/not an absolute path/) })
      expect(await commit({ jobId: 'another-job' })).toMatchObject({ inPlace: false, accepted: false })
      expect(incoming()).toEqual([])
      expect(parts.has(0)).toBe(false)

      // Local reads answer with a proof bound to the asker, never the nonce a remote asker could replay to the probe's writer.
      const workerProbe = writeProbe(dir)
      try {
        const read = await request(nodes[1], submitter.getMultiaddrs(), JOB_PROTOCOLS.localRead, { jobId: spec.jobId, index: 0, probe: workerProbe.path }, LocalReadResponse)
        expect(read).toMatchObject({ ok: true, proof: probeProof(workerProbe.nonce, submitter.peerId.toString(), asker, probeSubject.localRead({ jobId: spec.jobId, index: 0 })) })
        expect(JSON.stringify(read)).not.toContain(workerProbe.nonce)
      } finally {
        workerProbe.remove()
      }

      expect(await commit({})).toEqual({ inPlace: true, accepted: true })
      rmSync(part)
      expect(readFileSync(parts.output.tempPart(0), 'utf8')).toBe('a 1\nb 2\n')
      writeFileSync(part, 'c 3\nd 4\n')
      expect(await commit({ attempt: 2 })).toMatchObject({ inPlace: true, accepted: false })
      expect(readFileSync(parts.output.tempPart(0), 'utf8')).toBe('a 1\nb 2\n')
      expect(incoming()).toEqual([])
    } finally {
      await submission.stop()
      await submitter.stop()
    }
  })

  it('with --intermediate-replicas 2, every map output is copied to the other worker before its map counts as done', async () => {
    const { code, splits, outDir, parts } = await wcJob(400_000, 'out-copies', 2)
    const before = workers.map((w) => w.getStats().copies?.made ?? 0)
    effects.length = 0
    // A submitter of its own: the first test's still serves its job's code and splits.
    const submitter = await createClientLibp2p({ version: 'test', listen: ['/ip4/127.0.0.1/tcp/0'] })
    await submitter.start()
    try {
      for (const n of nodes.slice(0, 3)) {
        await submitter.peerStore.merge(n.peerId, { multiaddrs: n.getMultiaddrs() })
        await n.peerStore.merge(submitter.peerId, { multiaddrs: submitter.getMultiaddrs() })
      }
      const submission = new Submission(
        { self: submitter.peerId.toString(), addrs: submitter.getMultiaddrs().map((a) => a.toString()), network: submitter, bootstrap: nodes[0].getMultiaddrs(), log, identity: await testIdentity() },
        { jobId: newJobId('wc'), jobName: 'wc', code, splits, reduces: 2, params: {}, maxAttempts: 2, parts, intermediateReplicas: 2 }
      )
      await submission.start()
      await submission.run({ coordinatorTimeoutMs: 10_000 })
      await submission.stop()
    } finally {
      await submitter.stop()
    }
    parts.publish()
    expect(sortedOutput(outDir).equals(readFileSync(join(SHARED_DATA, 'expected', 'wc.txt')))).toBe(true)
    const asked = effects.filter((e): e is Extract<SchedulerEffect, { type: 'replicate' }> => e.type === 'replicate')
    expect(asked.map((e) => e.mapIndex).sort((a, b) => a - b)).toEqual(splits.map((_, i) => i))
    expect(asked.every((e) => e.peer !== e.from)).toBe(true)
    // Each copy was made where it was asked for: none failed over to "done with one copy".
    const made = workers.map((w, i) => (w.getStats().copies?.made ?? 0) - before[i])
    expect(made.reduce((a, b) => a + b, 0)).toBe(splits.length)
    expect(workers.map((w) => w.getStats().copies?.failed ?? 0)).toEqual([0, 0])
  })
})
