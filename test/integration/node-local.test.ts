import '../../src/util/polyfills.js'
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveElectionOptions } from '../../src/cli/election-options.js'
import { resolveLimitOptions } from '../../src/cli/limit-options.js'
import { resolveNetworkOptions } from '../../src/cli/node-options.js'
import { resolveTaskOptions } from '../../src/cli/task-options.js'
import { createBlockList } from '../../src/node/block-list.js'
import { createDataDir, EPOCH_FILE, KEY_FILE } from '../../src/node/data-dir.js'
import { CorruptKeyFileError, DataDirInUseError } from '../../src/node/errors.js'
import { createLogLimiter } from '../../src/util/log-limiter.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { InvalidArgumentError } from '../../src/util/errors.js'

/** The node's local pieces, on the real file system: identity, epoch, lock, block list, options. */
let root: string

beforeAll(async () => { root = await mkdtemp(join(tmpdir(), 'mrp2p-node-local-')) })
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

describe('data dir', () => {
  it('keeps the same PeerId across opens, in a 0600 key file', async () => {
    const dir = join(root, 'identity')
    const a = createDataDir(dir)
    await a.open()
    const first = peerIdFromPrivateKey(await a.loadOrCreateKey()).toString()
    await a.close()
    const b = createDataDir(dir)
    await b.open()
    expect(peerIdFromPrivateKey(await b.loadOrCreateKey()).toString()).toBe(first)
    await b.close()
    expect((await stat(join(dir, KEY_FILE))).mode & 0o777).toBe(0o600)
  })

  it('refuses a corrupt key instead of minting a new identity', async () => {
    const dir = join(root, 'corrupt')
    const d = createDataDir(dir)
    await d.open()
    await writeFile(join(dir, KEY_FILE), 'not a key')
    await expect(d.loadOrCreateKey()).rejects.toBeInstanceOf(CorruptKeyFileError)
    await d.close()
  })

  it('persists the highest epoch and never writes it backwards', async () => {
    const dir = join(root, 'epoch')
    const d = createDataDir(dir)
    await d.open()
    expect(await d.readEpoch()).toBe(0)
    await Promise.all([d.writeEpoch(3), d.writeEpoch(7), d.writeEpoch(5)])
    expect(JSON.parse(await readFile(join(dir, EPOCH_FILE), 'utf8'))).toEqual({ highestEpoch: 7 })
    await d.close()
    const again = createDataDir(dir)
    await again.open()
    expect(await again.readEpoch()).toBe(7)
    await again.close()
  })

  it('refuses a data dir locked by a live process, takes over one left by a dead one', async () => {
    const dir = join(root, 'locked')
    const d = createDataDir(dir)
    await d.open()
    // The test runner's parent is alive and is not us.
    await writeFile(join(dir, 'lock'), `${process.ppid}\n`)
    await expect(createDataDir(dir).open()).rejects.toBeInstanceOf(DataDirInUseError)
    await writeFile(join(dir, 'lock'), '999999999\n')
    await createDataDir(dir).open()
  })
})

describe('block list file', () => {
  it('follows atomic replacements and keeps the old set on garbage', async () => {
    const file = join(root, 'blocked-peers.json')
    const lines: string[] = []
    const list = createBlockList({ file, pollMs: 20, log: pino({ level: 'info' }, { write: (l: string) => { lines.push(l) } }) })
    await list.start()
    try {
      expect(list.list()).toEqual([])
      await writeFile(`${file}.tmp`, JSON.stringify({ blocked: ['A', 'B'] }))
      await rename(`${file}.tmp`, file)
      await waitFor(() => list.has('A') && list.has('B'), { timeoutMs: 2_000 })
      await writeFile(file, '{"blocked": 12')
      await waitFor(() => lines.some(l => l.includes('ignoring unreadable block list')), { timeoutMs: 2_000 })
      expect(list.list().sort()).toEqual(['A', 'B'])
      await rm(file)
      await waitFor(() => list.list().length === 0, { timeoutMs: 2_000 })
    } finally {
      list.stop()
    }
  })
})

