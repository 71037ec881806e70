import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { AbortOptions, PrivateKey } from '@libp2p/interface'
import { z } from 'zod'
import { errorMessage } from '../util/errors.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { CorruptKeyFileError, DataDirInUseError, DataDirNotWritableError } from './errors.js'

/**
 * Everything a node keeps across restarts lives in one directory:
 *
 *   peer-key          Ed25519 private key, protobuf, mode 0600: our PeerId
 *   election.json     highest election epoch ever observed (never goes back)
 *   node.json         PeerId + dialable addresses, written once ready (for scripts)
 *   blocked-peers.json  optional, written by operators or the test harness: peers to cut off
 *   lock              pid of the node using this dir
 */
export const KEY_FILE = 'peer-key'
export const EPOCH_FILE = 'election.json'
export const NODE_INFO_FILE = 'node.json'
export const BLOCKED_PEERS_FILE = 'blocked-peers.json'
export const LOCK_FILE = 'lock'

export function defaultDataDir (): string {
  return join(homedir(), '.mrp2p')
}

export const NodeInfoFile = z.object({
  peerId: z.string(),
  addrs: z.array(z.string()),
  pid: z.number().int(),
  startedAt: z.string(),
  ready: z.literal(true)
})
export type NodeInfoFile = z.infer<typeof NodeInfoFile>

const EpochFile = z.object({ highestEpoch: z.number().int().nonnegative() })

export interface DataDir {
  readonly path: string
  /** Create the dir if needed, prove it is writable, take the lock. */
  open: (options?: AbortOptions) => Promise<void>
  loadOrCreateKey: (options?: AbortOptions) => Promise<PrivateKey>
  readEpoch: (options?: AbortOptions) => Promise<number>
  /** Serialised and monotonic: a lower epoch than one already written is ignored. */
  writeEpoch: (epoch: number, options?: AbortOptions) => Promise<void>
  writeNodeInfo: (info: NodeInfoFile, options?: AbortOptions) => Promise<void>
  removeNodeInfo: () => Promise<void>
  /** Release the lock. */
  close: () => Promise<void>
  file: (name: string) => string
}

export function createDataDir (dir: string): DataDir {
  const path = resolve(dir)
  const file = (name: string): string => join(path, name)
  let writtenEpoch = -1
  let epochChain: Promise<void> = Promise.resolve()
  let locked = false

  const notWritable = (err: unknown): DataDirNotWritableError => {
    const code = (err as NodeJS.ErrnoException).code
    return new DataDirNotWritableError(`data dir ${path} is not writable (${code ?? errorMessage(err)})`)
  }

  return {
    path,
    file,
    async open (options = {}) {
      try {
        await mkdir(path, { recursive: true, mode: 0o700 })
        const probe = file(`.probe-${process.pid}`)
        await writeFile(probe, 'x')
        await rm(probe, { force: true })
      } catch (err) {
        throw notWritable(err)
      }
      options.signal?.throwIfAborted()
      await takeLock(file(LOCK_FILE))
      locked = true
    },

    async loadOrCreateKey (options = {}) {
      const keyPath = file(KEY_FILE)
      let bytes: Uint8Array | undefined
      try {
        bytes = await readFile(keyPath)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw notWritable(err)
      }
      if (bytes !== undefined) {
        try {
          const key = privateKeyFromProtobuf(bytes)
          // A key readable by others is a key others can impersonate us with.
          if (((await stat(keyPath)).mode & 0o077) !== 0) await chmod(keyPath, 0o600)
          return key
        } catch (err) {
          throw new CorruptKeyFileError(`key file ${keyPath} is corrupt (${errorMessage(err)}); move it away to create a new identity`)
        }
      }
      const key = await generateKeyPair('Ed25519')
      try {
        await writeFileAtomic(keyPath, privateKeyToProtobuf(key), { mode: 0o600, signal: options.signal })
      } catch (err) {
        throw notWritable(err)
      }
      return key
    },

    async readEpoch () {
      try {
        const parsed = EpochFile.safeParse(JSON.parse(await readFile(file(EPOCH_FILE), 'utf8')))
        if (parsed.success) {
          writtenEpoch = Math.max(writtenEpoch, parsed.data.highestEpoch)
          return parsed.data.highestEpoch
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(err instanceof SyntaxError)) throw notWritable(err)
      }
      // A missing or mangled file counts as 0: fencing then relies on the
      // epochs the mesh tells us about, which are at least as high.
      return 0
    },

    async writeEpoch (epoch, options = {}) {
      const run = async (): Promise<void> => {
        if (epoch <= writtenEpoch) return
        await writeFileAtomic(file(EPOCH_FILE), `${JSON.stringify({ highestEpoch: epoch })}\n`, options)
        writtenEpoch = epoch
      }
      epochChain = epochChain.then(run, run)
      await epochChain
    },

    async writeNodeInfo (info, options = {}) {
      await writeFileAtomic(file(NODE_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`, options)
    },

    async removeNodeInfo () {
      await rm(file(NODE_INFO_FILE), { force: true })
    },

    async close () {
      if (!locked) return
      locked = false
      await rm(file(LOCK_FILE), { force: true })
    }
  }
}

async function takeLock (lockPath: string): Promise<void> {
  try {
    const other = Number.parseInt(await readFile(lockPath, 'utf8'), 10)
    if (Number.isInteger(other) && other !== process.pid && isAlive(other)) {
      throw new DataDirInUseError(`data dir is in use by another node (pid ${other}); stop it or pick another --data-dir`)
    }
  } catch (err) {
    if (err instanceof DataDirInUseError) throw err
    // No lock, or an unreadable one: treat as free.
  }
  // The lock left behind by a killed node names a dead pid, so it is simply taken over.
  await writeFileAtomic(lockPath, `${process.pid}\n`)
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
