import type { AbortOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isLoopbackAddr } from '../util/loopback.js'
import { withPeerId } from '../util/peer-addr.js'
import { createClientLibp2p } from './client-libp2p.js'

/**
 * The addresses of the first node of this mesh that answers on the LAN by mDNS (`submit`/`status --mdns`), each
 * ending in /p2p/<PeerId>, addresses off loopback first; resolves to [] when none answered before `signal` aborts.
 * The asking libp2p is thrown away: the caller dials with its own.
 */
export async function findMeshOnLan (options: AbortOptions & { swarmKey?: Uint8Array, version: string }): Promise<Multiaddr[]> {
  const node = await createClientLibp2p({ version: options.version, swarmKey: options.swarmKey, lan: true })
  try {
    return await new Promise<Multiaddr[]>((resolve) => {
      const done = (addrs: Multiaddr[]): void => {
        node.removeEventListener('peer:discovery', onPeer)
        options.signal?.removeEventListener('abort', onAbort)
        resolve(addrs)
      }
      const onPeer = (evt: CustomEvent<{ id: { toString: () => string }, multiaddrs: Multiaddr[] }>): void => {
        const id = evt.detail.id.toString()
        const addrs = evt.detail.multiaddrs.filter((a) => a.getComponents().some((c) => c.name === 'tcp'))
        if (addrs.length === 0) return
        const withId = addrs.map((a) => withPeerId(a, id))
        done([...withId.filter((a) => !isLoopbackAddr(a)), ...withId.filter((a) => isLoopbackAddr(a))])
      }
      const onAbort = (): void => { done([]) }
      node.addEventListener('peer:discovery', onPeer)
      if (options.signal?.aborted === true) onAbort()
      else options.signal?.addEventListener('abort', onAbort, { once: true })
    })
  } finally {
    await Promise.resolve(node.stop()).catch(() => {})
  }
}
