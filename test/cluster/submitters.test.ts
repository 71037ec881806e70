import '../../src/util/polyfills.js'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { startNode, type MeshNode } from '../../src/node/node.js'
import { startRoles } from '../../src/node/roles.js'
import { MRP2P_VERSION } from '../../src/node/version.js'
import { DoJobResponse, JOB_PROTOCOLS, jobRefOf, type DoJobRequest, type UnsealedJobSpec } from '../../src/protocol/job-messages.js'
import { checkSealedSpec, sealJob } from '../../src/protocol/job-seal.js'
import { request } from '../../src/protocol/reqresp.js'
import { componentLogger } from '../../src/util/logger.js'
import type { z } from 'zod'
import { TEST_ELECTION_ENV, TEST_LEASE_MS, waitForAgreement } from '../support/cluster-views.js'
import { sortedOutput } from '../support/output.js'
import { BOOKS, REFERENCE_CWD, runCli, startCli } from '../support/run-cli.js'
import { readIdentityFile } from '../../src/cli/identity-options.js'

/**
 * Issue #19, signed jobs: nodes started with `--submitters FILE` take jobs only from the identities it lists, and
 * every worker checks each order's seal itself, so that neither a refused submitter nor a member that becomes
 * coordinator can make it run code that no allowed identity signed. Real processes; the rogue coordinator is
 * test-only code: a real mrp2p node (election, gossip, info) without the coordinator role, whose orders the test
 * writes by hand.
 */
const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-submitters-'))
const ALICE = join(scratch, 'alice.id')
const BOB = join(scratch, 'bob.id')
const ALLOWED = join(scratch, 'submitters.txt')
let alice = ''
let bob = ''

beforeAll(async () => {
  for (const [file, set] of [[ALICE, (id: string) => { alice = id }], [BOB, (id: string) => { bob = id }]] as const) {
    const made = await runCli(['keygen', '--identity', file])
    expect(made.code).toBe(0)
    set(made.stdout.split('\n')[0])
    expect(made.stdout.split('\n')[0]).toMatch(/^12D3KooW\w+$/)
  }
  writeFileSync(ALLOWED, `# who may submit to this mesh\n${alice}  # alice\n\n`)
}, 60_000)

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true })
})

