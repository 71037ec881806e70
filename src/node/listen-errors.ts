import { createServer } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { errorMessage } from '../util/errors.js'
import { ListenFailedError, ListenPortInUseError } from './errors.js'

/**
 * libp2p reports a taken port as "UnsupportedListenAddressesError" without
 * saying which port. Find the culprit by trying each fixed port ourselves, so
 * the person reads "port 4001 is already in use".
 */
export async function explainListenFailure (listen: string[], err: unknown): Promise<Error> {
  for (const addr of listen) {
    const parts = multiaddr(addr).getComponents()
    const host = parts.find(c => c.name === 'ip4' || c.name === 'ip6')?.value
    const port = Number(parts.find(c => c.name === 'tcp')?.value ?? '0')
    if (host === undefined || port === 0) continue
    if (await portInUse(host, port)) {
      return new ListenPortInUseError(`cannot listen on ${addr}: port ${port} is already in use`)
    }
  }
  return new ListenFailedError(`cannot listen on ${listen.join(', ')}: ${errorMessage(err)}`)
}

async function portInUse (host: string, port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', (e: NodeJS.ErrnoException) => { resolve(e.code === 'EADDRINUSE') })
    server.listen(port, host, () => { server.close(() => { resolve(false) }) })
  })
}
