import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { resolveRelay } from '../../src/cli/node-options.js'
import { relaySlotsFor } from '../../src/node/relay-limits.js'
import { formatStatus, relayedPairs } from '../../src/cli/status.js'
import { hasPublicAddress, isRelayed, reachabilityOf } from '../../src/node/reachability.js'
import type { InfoResponse } from '../../src/protocol/info.js'
import { infoFixture } from '../support/info-fixture.js'

// Addresses below are strings that nothing dials: a public-looking one is needed to tell public from private.
const RELAY_A = '12D3KooWQk4iPHgsiGUMiKEAnuupdvxdrMvt7fwjgWkQkt4VJvsE'
const RELAY_B = '12D3KooWJJ3TQsmcT1c6ggRRLKZ1LrrGNsG3U1JLgsDGcM42AhgZ'
const SELF = '12D3KooWBCjnrwFPBqVVbGFEbvLmdbxEUQFbJ8bNvqfbxWj1Qhqw'
const at = (text: string, verified = false): { multiaddr: ReturnType<typeof multiaddr>, verified: boolean } => ({ multiaddr: multiaddr(text), verified })

describe('reachability', () => {
  it('AutoNAT\'s verdict: public once a public address is confirmed, unknown while not, private with none', () => {
    expect(reachabilityOf([at('/ip4/127.0.0.1/tcp/1'), at('/ip4/10.0.0.5/tcp/1', true)])).toEqual({ nat: 'private', relays: [] })
    expect(reachabilityOf([at('/ip4/10.0.0.5/tcp/1'), at('/ip4/81.2.69.160/tcp/4001')])).toEqual({ nat: 'unknown', relays: [] })
    expect(reachabilityOf([at('/ip4/81.2.69.160/tcp/4001', true)])).toEqual({ nat: 'public', relays: [] })
  })

  it('the relays a node holds slots on are read from its /p2p-circuit addresses, once each, and are no public address', () => {
    const circuit = (relay: string): string => `/ip4/81.2.69.160/tcp/4001/p2p/${relay}/p2p-circuit/p2p/${SELF}`
    const r = reachabilityOf([at('/ip4/10.0.0.5/tcp/1'), at(circuit(RELAY_B), true), at(circuit(RELAY_A), true), at(`/ip4/10.0.0.9/tcp/2/p2p/${RELAY_A}/p2p-circuit`, true)])
    expect(r).toEqual({ nat: 'private', relays: [RELAY_A, RELAY_B].sort() })
    expect(isRelayed({ remoteAddr: multiaddr(circuit(RELAY_A)) })).toBe(true)
    expect(isRelayed({ remoteAddr: multiaddr('/ip4/10.0.0.5/tcp/1') })).toBe(false)
  })

  it('a node has a public address when it listens on or announces one, a wildcard counting its interfaces', () => {
    expect(hasPublicAddress(['/ip4/127.0.0.1/tcp/0'], [], ['81.2.69.160'])).toBe(false)
    expect(hasPublicAddress(['/ip4/0.0.0.0/tcp/0'], [], ['127.0.0.1', '192.168.1.4'])).toBe(false)
    expect(hasPublicAddress(['/ip4/0.0.0.0/tcp/0'], [], ['127.0.0.1', '81.2.69.160'])).toBe(true)
    expect(hasPublicAddress(['/ip6/::/tcp/0'], [], ['::1', '2a00:1450:4001:81b::200e'])).toBe(true)
    expect(hasPublicAddress(['/ip4/0.0.0.0/tcp/0'], [], ['127.0.0.1', '2a00:1450:4001:81b::200e'])).toBe(false)
    expect(hasPublicAddress(['/ip4/10.0.0.5/tcp/0'], ['/ip4/81.2.69.160/tcp/4001'], [])).toBe(true)
    expect(hasPublicAddress(['/ip4/10.0.0.5/tcp/0'], ['/dns4/home.example.org/tcp/4001'], [])).toBe(true)
  })

  it('--relay: flag, then MRP2P_RELAY, then on exactly for a node with a public address; a bad variable is named', () => {
    const lan = ['/ip4/10.0.0.5/tcp/4001']
    const isPublic = (): boolean => true
    const notPublic = (): boolean => false
    expect(resolveRelay(undefined, {}, lan, [], notPublic)).toBe(false)
    expect(resolveRelay(undefined, {}, lan, [], isPublic)).toBe(true)
    expect(resolveRelay(true, { MRP2P_RELAY: '0' }, lan, [], notPublic)).toBe(true)
    expect(resolveRelay(false, {}, lan, [], isPublic)).toBe(false)
    expect(resolveRelay(undefined, { MRP2P_RELAY: '1' }, lan, [], notPublic)).toBe(true)
    expect(resolveRelay(undefined, { MRP2P_RELAY: '0' }, lan, [], isPublic)).toBe(false)
    expect(() => resolveRelay(undefined, { MRP2P_RELAY: 'yes' }, lan, [], isPublic)).toThrow(/MRP2P_RELAY "yes"/)
  })

  it('relay slots: two for a node off loopback that is no relay and announces nothing; none otherwise', () => {
    expect(relaySlotsFor(false, ['/ip4/10.0.0.5/tcp/4001'], [])).toBe(2)
    expect(relaySlotsFor(false, ['/ip4/0.0.0.0/tcp/4001'], [])).toBe(2)
    expect(relaySlotsFor(true, ['/ip4/10.0.0.5/tcp/4001'], [])).toBe(0)
    expect(relaySlotsFor(false, ['/ip4/10.0.0.5/tcp/4001'], ['/ip4/81.2.69.160/tcp/4001'])).toBe(0)
    expect(relaySlotsFor(false, ['/ip4/127.0.0.1/tcp/0'], [])).toBe(0)
  })
})

