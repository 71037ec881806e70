import { createServer } from 'node:net'

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. The harness gives each
 * node a fixed port (rather than tcp/0) so that a restarted node comes back on
 * the address its peers already know.
 */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, host, () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

/** Distinct free ports: asking one at a time can hand the same port out twice. */
export async function freePorts (count: number, host = '127.0.0.1'): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort(host))
  return [...ports]
}
