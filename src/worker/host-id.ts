import { createHash } from 'node:crypto'
import { readFileSync, readlinkSync } from 'node:fs'
import { hostname } from 'node:os'

/**
 * Where this node runs, as a hash: its host's name and, on Linux, boot id and mount namespace, and its user. Nodes that
 * hash alike can link each other's files: two machines of one name differ by boot id, containers of one machine by
 * mount namespace (even those sharing the host's network and name), two users by uid. The coordinator only compares
 * them (coordinator-service.ts, `rawRuns`); the name itself is not sent.
 */
export function hostId (): string {
  const part = (read: () => string): string => {
    try {
      return read().trim()
    } catch {
      return '' // not Linux: the name and user alone
    }
  }
  const boot = part(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'))
  const mounts = part(() => readlinkSync('/proc/self/ns/mnt'))
  const user = process.getuid?.() ?? ''
  return createHash('sha256').update(`${hostname()}\0${boot}\0${mounts}\0${user}`).digest('hex').slice(0, 32)
}
