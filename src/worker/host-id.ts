import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'

/**
 * This host as a hash of its name and, on Linux, its boot id: nodes in containers of one machine differ by name
 * (and cannot link each other's files either), two machines of one name differ by boot id. The coordinator only
 * compares them (coordinator-service.ts, `rawRuns`); the name itself is not sent.
 */
export function hostId (): string {
  let boot = ''
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    // not Linux: the name alone
  }
  return createHash('sha256').update(`${hostname()}\0${boot}`).digest('hex').slice(0, 32)
}
