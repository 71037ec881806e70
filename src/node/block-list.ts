import { readFile, stat } from 'node:fs/promises'
import { z } from 'zod'
import type { Logger } from '../util/logger.js'
import { errorMessage } from '../util/errors.js'

/**
 * The set of peers this node refuses to talk to, read from a JSON file that an
 * operator or the test harness writes (tmp + rename):
 *
 *   { "blocked": ["12D3KooW…", …] }
 *
 * It is how the harness cuts real processes apart on one machine without
 * iptables: the connection gater consults it on every dial and every inbound
 * handshake, and a change closes the connections that are now forbidden.
 * The file is polled (stat every pollMs), which survives atomic replacement
 * where fs.watch on the file would lose track of the inode.
 */
const BlockFile = z.object({ blocked: z.array(z.string().min(1).max(200)).max(10_000) })

export interface BlockList {
  has: (peerId: string) => boolean
  list: () => string[]
  /** Called with the new set after each change that took effect. */
  onChange: (listener: (blocked: ReadonlySet<string>) => void) => void
  start: () => Promise<void>
  stop: () => void
}

export interface BlockListInit {
  file: string
  pollMs?: number
  log: Logger
}

export function createBlockList (init: BlockListInit): BlockList {
  const pollMs = init.pollMs ?? 200
  let blocked: ReadonlySet<string> = new Set()
  let lastStamp = ''
  let timer: NodeJS.Timeout | undefined
  let polling = false
  const listeners: Array<(blocked: ReadonlySet<string>) => void> = []

  const poll = async (): Promise<void> => {
    if (polling) return
    polling = true
    try {
      let stamp: string
      try {
        const s = await stat(init.file)
        stamp = `${s.ino}:${s.mtimeMs}:${s.size}`
      } catch {
        stamp = 'absent'
      }
      if (stamp === lastStamp) return
      lastStamp = stamp
      let next: ReadonlySet<string>
      if (stamp === 'absent') {
        next = new Set()
      } else {
        try {
          next = new Set(BlockFile.parse(JSON.parse(await readFile(init.file, 'utf8'))).blocked)
        } catch (err) {
          // Keep the previous set: half a policy is worse than the old one.
          init.log.warn({ file: init.file, err: errorMessage(err) }, 'ignoring unreadable block list')
          return
        }
      }
      if (sameSet(next, blocked)) return
      blocked = next
      init.log.info({ blocked: [...blocked] }, 'block list changed')
      for (const l of listeners) l(blocked)
    } finally {
      polling = false
    }
  }

  return {
    has: (peerId) => blocked.has(peerId),
    list: () => [...blocked],
    onChange: (l) => { listeners.push(l) },
    async start () {
      await poll()
      timer = setInterval(() => { void poll() }, pollMs)
      timer.unref()
    },
    stop () {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
    }
  }
}

function sameSet (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false
  for (const x of a) if (!b.has(x)) return false
  return true
}
