import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { dialOrder, type Network } from '../../src/node/dial-order.js'

const net = (cidr: string): Network => {
  const [ip, bits] = cidr.split('/')
  const address = ip.split('.').map(Number).reduce((a, p) => ((a << 8) | p) >>> 0, 0)
  return { address, mask: Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0 }
}

describe('dial order', () => {
  const peer = '12D3KooWQk4iPHgsiGUMiKEAnuupdvxdrMvt7fwjgWkQkt4VJvsE'
  const relay = '12D3KooWJJ3TQsmcT1c6ggRRLKZ1LrrGNsG3U1JLgsDGcM42AhgZ'
  const order = (addrs: string[], networks: Network[]): string[] =>
    addrs.map((a) => ({ multiaddr: multiaddr(a), isCertified: false })).sort(dialOrder(networks)).map((a) => a.multiaddr.toString())

  it('dials a private address of a network this machine is not on last, after the relayed ones; the rest as libp2p does', () => {
    const behindOtherNat = `/ip4/10.233.7.15/tcp/4001/p2p/${peer}`
    const relayed = `/ip4/10.231.7.12/tcp/4001/p2p/${relay}/p2p-circuit/p2p/${peer}`
    const onOurLan = `/ip4/10.232.7.14/tcp/4001/p2p/${peer}`
    const loopback = `/ip4/127.0.0.1/tcp/4001/p2p/${peer}`
    const here = [net('10.232.7.0/24'), net('127.0.0.0/8')]
    expect(order([behindOtherNat, relayed, loopback], here)).toEqual([relayed, loopback, behindOtherNat])
    // On the peer's own network (or with no relayed address) libp2p's order stands: private before relayed.
    expect(order([relayed, onOurLan], here)).toEqual([onOurLan, relayed])
    expect(order([relayed, behindOtherNat], [net('10.233.7.0/24')])).toEqual([behindOtherNat, relayed])
  })
})
