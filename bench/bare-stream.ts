import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createClientLibp2p } from '../src/node/client-libp2p.js'
import { writeFrame } from '../src/protocol/bulk.js'

/**
 * MB/s of `bytes` raw bytes over one libp2p stream (TCP + noise + yamux, as the nodes use), loopback, in this
 * process: the ceiling any of our transfers over the same stack is compared with.
 */
export async function bareStreamMBps (bytes: number): Promise<number> {
  const protocol = '/mrp2p-bench/raw/1.0.0'
  const server = await createClientLibp2p({ version: 'bench', listen: ['/ip4/127.0.0.1/tcp/0'] })
  const client = await createClientLibp2p({ version: 'bench' })
  await server.start()
  await client.start()
  try {
    let received = 0
    let finished: () => void = () => {}
    const allIn = new Promise<void>((resolve) => { finished = resolve })
    await server.handle(protocol, (stream: Stream) => {
      stream.addEventListener('message', (evt) => {
        received += evt.data.byteLength
        if (received >= bytes) finished()
      })
    })
    const stream = await client.dialProtocol(multiaddr(server.getMultiaddrs()[0].toString()), protocol)
    const chunk = Buffer.alloc(256 * 1024, 0x61)
    const t0 = performance.now()
    for (let sent = 0; sent < bytes; sent += chunk.length) await writeFrame(stream, chunk)
    await allIn
    const seconds = (performance.now() - t0) / 1000
    await stream.close().catch(() => {})
    return bytes / 1e6 / seconds
  } finally {
    await client.stop()
    await server.stop()
  }
}