describe('identity files and --submitters lists: bad input', () => {
  it('keygen never overwrites an identity; a broken identity or list is one line and exit 2', async () => {
    const again = await runCli(['keygen', '--identity', ALICE])
    expect(again.code).toBe(2)
    expect(again.stderr.trim()).toMatch(/^mrp2p: --identity .*alice\.id already exists; not overwriting/)
    expect(readIdentityFile(ALICE)).toBeDefined()

    const garbage = join(scratch, 'garbage.id')
    writeFileSync(garbage, 'not a key\n')
    const submit = await runCli(['submit', 'wc', '--input', BOOKS[0], '--bootstrap', '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWSrKnMZUcSxK8G7wmBbXdU8nFEfWGhLu6H8xjn8LmCSJb', '--identity', garbage, '--output', join(scratch, 'never')], { cwd: REFERENCE_CWD })
    expect(submit.code).toBe(2)
    expect(submit.stderr.trim().split('\n')).toHaveLength(1)
    expect(submit.stderr).toMatch(/--identity .*garbage\.id is not an mrp2p identity/)
    expect(existsSync(join(scratch, 'never'))).toBe(false)

    const badList = join(scratch, 'bad-list.txt')
    writeFileSync(badList, `${alice}\nbob\n`)
    const join2 = await runCli(['join', '--submitters', badList, '--data-dir', join(scratch, 'never-node')])
    expect(join2.code).toBe(2)
    expect(join2.stderr.trim()).toMatch(/^mrp2p: --submitters .*bad-list\.txt line 2: "bob" is not an identity's PeerId/)
  }, 60_000)
})

describe('a mesh whose nodes allow one submitter', () => {
  let cluster: Cluster | undefined
  afterAll(async () => { await cluster?.stop() })

  async function wc (out: string, identity: string[]): Promise<Awaited<ReturnType<typeof runCli>>> {
    const c = cluster as Cluster
    return await runCli(['submit', 'wc', '--input', ...BOOKS, '--reduces', '2', '--output', out, '--bootstrap', c.nodes[1].addr, ...identity], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
  }

  it('runs the allowed identity\'s job, refuses the others\' with one line naming them, and says so in status and history', async () => {
    const c = cluster = await startCluster({ nodes: 3, env: TEST_ELECTION_ENV, args: () => ['--submitters', ALLOWED] })
    await waitForAgreement(c, [0, 1, 2], 20_000)

    const out = join(scratch, 'alice-out')
    const ok = await wc(out, ['--identity', ALICE, '--quiet'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(sortedOutput(out).equals(readFileSync(join(REFERENCE_CWD, 'wc.txt')))).toBe(true)
    const jobId = /^job (\S+) submitted/m.exec(ok.stdout)?.[1] ?? ''

    for (const [who, flags, id] of [['bob', ['--identity', BOB], bob], ['a fresh identity', [], undefined]] as const) {
      const refusedOut = join(scratch, `refused-${who}`)
      const refused = await wc(refusedOut, [...flags])
      expect(refused.code, who).toBe(1)
      const lines = refused.stderr.trim().split('\n')
      expect(lines, who).toHaveLength(1)
      expect(lines[0], who).toMatch(new RegExp(`^mrp2p: job wc refused: identity ${id ?? '12D3KooW\\w+'} is not allowed to submit to this mesh$`))
      expect(existsSync(refusedOut), who).toBe(false)
    }

    const status = await runCli(['status', '--bootstrap', c.nodes[0].addr])
    expect(status.code).toBe(0)
    expect(status.stdout.match(/ 1 allowed$/gm)).toHaveLength(3)

    const job = await runCli(['job', jobId, '--json', '--bootstrap', c.nodes[2].addr])
    expect(job.code).toBe(0)
    const record = JSON.parse(job.stdout) as { identity?: string, codeHash?: string }
    expect(record.identity).toBe(alice)
    expect(record.codeHash).toMatch(/^[0-9a-f]{64}$/)
    const jobs = await runCli(['jobs', '--bootstrap', c.nodes[2].addr])
    expect(jobs.stdout).toContain(alice.slice(-6))
  }, 240_000)

  it('lets only an allowed identity cancel a running job', async () => {
    const c = cluster as Cluster
    const out = join(scratch, 'slow-out')
    // A streaming job that waits for its cancel: each map sleeps before it reads.
    const slow = startCli(['submit', '--mapper', 'sleep 60; cat', '--reducer', 'cat', '--input', BOOKS[0], '--output', out, '--bootstrap', c.nodes[0].addr, '--identity', ALICE, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
    const jobId = await waitFor(async () => {
      const running = await runCli(['jobs', '--state', 'running', '--json', '--bootstrap', c.nodes[2].addr])
      return (JSON.parse(running.stdout) as Array<{ jobId: string, identity?: string }>).find((j) => j.identity === alice)?.jobId
    }, { timeoutMs: 30_000, description: 'the slow job to be running' })

    const byBob = await runCli(['cancel', jobId, '--identity', BOB, '--bootstrap', c.nodes[2].addr])
    expect(byBob.code).toBe(1)
    expect(byBob.stderr.trim()).toBe(`mrp2p: cannot cancel job ${jobId}: identity ${bob} is not allowed to cancel jobs in this mesh`)

    const byAlice = await runCli(['cancel', jobId, '--identity', ALICE, '--bootstrap', c.nodes[2].addr])
    expect(byAlice.stderr).toBe('')
    expect(byAlice.stdout.trim()).toBe(`job ${jobId} cancelled`)
    const ended = await slow.result
    expect(ended.code).toBe(1)
    expect(ended.stderr).toMatch(new RegExp(`cancelled \\(cancelled by ${alice}\\)`))
  }, 180_000)

  it('changes datasets only for an allowed identity: put and rm by others are refused with one line', async () => {
    const c = cluster as Cluster
    const dataset = ['--bootstrap', c.nodes[0].addr]
    const put = async (name: string, identity: string[]): Promise<Awaited<ReturnType<typeof runCli>>> => await runCli(['put', BOOKS[0], '--name', name, ...identity, ...dataset], { cwd: REFERENCE_CWD, timeoutMs: 60_000 })
    expect((await put('alices', ['--identity', ALICE])).code).toBe(0)
    const byBob = await put('bobs', ['--identity', BOB])
    expect(byBob.code).toBe(1)
    expect(byBob.stderr).toBe(`mrp2p: identity ${bob} is not allowed to change datasets in this mesh\n`)
    const anonymous = await runCli(['rm', 'alices', ...dataset])
    expect(anonymous.code).toBe(1)
    expect(anonymous.stderr).toMatch(/^mrp2p: identity 12D3KooW\w+ is not allowed to change datasets in this mesh\n$/)
    const listed = await runCli(['ls', '--json', ...dataset])
    expect((JSON.parse(listed.stdout) as Array<{ name: string }>).map((d) => d.name)).toEqual(['alices'])
    const byAlice = await runCli(['rm', 'alices', '--identity', ALICE, ...dataset])
    expect(byAlice.stdout).toBe('removed alices\n')
  }, 120_000)
})

describe('a member that becomes coordinator and orders jobs no allowed identity signed', () => {
  let cluster: Cluster | undefined
  let rogue: MeshNode | undefined
  afterAll(async () => {
    await cluster?.stop()
    await rogue?.stop()
  })

  it('is refused by every worker for each order, counted and logged with its PeerId, and nothing runs', async () => {
    // The rogue starts alone and elects itself; the workers then join it, and leader stickiness keeps it in office.
    const quiet = componentLogger(pino({ level: 'warn' }, pino.destination(2)))
    const r = rogue = await startNode({
      dataDir: join(scratch, 'rogue'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      slots: 0,
      worker: false,
      version: MRP2P_VERSION,
      logger: quiet,
      election: { leaseMs: TEST_LEASE_MS, heartbeatMs: Number(TEST_ELECTION_ENV.MRP2P_HEARTBEAT_MS), suspectAfterMs: Number(TEST_ELECTION_ENV.MRP2P_SUSPECT_AFTER_MS), deadAfterMs: Number(TEST_ELECTION_ENV.MRP2P_DEAD_AFTER_MS) }
    })
    await waitFor(() => r.isCoordinator(), { timeoutMs: 20_000, description: 'the rogue to elect itself' })
    const c = cluster = await startCluster({ nodes: 2, env: TEST_ELECTION_ENV, args: () => ['--submitters', ALLOWED, '--bootstrap', r.addrs()[0]] })
    await waitFor(async () => {
      const s = await c.sample([0, 1])
      return s.size === 2 && [...s.values()].every((i) => i.coordinator === r.peerId && i.leaseValid === true)
    }, { timeoutMs: 30_000, description: 'both workers to follow the rogue coordinator' })

    // A job alice signed (for the tampered orders) and the same job signed by the rogue itself.
    const unsealed: UnsealedJobSpec = {
      jobId: 'rogue-job',
      jobName: 'wc',
      codeHash: 'a'.repeat(64),
      splits: [{ document: '/etc/passwd', index: 0, offset: 0, length: 100, firstLine: 1 }, { document: 'b', index: 1, offset: 0, length: 10, firstLine: 1 }],
      reduces: 1,
      params: {},
      submitter: { peer: r.peerId, addrs: r.addrs() },
      maxAttempts: 1
    }
    const byAlice = await sealJob(unsealed, readIdentityFile(ALICE))
    const byRogue = await sealJob(unsealed, await generateKeyPair('Ed25519'))
    const proof = (spec: typeof byAlice, i: number): string[] => checkSealedSpec(spec).tree?.proof(i) ?? []
    const map = (spec: typeof byAlice, i: number, split = spec.splits[i]): z.input<typeof DoJobRequest>['task'] => ({ kind: 'map', jobId: spec.jobId, index: i, attempt: 1, split })
    const epoch = r.view().epoch
    const orders: Array<{ name: string, order: Record<string, unknown>, refusal?: string }> = [
      { name: 're-signed by the rogue', order: { epoch, job: jobRefOf(byRogue), task: map(byRogue, 0), splitProof: proof(byRogue, 0) }, refusal: 'signer-not-allowed' },
      { name: 'alice\'s job with another code hash', order: { epoch, job: { ...jobRefOf(byAlice), codeHash: 'b'.repeat(64) }, task: map(byAlice, 0), splitProof: proof(byAlice, 0) }, refusal: 'bad-signature' },
      { name: 'alice\'s job with a split she did not sign', order: { epoch, job: jobRefOf(byAlice), task: map(byAlice, 0, { ...byAlice.splits[0], path: '/etc/shadow' }), splitProof: proof(byAlice, 0) }, refusal: 'split-not-signed' },
      { name: 'unsigned', order: { epoch, job: { ...jobRefOf(byAlice), seal: undefined }, task: map(byAlice, 0) } }
    ]
    for (const node of c.nodes) {
      for (const { name, order, refusal } of orders) {
        const answer = await request(r.libp2p, multiaddr(node.addr), JOB_PROTOCOLS.doJob, order, DoJobResponse).catch((err: unknown) => err as Error)
        if (refusal === undefined) {
          // Not even a valid order: refused by the schema before anything reads it.
          expect(answer, name).toBeInstanceOf(Error)
          continue
        }
        expect(answer, name).toMatchObject({ accepted: false, unable: true })
      }
    }

    const infos = await c.sample([0, 1])
    for (const [i, info] of infos) {
      expect(info.tasks?.sealRefusals, `node ${i}`).toBe(3)
      expect(info.tasks?.started, `node ${i}`).toBe(0)
      expect(info.submitters, `node ${i}`).toBe(1)
      const metrics = await (await fetch(`${c.nodes[i].dashboard ?? ''}metrics`)).text()
      for (const reason of ['signer-not-allowed', 'bad-signature', 'split-not-signed']) expect(metrics, `node ${i}`).toContain(`mrp2p_orders_refused_total{reason="${reason}"} 1`)
      const log = readFileSync(join(c.rootDir, `node-${i}`, 'node.log'), 'utf8')
      expect(log.split('\n').filter((l) => l.includes('refused an order: its job is not signed') && l.includes(`"coordinator":"${r.peerId}"`)).length, `node ${i}`).toBe(3)
      // No attempt folder was made: nothing of the job reached the disk.
      const jobDir = join(c.nodes[i].dataDir, 'intermediate', 'rogue-job')
      expect(existsSync(jobDir) ? readdirSync(jobDir) : [], `node ${i}`).toEqual([])
    }

    // The same rogue's order of a job alice signed, as it was signed, is taken: the refusals above were the seals'.
    const good = await request(r.libp2p, multiaddr(c.nodes[0].addr), JOB_PROTOCOLS.doJob, { epoch, job: jobRefOf(byAlice), task: map(byAlice, 1), splitProof: proof(byAlice, 1) }, DoJobResponse)
    expect(good.accepted).toBe(true)
  }, 180_000)

  it('a coordinator without --submitters takes a job the workers will not run: it fails with their reason instead of waiting', async () => {
    const r = rogue as MeshNode
    const c = cluster as Cluster
    // The same node, now an honest coordinator (the roles any `mrp2p join` runs) that lets any member submit.
    const before = await c.sample([0, 1])
    const roles = await startRoles(r, { worker: false, slots: 1, version: MRP2P_VERSION })
    try {
      const out = join(scratch, 'bob-out')
      const res = await runCli(['submit', 'wc', '--input', ...BOOKS.slice(0, 2), '--output', out, '--bootstrap', c.nodes[0].addr, '--identity', BOB, '--quiet'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
      expect(res.code).toBe(1)
      expect(res.stderr.trim()).toMatch(new RegExp(`^mrp2p: job wc failed: identity ${bob} is not allowed to submit to this mesh \\(not in node 12D3KooW\\w+'s --submitters\\)`))
      expect(existsSync(out)).toBe(false)
      const infos = await c.sample([0, 1])
      for (const [i, info] of infos) {
        // No attempt of bob's job started anywhere; each worker refused it for its signer.
        expect(info.tasks?.started, `node ${i}`).toBe(before.get(i)?.tasks?.started)
        expect(info.tasks?.sealRefusals ?? 0, `node ${i}`).toBeGreaterThan(before.get(i)?.tasks?.sealRefusals ?? 0)
      }
    } finally {
      await roles.stop()
    }
  }, 180_000)
})
