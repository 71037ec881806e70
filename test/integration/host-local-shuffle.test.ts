import '../../src/util/polyfills.js'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Libp2p } from '@libp2p/interface'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { z } from 'zod'
import { createClientLibp2p } from '../../src/node/client-libp2p.js'
import { JOB_PROTOCOLS, LocalRunRequest, LocalRunResponse } from '../../src/protocol/job-messages.js'
import { probeProof, probeSubject, readProbe } from '../../src/protocol/local-read-probe.js'
import { handleRequests, request } from '../../src/protocol/reqresp.js'
import { createLogger } from '../../src/util/logger.js'
import { IntermediateStore } from '../../src/worker/intermediate-store.js'
import { NodeProbe } from '../../src/worker/node-probe.js'
import { ShuffleClient } from '../../src/worker/shuffle-client.js'
import { ShuffleServer } from '../../src/worker/shuffle-server.js'

/*
 * Host-local shuffle reads (issue #18): a reducer links the run of a mapper on its host, proven by the probe as for
 * inputs read in place, and fetches it over a stream whenever anything is off. Real libp2p over TCP, one process:
 * node 0 reduces; node 1 is a mapper that offers its runs in place; node 2 one that does not (`--no-local-shuffle`,
 * or an older version); node 3 one that serves fetch-run but answers local-run as a test case tells it to.
 */

const log = createLogger('test')
const JOB = 'job-local'
const PARTITION = 1
const dir = mkdtempSync(join(tmpdir(), 'mrp2p-local-shuffle-'))
const nodes: Array<Libp2p<any>> = []
const servers: ShuffleServer[] = []
const stores: IntermediateStore[] = []
/** What node 3 answers to local-run, given the request; and how many it was asked. */
let lie: (req: z.output<typeof LocalRunRequest>) => z.input<typeof LocalRunResponse> = () => ({ ok: false, reason: 'unset' })
let asked = 0
let stopLiar: (() => Promise<void>) | undefined

/** The bytes of map `mapIndex`'s run of PARTITION on every mapper: each map's own. */
const runBytes = (mapIndex: number): Buffer => Buffer.from(`map ${mapIndex} partition ${PARTITION} `.repeat(50 + mapIndex))

beforeAll(async () => {
  for (let i = 0; i < 4; i++) {
    const n = await createClientLibp2p({ version: 'test', listen: ['/ip4/127.0.0.1/tcp/0'] })
    await n.start()
    nodes.push(n)
  }
  for (const a of nodes) for (const b of nodes) if (a !== b) await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
  for (let i = 0; i < 4; i++) {
    const store = new IntermediateStore(join(dir, `node-${i}`))
    stores.push(store)
    if (i === 0) continue
    // Maps 0–3 finished on every mapper, so that each case can ask for a map it has not asked for before.
    for (let m = 0; m < 4; m++) {
      const work = store.workDir(JOB, 'map', m, '1.1')
      const paths = store.runPaths(work, 2)
      writeFileSync(paths[0], 'other partition')
      writeFileSync(paths[1], runBytes(m))
      store.commitMapOutput(work, { jobId: JOB, mapIndex: m, attempt: '1.1', partitionBytes: [15, runBytes(m).length] })
    }
    const server = new ShuffleServer(nodes[i], store, log, { self: nodes[i].peerId.toString(), inPlace: i === 1 })
    await server.start()
    servers.push(server)
  }
  const liar = await handleRequests(nodes[3], {
    protocol: JOB_PROTOCOLS.localRun,
    requestSchema: LocalRunRequest,
    log,
    handle: (req) => { asked++; return lie(req) }
  })
  stopLiar = async () => { await liar.unregister() }
})

afterAll(async () => {
  await stopLiar?.()
  for (const s of servers) await s.stop()
  for (const n of nodes) await n.stop()
  rmSync(dir, { recursive: true, force: true })
})

const peer = (i: number): string => nodes[i].peerId.toString()
const runPath = (node: number, mapIndex: number): string => join(stores[node].root, JOB, `map-${mapIndex}`, `run-${PARTITION}`)

