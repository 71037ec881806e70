import '../../src/util/polyfills.js'
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolveElectionOptions } from '../../src/cli/election-options.js'
import { resolveLimitOptions } from '../../src/cli/limit-options.js'
import { loopbackWarning, resolveNetworkOptions } from '../../src/cli/node-options.js'
import { mdnsServiceTag } from '../../src/node/lan-discovery.js'
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
    expect(resolveLimitOptions({}, { MRP2P_MAX_JOBS: ' ', MRP2P_MIN_FREE_DISK: '', MRP2P_REPAIR_AFTER: '' })).toEqual({ maxJobs: 16, minFreeDiskMb: 64, historyJobs: 1000, historyDays: 30, datasetRepairAfterMs: 30_000 })
    expect(resolveLimitOptions({ repairAfter: '0' }, { MRP2P_REPAIR_AFTER: '5' }).datasetRepairAfterMs).toBe(0)
    expect(resolveLimitOptions({}, { MRP2P_REPAIR_AFTER: '5' }).datasetRepairAfterMs).toBe(5_000)
    expect(() => resolveLimitOptions({ repairAfter: '-1' }, {})).toThrow(/--repair-after/)
    expect(resolveTaskOptions({}, { MRP2P_TASK_MEMORY_MB: '', MRP2P_SANDBOX: '', MRP2P_NO_EXEC: ' ', MRP2P_LOCAL_READS: '', MRP2P_LOCAL_SHUFFLE: ' ' })).toEqual({ sandbox: false, taskMemoryMb: 1024, exec: true, localReads: true, localShuffle: true })
    expect(resolveTaskOptions({}, { MRP2P_LOCAL_SHUFFLE: '0' }).localShuffle).toBe(false)
    expect(resolveTaskOptions({ localShuffle: false }, {}).localShuffle).toBe(false)
  })

  it('LAN discovery: on with no --bootstrap and a listen address off loopback, else off; flags and MRP2P_MDNS win', () => {
    const peer = '/ip4/10.0.0.5/tcp/4001/p2p/12D3KooWQk4iPHgsiGUMiKEAnuupdvxdrMvt7fwjgWkQkt4VJvsE'
    const lan = ['/ip4/0.0.0.0/tcp/4001']
    expect(resolveNetworkOptions({ listen: lan }, {}).mdns).toBe(true)
    expect(resolveNetworkOptions({}, {}).mdns).toBe(false)
    expect(resolveNetworkOptions({ listen: lan, bootstrap: [peer] }, {}).mdns).toBe(false)
    expect(resolveNetworkOptions({ listen: lan, mdns: false }, {}).mdns).toBe(false)
    expect(resolveNetworkOptions({ mdns: true }, { MRP2P_MDNS: '0' }).mdns).toBe(true)
    expect(resolveNetworkOptions({ listen: lan }, { MRP2P_MDNS: '0' }).mdns).toBe(false)
    expect(resolveNetworkOptions({}, { MRP2P_MDNS: '1' }).mdns).toBe(true)
    expect(() => resolveNetworkOptions({}, { MRP2P_MDNS: 'yes' })).toThrow(/MRP2P_MDNS "yes"/)
    // One service per mesh: open, and one per swarm key.
    const a = new Uint8Array(32).fill(1)
    const b = new Uint8Array(32).fill(2)
    expect(mdnsServiceTag()).toBe('_mrp2p._udp.local')
    expect(mdnsServiceTag(a)).toMatch(/^_mrp2p-[0-9a-f]{16}\._udp\.local$/)
    expect(mdnsServiceTag(a)).toBe(mdnsServiceTag(new Uint8Array(32).fill(1)))
    expect(mdnsServiceTag(a)).not.toBe(mdnsServiceTag(b))
  })

  it('--announce takes dialable TCP addresses only; a node on loopback bootstrapping to another host is warned in one line', () => {
    expect(resolveNetworkOptions({ announce: ['/ip4/203.0.113.7/tcp/4001'] }, {}).announce).toEqual(['/ip4/203.0.113.7/tcp/4001'])
    expect(resolveNetworkOptions({}, { MRP2P_ANNOUNCE: '/dns4/home.example.org/tcp/4001' }).announce).toEqual(['/dns4/home.example.org/tcp/4001'])
    expect(resolveNetworkOptions({}, {}).announce).toBeUndefined()
    expect(() => resolveNetworkOptions({ announce: ['/ip4/0.0.0.0/tcp/4001'] }, {})).toThrow(/--announce .*not 0\.0\.0\.0/)
    expect(() => resolveNetworkOptions({ announce: ['/ip4/203.0.113.7/tcp/0'] }, {})).toThrow(/--announce .*not 0$/)
    expect(() => resolveNetworkOptions({ announce: ['/ip4/203.0.113.7/udp/1'] }, {})).toThrow(/--announce/)
    const remote = resolveNetworkOptions({ bootstrap: ['/ip4/10.0.0.5/tcp/4001/p2p/12D3KooWQk4iPHgsiGUMiKEAnuupdvxdrMvt7fwjgWkQkt4VJvsE'] }, {})
    const warning = loopbackWarning(remote.listen, remote.bootstrap, remote.announce)
    expect(warning).toMatch(/^mrp2p: warning: this node listens only on loopback \(\/ip4\/127\.0\.0\.1\/tcp\/0\) but bootstraps to \/ip4\/10\.0\.0\.5\/.*--listen \/ip4\/0\.0\.0\.0\/tcp\/0\?$/)
    expect(warning).not.toContain('\n')
    const local = resolveNetworkOptions({ bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWQk4iPHgsiGUMiKEAnuupdvxdrMvt7fwjgWkQkt4VJvsE'] }, {})
    expect(loopbackWarning(local.listen, local.bootstrap, local.announce)).toBeUndefined()
    expect(loopbackWarning(['/ip4/0.0.0.0/tcp/1'], remote.bootstrap, undefined)).toBeUndefined()
    expect(loopbackWarning(remote.listen, remote.bootstrap, ['/ip4/203.0.113.7/tcp/4001'])).toBeUndefined()
  })

  it('--no-local-reads and MRP2P_LOCAL_READS=0 each turn reading inputs in place off', () => {
    expect(resolveTaskOptions({}, {}).localReads).toBe(true)
    expect(resolveTaskOptions({ localReads: false }, {}).localReads).toBe(false)
    expect(resolveTaskOptions({}, { MRP2P_LOCAL_READS: '0' }).localReads).toBe(false)
    expect(resolveTaskOptions({}, { MRP2P_LOCAL_READS: '1' }).localReads).toBe(true)
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
