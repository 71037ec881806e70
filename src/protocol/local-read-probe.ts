import { createHmac, randomBytes } from 'node:crypto'
import { closeSync, constants, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, isAbsolute, join } from 'node:path'

/**
 * The proof that two peers share a host and a user (docs/jobs.md, "Where a map reads its input").
 * The worker writes a random nonce into a file only its own user can read, in the host's temp folder, and asks
 * the submitter for its content. A peer on another host cannot read it; nor can a local process of another
 * user, which might name a file it may not read itself. Only files named like a probe are ever read for a peer.
 */
const PROBE_DIR_PREFIX = 'mrp2p-probe-'
const PROBE_FILE = 'nonce'
const PROBE_DIR = new RegExp(`^${PROBE_DIR_PREFIX}[A-Za-z0-9]{6}$`)
const NONCE = /^[0-9a-f]{64}$/

export interface Probe {
  path: string
  nonce: string
  /** Deletes the probe's folder. */
  remove: () => void
}

/** A new probe under the temp folder: a folder of mode 0700 holding the nonce in a file of mode 0600. */
export function writeProbe (root = tmpdir()): Probe {
  const dir = mkdtempSync(join(root, PROBE_DIR_PREFIX))
  const nonce = randomBytes(32).toString('hex')
  const path = join(dir, PROBE_FILE)
  writeFileSync(path, nonce, { mode: 0o600, flag: 'wx' })
  return { path, nonce, remove: () => { rmSync(dir, { recursive: true, force: true }) } }
}

/** The nonce in the probe at `path`, or undefined: not a probe's name, not readable here, or not a nonce. */
export function readProbe (path: string): string | undefined {
  if (!isAbsolute(path) || basename(path) !== PROBE_FILE || !PROBE_DIR.test(basename(dirname(path)))) return undefined
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined
    const buf = Buffer.alloc(65)
    const n = readSync(fd, buf, 0, buf.length, 0)
    const text = buf.subarray(0, n).toString('latin1')
    return NONCE.test(text) ? text : undefined
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

/**
 * What a peer that read a probe answers with when the answer goes back to someone else than the probe's writer could
 * check alone: the nonce, keyed over who answers, who asked and what about. Only a reader of the probe can make it,
 * and it proves nothing for any other pair of peers or question: a node that answered a remote asker did not give it
 * something to replay to the probe's writer.
 */
export function probeProof (nonce: string, answerer: string, asker: string, about: string): string {
  return createHmac('sha256', nonce).update(`mrp2p probe\0${answerer}\0${asker}\0${about}`).digest('hex')
}

/** What a probe proof is about, one subject per question: a proof answers that question alone. */
export const probeSubject = {
  localRead: (req: { jobId: string, index: number }): string => `local-read ${req.jobId} ${req.index}`,
  localRun: (req: { jobId: string, mapIndex: number, partition: number }): string => `local-run ${req.jobId} ${req.mapIndex} ${req.partition}`,
  localCommit: (req: { jobId: string, partition: number }): string => `local-commit ${req.jobId} ${req.partition}`
}
