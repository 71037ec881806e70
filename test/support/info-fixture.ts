import type { InfoResponse } from '../../src/protocol/info.js'

/** A node's info answer with every required field set (a follower of epoch 3, no members), `over` on top. */
export function infoFixture (peerId: string, over: Partial<InfoResponse> = {}): InfoResponse {
  return {
    peerId,
    addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${peerId}`],
    version: '0.1.0',
    worker: true,
    slots: 2,
    connections: [],
    blocked: [],
    role: 'follower',
    isCoordinator: false,
    epoch: 3,
    highestEpoch: 3,
    coordinator: '12D3KooWOther',
    leaseValid: true,
    leaseAgeMs: 120,
    leaseRemainingMs: 2880,
    members: [],
    uptimeMs: 1000,
    ...over
  }
}