describe('options', () => {
  it('takes flags over environment and names the source of a bad value', () => {
    const env = { MRP2P_SLOTS: '3', MRP2P_LISTEN: '/ip4/127.0.0.1/tcp/4001,/ip4/127.0.0.1/tcp/4002', MRP2P_DATA_DIR: '/tmp/x' }
    const o = resolveNetworkOptions({ slots: '5' }, env)
    expect(o.slots).toBe(5)
    expect(o.listen).toEqual(['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/4002'])
    expect(o.dataDir).toBe('/tmp/x')
    expect(() => resolveNetworkOptions({ bootstrap: ['/ip4/127.0.0.1/tcp/1/p2p/notapeer'] }, {})).toThrow(/--bootstrap .*bad PeerId/)
    expect(() => resolveNetworkOptions({}, { MRP2P_SLOTS: '0' })).toThrow(/MRP2P_SLOTS/)
    expect(() => resolveNetworkOptions({ listen: ['/ip4/127.0.0.1/udp/1'] }, {})).toThrow(InvalidArgumentError)
  })

  it('maps election flags and variables, and refuses unsafe combinations by name', () => {
    expect(resolveElectionOptions({ leaseMs: '1500' }, { MRP2P_HEARTBEAT_MS: '300' })).toEqual({ leaseMs: 1500, heartbeatMs: 300 })
    expect(() => resolveElectionOptions({}, { MRP2P_SUSPECT_AFTER_MS: '9000', MRP2P_DEAD_AFTER_MS: '1000' })).toThrow(/MRP2P_SUSPECT_AFTER_MS.*MRP2P_DEAD_AFTER_MS|MRP2P_DEAD_AFTER_MS.*MRP2P_SUSPECT_AFTER_MS/)
    expect(() => resolveElectionOptions({ driftBound: '0.7' }, {})).toThrow(/--drift-bound/)
  })

  it('counts an empty or blank variable as unset, for every kind of setting', () => {
    const blank = { MRP2P_BOOTSTRAP: '', MRP2P_LISTEN: ' ', MRP2P_SLOTS: '', MRP2P_DATA_DIR: '', MRP2P_SWARM_KEY: ' ', MRP2P_LEASE_MS: '', MRP2P_DRIFT_BOUND: '\t' }
    const o = resolveNetworkOptions({ dataDir: '/tmp/x' }, blank)
    expect(o.bootstrap).toEqual([])
    expect(o.listen).toEqual(['/ip4/127.0.0.1/tcp/0'])
    expect(o.swarmKey).toBeUndefined()
    expect(resolveElectionOptions({}, blank)).toEqual({})
    expect(resolveLimitOptions({}, { MRP2P_MAX_JOBS: ' ', MRP2P_MIN_FREE_DISK: '' })).toEqual({ maxJobs: 16, minFreeDiskMb: 64, historyJobs: 1000, historyDays: 30 })
    expect(resolveTaskOptions({}, { MRP2P_TASK_MEMORY_MB: '', MRP2P_SANDBOX: '', MRP2P_NO_EXEC: ' ' })).toEqual({ sandbox: false, taskMemoryMb: 1024, exec: true })
  })

  it('--no-exec and MRP2P_NO_EXEC=1 each turn streaming commands off', () => {
    expect(resolveTaskOptions({ exec: false }, {}).exec).toBe(false)
    expect(resolveTaskOptions({}, { MRP2P_NO_EXEC: '1' }).exec).toBe(false)
    expect(resolveTaskOptions({ exec: true }, {}).exec).toBe(true)
  })
})

describe('log limiter', () => {
  it('lets one line per key per interval through and counts the rest', () => {
    const l = createLogLimiter(1_000)
    expect(l.admit('p', 0)).toBe(0)
    expect(l.admit('p', 10)).toBeUndefined()
    expect(l.admit('p', 20)).toBeUndefined()
    expect(l.admit('q', 30)).toBe(0)
    expect(l.admit('p', 1_500)).toBe(2)
  })
})