/** A fresh reducer (nothing remembered) pulling map `mapIndex` from node `from` into a new folder. */
async function pull (from: number, mapIndex: number, inPlace = true, copy = false): Promise<{ path: string, client: ShuffleClient, bytes: number, linkedBytes: number }> {
  const probes = new NodeProbe(log)
  const client = new ShuffleClient(peer(0), nodes[0], stores[0], { inPlace, probes, copy, log })
  const work = join(dir, `work-${from}-${mapIndex}-${String(inPlace)}-${Math.random().toString(36).slice(2)}`)
  mkdirSync(work)
  try {
    const got = await client.fetchRuns(JOB, PARTITION, [{ mapIndex, peer: peer(from) }], work, AbortSignal.timeout(20_000))
    expect(readFileSync(got.paths[0]).equals(runBytes(mapIndex))).toBe(true)
    return { path: got.paths[0], client, bytes: got.bytes, linkedBytes: got.linkedBytes }
  } finally {
    probes.stop()
  }
}

const sameFile = (a: string, b: string): boolean => statSync(a).ino === statSync(b).ino && statSync(a).dev === statSync(b).dev

describe('map outputs of a mapper on this host, linked in place', () => {
  it('a mapper on this host names its run, and the reducer links it: nothing crosses a stream', async () => {
    const { path, client, bytes, linkedBytes } = await pull(1, 0)
    expect(sameFile(path, runPath(1, 0))).toBe(true)
    expect(bytes).toBe(0)
    expect(linkedBytes).toBe(runBytes(0).length)
    expect(client.stats()).toMatchObject({ bytes: 0, inPlaceRuns: 1, inPlaceBytes: runBytes(0).length })
  })

  it('a reducer started with --no-local-shuffle fetches it over a stream though the mapper offers it', async () => {
    const { path, client, bytes, linkedBytes } = await pull(1, 1, false)
    expect(sameFile(path, runPath(1, 1))).toBe(false)
    expect(bytes).toBe(runBytes(1).length)
    expect(linkedBytes).toBe(0)
    expect(client.stats()).toMatchObject({ inPlaceRuns: 0 })
  })

  it('a mapper that does not offer its runs (--no-local-shuffle, an older version) has them fetched', async () => {
    const { path, bytes } = await pull(2, 0)
    expect(sameFile(path, runPath(2, 0))).toBe(false)
    expect(bytes).toBe(runBytes(0).length)
  })

  it('a mapper answers "elsewhere", and names nothing, for a probe it cannot read', async () => {
    const answer = await request(nodes[0], nodes[1].peerId, JOB_PROTOCOLS.localRun, { jobId: JOB, mapIndex: 0, partition: PARTITION, probe: join(dir, 'not-a-probe') }, LocalRunResponse)
    expect(answer).toEqual({ ok: false, reason: expect.stringMatching(/probe not readable/), elsewhere: true })
  })

  it('a mapper that says it is elsewhere is fetched from, and not asked again for its next runs', async () => {
    lie = () => ({ ok: false, reason: 'probe not readable here', elsewhere: true })
    asked = 0
    const probes = new NodeProbe(log)
    const client = new ShuffleClient(peer(0), nodes[0], stores[0], { probes, log })
    const work = join(dir, 'work-elsewhere')
    mkdirSync(work)
    try {
      const into = { paths: [], bytes: 0, rawBytes: 0, linkedBytes: 0, linkedRawBytes: 0 }
      for (const m of [0, 1, 2]) {
        const path = await client.fetchOne(JOB, PARTITION, { mapIndex: m, peer: peer(3) }, work, AbortSignal.timeout(20_000), into)
        expect(readFileSync(path).equals(runBytes(m))).toBe(true)
      }
      expect(into.bytes).toBe(runBytes(0).length + runBytes(1).length + runBytes(2).length)
      expect(asked).toBe(1)
    } finally {
      probes.stop()
    }
  })

  it('with --sandbox the run is copied, not linked: a sandboxed reduce may write its folder, and a link there is the mapper\'s file', async () => {
    const { path, bytes, linkedBytes } = await pull(1, 2, true, true)
    expect(sameFile(path, runPath(1, 2))).toBe(false)
    expect(bytes).toBe(0)
    expect(linkedBytes).toBe(runBytes(2).length)
  })

  /** What node 3 proves for `req`, as a mapper that read the probe, answering node `asker`, as node `answerer`. */
  const proofFor = (req: z.output<typeof LocalRunRequest>, answerer = 3, asker = 0): string => probeProof(readProbe(req.probe) ?? '', peer(answerer), peer(asker), probeSubject.localRun(req))
  const trueAnswer = (req: z.output<typeof LocalRunRequest>): z.input<typeof LocalRunResponse> => ({ ok: true, proof: proofFor(req), path: runPath(3, req.mapIndex), bytes: runBytes(req.mapIndex).length })

  // Each answer a mapper could give that the reducer must not take, each one thing off the true one; the run then
  // comes over the stream.
  it.each([
    ['a proof of another nonce', (req: z.output<typeof LocalRunRequest>) => ({ ...trueAnswer(req), proof: probeProof('f'.repeat(64), peer(3), peer(0), probeSubject.localRun(req)) })],
    ['a proof made for another asker (an answer a remote peer got and relays)', (req: z.output<typeof LocalRunRequest>) => ({ ...trueAnswer(req), proof: proofFor(req, 3, 1) })],
    ['a proof made by another mapper', (req: z.output<typeof LocalRunRequest>) => ({ ...trueAnswer(req), proof: proofFor(req, 1, 0) })],
    ['a proof about another run', (req: z.output<typeof LocalRunRequest>) => ({ ...trueAnswer(req), proof: probeProof(readProbe(req.probe) ?? '', peer(3), peer(0), probeSubject.localRun({ ...req, mapIndex: req.mapIndex + 1 })) })],
    ['a file that is not shaped like a run of that map', (req: z.output<typeof LocalRunRequest>) => {
      const secret = join(dir, 'secret')
      writeFileSync(secret, runBytes(req.mapIndex))
      return { ...trueAnswer(req), path: secret }
    }],
    ['a run of another map', (req: z.output<typeof LocalRunRequest>) => ({ ...trueAnswer(req), path: runPath(3, (req.mapIndex + 1) % 4), bytes: runBytes((req.mapIndex + 1) % 4).length })],
    ['a symbolic link named like the run', (req: z.output<typeof LocalRunRequest>) => {
      const link = join(dir, 'node-8', 'intermediate', JOB, `map-${req.mapIndex}`, `run-${PARTITION}`)
      mkdirSync(join(link, '..'), { recursive: true })
      rmSync(link, { force: true })
      symlinkSync(runPath(3, req.mapIndex), link)
      return { ...trueAnswer(req), path: link }
    }],
    ['a size the file does not have', (req: z.output<typeof LocalRunRequest>) => ({ ...trueAnswer(req), bytes: runBytes(req.mapIndex).length + 1 })],
    ['a run that is gone', (req: z.output<typeof LocalRunRequest>) => ({ ...trueAnswer(req), path: join(dir, 'node-9', 'intermediate', JOB, `map-${req.mapIndex}`, `run-${PARTITION}`) })]
  ])('an answer with %s: the run is fetched, not linked', async (_name, answer) => {
    lie = answer
    const { path, client, bytes } = await pull(3, 2)
    expect(sameFile(path, runPath(3, 2))).toBe(false)
    expect(bytes).toBe(runBytes(2).length)
    expect(client.stats()).toMatchObject({ inPlaceRuns: 0 })
  })

  it('the true answer is linked (the cases above differ from it in one thing each)', async () => {
    lie = trueAnswer
    const { path, bytes } = await pull(3, 2)
    expect(sameFile(path, runPath(3, 2))).toBe(true)
    expect(bytes).toBe(0)
  })
})
