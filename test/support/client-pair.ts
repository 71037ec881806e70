import { afterAll, beforeAll } from 'vitest'
import { createClientLibp2p } from '../../src/node/client-libp2p.js'

type Node = Awaited<ReturnType<typeof createClientLibp2p>>

/**
 * Two libp2p nodes of the stack the mesh uses (TCP, noise, yamux) in this process, started before the file's tests
 * and stopped after: `server` listens on loopback, `client` dials it.
 */
export function useClientPair (): { server: () => Node, client: () => Node } {
  let server: Node | undefined
  let client: Node | undefined
  beforeAll(async () => {
    server = await createClientLibp2p({ version: 'test', listen: ['/ip4/127.0.0.1/tcp/0'] })
    client = await createClientLibp2p({ version: 'test' })
    await server.start()
    await client.start()
  })
  afterAll(async () => {
    await client?.stop()
    await server?.stop()
  })
  const started = (node: Node | undefined): Node => {
    if (node === undefined) throw new Error('useClientPair: the pair is not started yet')
    return node
  }
  return { server: () => started(server), client: () => started(client) }
}
