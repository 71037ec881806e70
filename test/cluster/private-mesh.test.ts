import '../../src/util/polyfills.js'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createProbe } from '../../src/harness/probe.js'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { sortedOutput } from '../support/output.js'
import { BOOKS, REFERENCE_CWD, runCli, type CliResult } from '../support/run-cli.js'

/**
 * A private mesh (issue #6): nodes started with a swarm key accept only peers
 * with the same key. Real node processes, real TCP, the real CLI.
 */
const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-private-'))
const key = join(scratch, 'mesh.key')
const otherKey = join(scratch, 'other.key')
let cluster: Cluster

beforeAll(async () => {
  for (const k of [key, otherKey]) {
    const made = await runCli(['keygen', '--swarm-key', k])
    expect(made.code).toBe(0)
  }
  cluster = await startCluster({ nodes: 3, swarmKeyFile: key, env: { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: 'warn' } })
  await waitForAgreement(cluster, [0, 1, 2], 30_000)
}, 60_000)

afterAll(async () => {
  await cluster?.stop()
})

function oneLineError (res: CliResult, pattern: RegExp): void {
  expect(res.code).not.toBe(0)
  expect(res.code).not.toBeNull()
  expect(res.stderr).toMatch(pattern)
  expect(res.stderr.trim().split('\n')).toHaveLength(1)
  expect(res.stderr).not.toMatch(/\n\s+at /)
}

/** `mrp2p join` pointed at the keyed mesh, run to its end (a hang is killed at the deadline and fails the test). */
async function joinWith (extra: string[]): Promise<CliResult> {
  const dataDir = mkdtempSync(join(scratch, 'joiner-'))
  return await runCli(['join', '--bootstrap', cluster.nodes[0].addr, '--data-dir', dataDir, ...extra], { timeoutMs: 30_000, env: { MRP2P_LOG_LEVEL: 'error' } })
}

describe('private mesh (swarm key)', () => {
  it('keygen writes an owner-only key in the swarm-key format and never overwrites one', async () => {
    expect(readFileSync(key, 'utf8')).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    expect(statSync(key).mode & 0o777).toBe(0o600)
    const before = readFileSync(key, 'utf8')
    const again = await runCli(['keygen', '--swarm-key', key])
    expect(again.code).toBe(2)
    oneLineError(again, /already exists; not overwriting/)
    expect(readFileSync(key, 'utf8')).toBe(before)
  })

  it('a job on the keyed 3-node mesh gives the reference output (inputs, runs and parts all cross the key)', async () => {
    const out = join(scratch, 'wc-out')
    const res = await runCli(['submit', 'wc', '--input', ...BOOKS, '--reduces', '3', '--split-size', '200000', '--output', out, '--bootstrap', cluster.nodes[1].addr, '--swarm-key', key, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
    if (res.code !== 0) throw new Error(`submit failed: ${res.stderr}`)
    expect(sortedOutput(out).equals(readFileSync(join(REFERENCE_CWD, 'wc.txt')))).toBe(true)
  }, 120_000)

  it('a node without the key fails to join with a clear error and a non-zero exit', async () => {
    oneLineError(await joinWith([]), /cannot join: .*refused the connection handshake: the mesh is private; pass its key with --swarm-key/)
  }, 40_000)

  it('a node with the wrong key fails to join with a clear error and a non-zero exit', async () => {
    oneLineError(await joinWith(['--swarm-key', otherKey]), /cannot join: .*refused the connection handshake: this swarm key is not the one the mesh uses/)
  }, 40_000)

  it('submit and status without the key are refused at once, and nothing is written', async () => {
    const out = join(scratch, 'refused-out')
    const submitted = await runCli(['submit', 'wc', '--input', ...BOOKS, '--output', out, '--bootstrap', cluster.nodes[0].addr, '--timeout', '60'], { cwd: REFERENCE_CWD, timeoutMs: 30_000 })
    oneLineError(submitted, /refused the connection handshake: the mesh is private/)
    expect(() => statSync(out)).toThrow()
    oneLineError(await runCli(['status', '--bootstrap', cluster.nodes[0].addr, '--swarm-key', otherKey], { timeoutMs: 30_000 }), /refused the connection handshake: this swarm key is not/)
  }, 40_000)

  it('a peer without the key reads nothing: the info protocol is out of reach, the keyed probe still answers', async () => {
    const stranger = await createProbe()
    try {
      await expect(stranger.info(cluster.nodes[2].addr)).rejects.toThrow()
    } finally {
      await stranger.stop()
    }
    expect((await cluster.info(2))?.peerId).toBe(cluster.nodes[2].peerId)
  })

  it('a swarm key file that is not one is refused with a one-line error naming the file', async () => {
    const bad = join(scratch, 'bad.key')
    writeFileSync(bad, '/key/swarm/psk/1.0.0/\n/base16/\nnot-hex\n')
    oneLineError(await runCli(['status', '--bootstrap', cluster.nodes[0].addr, '--swarm-key', bad]), new RegExp(`${bad}: the key must be 64 hexadecimal digits`))
    oneLineError(await runCli(['join', '--swarm-key', join(scratch, 'missing.key')]), /cannot read swarm key .*missing\.key: ENOENT/)
  })
})
