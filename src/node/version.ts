import { readFileSync } from 'node:fs'

/**
 * The version nodes announce in heartbeats, read from package.json once so it
 * cannot drift from the release. Found by walking up from this module, which
 * works from src/ (tsx, vitest) and from dist/src/.
 */
function readVersion (): string {
  let url = new URL('.', import.meta.url)
  for (let i = 0; i < 5; i++) {
    try {
      const pkg: unknown = JSON.parse(readFileSync(new URL('package.json', url), 'utf8'))
      if (typeof pkg === 'object' && pkg !== null && (pkg as { name?: unknown }).name === 'mrp2p') {
        const v = (pkg as { version?: unknown }).version
        if (typeof v === 'string') return v
      }
    } catch {
      // not here; look one level up
    }
    url = new URL('..', url)
  }
  return '0.0.0'
}

export const MRP2P_VERSION = readVersion()