describe('status: links and reachability', () => {
  const info = (peerId: string, over: Partial<InfoResponse> = {}): InfoResponse => infoFixture(peerId, { coordinator: RELAY_A, addrs: [`/ip4/10.0.0.5/tcp/4001/p2p/${peerId}`], ...over })
  const member = (peerId: string): InfoResponse['members'][number] => ({ peerId, addrs: [`/ip4/10.0.0.6/tcp/4001/p2p/${peerId}`], liveness: 'alive', role: 'follower', slots: 2, running: 0, worker: true, version: 'test', lastHeardMsAgo: 10 })

  it('shows each peer\'s link from the asked node and every answering node\'s reachability, and lists relayed pairs once', () => {
    const self = info(SELF, {
      connections: [RELAY_A, RELAY_B],
      relayed: [RELAY_B],
      reachability: { nat: 'private', relay: false, relays: [RELAY_A] },
      members: [member(RELAY_A), member(RELAY_B)]
    })
    const a = info(RELAY_A, { connections: [SELF, RELAY_B], reachability: { nat: 'public', relay: true, relays: [] } })
    const b = info(RELAY_B, { connections: [SELF, RELAY_A], relayed: [SELF], reachability: { nat: 'private', relay: false, relays: [RELAY_A] } })
    const answers = new Map([[SELF, self], [RELAY_A, a], [RELAY_B, b]])
    expect(relayedPairs(answers)).toEqual([[RELAY_B, SELF].sort()])
    const text = formatStatus(self, answers)
    const row = (peer: string): string => text.split('\n').find((l) => l.startsWith(peer)) ?? ''
    expect(row(SELF)).toMatch(/\bself\s+2\s+-\s+private, via 1 relay\s+any member$/)
    expect(row(RELAY_A)).toMatch(/\bdirect\s+public, relay\s+any member$/)
    expect(row(RELAY_B)).toMatch(/\brelayed\s+private, via 1 relay\s+any member$/)
    expect(text).toContain(`reached only through a relay:\n  ${[RELAY_B, SELF].sort().join(' <-> ')}\n`)
    // A node that did not answer: its reachability and mode are unknown, and no pair is made up for it.
    const alone = formatStatus(self, new Map([[SELF, self]]))
    expect(alone.split('\n').find((l) => l.startsWith(RELAY_A))).toMatch(/\bdirect\s+\?\s+\?$/)
    expect(alone).toContain(`  ${[RELAY_B, SELF].sort().join(' <-> ')}`)
  })
})
