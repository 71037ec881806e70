import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from 'libp2p'
import { createClientLibp2p } from '../node/client-libp2p.js'
import { MRP2P_VERSION } from '../node/version.js'
import { queryInfo, type InfoResponse } from '../protocol/info.js'
import type { RequestTimeouts } from '../protocol/reqresp.js'

/**
 * The harness's eyes: an in-process libp2p client that asks nodes for their
 * view over /mrp2p/info. It listens nowhere and runs no gossip, so nodes never
 * count it as a member and it cannot carry traffic across a partition.
 * A frozen node cannot answer; the short timeouts turn that into `undefined`
 * quickly instead of stalling a sampling loop.
 */
export interface Probe {
  /** The probe's own PeerId: it shows in the nodes' connection lists. */
  readonly peerId: string
  /** The probe's libp2p client, for tests that speak a protocol to a node themselves. */
  readonly client: Libp2p
  info: (addr: string, timeouts?: Partial<RequestTimeouts>) => Promise<InfoResponse>
  /** The answer, or undefined if the node did not answer in time. */
  tryInfo: (addr: string, timeouts?: Partial<RequestTimeouts>) => Promise<InfoResponse | undefined>
  stop: () => Promise<void>
}

export const PROBE_TIMEOUTS: RequestTimeouts = { dialMs: 1_500, requestMs: 800, firstByteMs: 1_000, responseMs: 1_000 }

export async function createProbe (options: { swarmKey?: Uint8Array } = {}): Promise<Probe> {
  const client: Libp2p = await createClientLibp2p({ version: MRP2P_VERSION, swarmKey: options.swarmKey })
  const info = async (addr: string, timeouts?: Partial<RequestTimeouts>): Promise<InfoResponse> =>
    await queryInfo(client, multiaddr(addr), { timeouts: { ...PROBE_TIMEOUTS, ...timeouts } })
  return {
    peerId: client.peerId.toString(),
    client,
    info,
    async tryInfo (addr, timeouts) {
      try {
        return await info(addr, timeouts)
      } catch {
        return undefined
      }
    },
    async stop () {
      await client.stop()
    }
  }
}
