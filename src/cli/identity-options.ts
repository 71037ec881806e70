import { readFileSync, writeFileSync } from 'node:fs'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { envValue, nonBlank, type Env } from '../util/env.js'
import { InvalidArgumentError } from '../util/errors.js'

// Submitter identities (docs/security.md, "Signed jobs"): the key a submitter signs its jobs with, and the list of
// identities a node lets submit. Both are files a person handles, so every error names the file and the line.

const IDENTITY_HEADER = '# mrp2p submitter identity (Ed25519 private key, libp2p protobuf, base64). Keep it secret.'

/** Writes a new identity to `path` (owner-only, never over an existing file); returns its PeerId. */
export async function writeIdentityFile (path: string): Promise<string> {
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key).toString()
  const text = `${IDENTITY_HEADER}\n# public name (put it in the nodes' --submitters file): ${id}\n${Buffer.from(privateKeyToProtobuf(key)).toString('base64')}\n`
  try {
    writeFileSync(path, text, { flag: 'wx', mode: 0o600 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new InvalidArgumentError(code === 'EEXIST'
      ? `--identity ${path} already exists; not overwriting an identity (remove it first if you mean to)`
      : `cannot write --identity ${path}: ${code ?? (err as Error).message}`)
  }
  return id
}

/** The identity in `path`, checked. */
export function readIdentityFile (path: string, source = '--identity'): PrivateKey {
  const lines = readText(path, source).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  if (lines.length !== 1 || !/^[A-Za-z0-9+/]+={0,2}$/.test(lines[0])) {
    throw new InvalidArgumentError(`${source} ${path} is not an mrp2p identity (make one with: mrp2p keygen --identity FILE)`)
  }
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(Buffer.from(lines[0], 'base64'))
  } catch {
    throw new InvalidArgumentError(`${source} ${path} is not an mrp2p identity: its key does not decode (make one with: mrp2p keygen --identity FILE)`)
  }
  if (key.type !== 'Ed25519') throw new InvalidArgumentError(`${source} ${path} holds an ${key.type} key; a submitter identity is Ed25519 (mrp2p keygen --identity FILE)`)
  return key
}

/** `--identity FILE`, else the file named by MRP2P_IDENTITY, else none (the submitter signs with a fresh key). */
export function resolveIdentity (flag: string | undefined, env: Env = process.env): PrivateKey | undefined {
  const fromFlag = nonBlank(flag)
  if (fromFlag !== undefined) return readIdentityFile(fromFlag)
  const fromEnv = envValue(env, 'MRP2P_IDENTITY')
  return fromEnv === undefined ? undefined : readIdentityFile(fromEnv, 'MRP2P_IDENTITY')
}

/**
 * The identities in a `--submitters` file: one PeerId a line, `#` starts a comment. An empty list is refused:
 * a node that lets nobody submit is more likely a mistake than a wish (run it with --no-worker instead).
 */
export function readSubmittersFile (path: string, source = '--submitters'): ReadonlySet<string> {
  const allowed = new Set<string>()
  const lines = readText(path, source).split('\n')
  lines.forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim()
    if (line === '') return
    let ok = false
    try {
      ok = peerIdFromString(line).type === 'Ed25519'
    } catch {}
    if (!ok) throw new InvalidArgumentError(`${source} ${path} line ${i + 1}: "${line.slice(0, 80)}" is not an identity's PeerId (12D3Koo…; mrp2p keygen --identity prints it)`)
    allowed.add(line)
  })
  if (allowed.size === 0) throw new InvalidArgumentError(`${source} ${path} names no identity; list one PeerId a line (mrp2p keygen --identity prints it)`)
  return allowed
}

/** `--submitters FILE`, else the file named by MRP2P_SUBMITTERS, else none (any member may submit). */
export function resolveSubmitters (flag: string | undefined, env: Env = process.env): ReadonlySet<string> | undefined {
  const fromFlag = nonBlank(flag)
  if (fromFlag !== undefined) return readSubmittersFile(fromFlag)
  const fromEnv = envValue(env, 'MRP2P_SUBMITTERS')
  return fromEnv === undefined ? undefined : readSubmittersFile(fromEnv, 'MRP2P_SUBMITTERS')
}

function readText (path: string, source: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${source} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}
