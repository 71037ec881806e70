import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { AbortOptions, ConnectionProtector, MultiaddrConnection } from '@libp2p/interface'
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'
import xsalsa20 from 'xsalsa20'
import { UserFacingError } from '../util/errors.js'

/**
 * A private mesh (libp2p "pnet", the IPFS swarm-key format): every byte on a
 * connection is XORed with an XSalsa20 stream keyed by a pre-shared key,
 * before noise even starts, so a peer without the key cannot complete any
 * handshake, reach any protocol or read anything.
 *
 *   TCP ── pnet (pre-shared key) ── noise (peer identity) ── yamux ── protocols
 *
 * Why not @libp2p/pnet's protector: it hands whole incoming and outgoing
 * buffers to xsalsa20's WebAssembly, whose shared memory grows for a large
 * buffer from every cipher's own (stale) view of its size until it hits the
 * module's 64 MiB maximum and throws (measured in ../shared/libp2p-notes.md).
 * Here each call sees at most CHUNK bytes, so the memory never grows.
 *
 * One addition to pnet's wire format: after the nonces, each side sends a
 * known 16-byte block through its cipher and checks the other's. With pnet
 * alone a wrong key shows only as garbage to noise, which sometimes reads it
 * as a long length prefix and waits for bytes that never come (measured: 6 s
 * hangs in about a third of dials); the check makes every mismatch fail at
 * once, on both sides, with an error that says what is wrong. (So mrp2p
 * meshes do not interoperate with other pnet peers; nothing needs them to.)
 */

export class SwarmKeyError extends UserFacingError {
  static readonly NAME = 'SwarmKeyError'
  override readonly name = SwarmKeyError.NAME
  readonly exitCode = 2
}

const HEADER = '/key/swarm/psk/1.0.0/'
const KEY_BYTES = 32
const NONCE_BYTES = 24
/** Far below the cipher's initial 640 KiB of WebAssembly memory. */
const CHUNK = 64 * 1024
const KEY_CHECK = new TextEncoder().encode('mrp2p swarm key!')

/**
 * The private-network handshake failed: the peer has another key, or none. Named like libp2p's own handshake
 * failures so that callers tell it from a network error the same way (protocol/errors.ts isHandshakeRefusal).
 */
export class SwarmKeyHandshakeError extends Error {
  static readonly NAME = 'EncryptionFailedError'
  override readonly name = SwarmKeyHandshakeError.NAME
}

/** A new key in the swarm-key file format. */
export function generateSwarmKey (): string {
  return `${HEADER}\n/base16/\n${randomBytes(KEY_BYTES).toString('hex')}\n`
}

/** The 32 key bytes of a swarm-key file's text; `source` names the file in errors. */
export function parseSwarmKey (text: string, source: string): Uint8Array {
  const lines = text.split(/\r\n|\r|\n/).map((l) => l.trim())
  if (lines[0] !== HEADER) throw new SwarmKeyError(`${source} is not a swarm key: its first line must be ${HEADER}`)
  if (lines[1] !== '/base16/') throw new SwarmKeyError(`${source}: only /base16/ swarm keys are supported (second line is ${JSON.stringify(lines[1] ?? '')})`)
  const hex = lines[2] ?? ''
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new SwarmKeyError(`${source}: the key must be 64 hexadecimal digits (${KEY_BYTES} bytes) on the third line`)
  if (lines.slice(3).some((l) => l !== '')) throw new SwarmKeyError(`${source}: unexpected text after the key`)
  return Uint8Array.from(Buffer.from(hex, 'hex'))
}

export function readSwarmKey (path: string): Uint8Array {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new SwarmKeyError(`cannot read swarm key ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  return parseSwarmKey(text, path)
}

interface Cipher { update: (input: Uint8Array, output?: Uint8Array) => Uint8Array }

function xor (cipher: Cipher, data: Uint8Array): Uint8Array {
  if (data.byteLength <= CHUNK) return cipher.update(data)
  const out = new Uint8Array(data.byteLength)
  for (let at = 0; at < data.byteLength; at += CHUNK) {
    const end = Math.min(at + CHUNK, data.byteLength)
    cipher.update(data.subarray(at, end), out.subarray(at, end))
  }
  return out
}

class PrivateConnection extends AbstractMultiaddrConnection {
  private readonly inbound: Cipher
  private readonly outbound: Cipher

  constructor (private readonly inner: MultiaddrConnection, ciphers: { inbound: Cipher, outbound: Cipher }, log: MultiaddrConnection['log']) {
    super({ remoteAddr: inner.remoteAddr, direction: inner.direction, log })
    this.inbound = ciphers.inbound
    this.outbound = ciphers.outbound
    inner.addEventListener('message', (evt) => {
      const data: Uint8Array | Uint8ArrayList = evt.data
      if (data instanceof Uint8Array) this.onData(xor(this.inbound, data))
      else for (const buf of data) this.onData(xor(this.inbound, buf))
    })
    inner.addEventListener('drain', () => { this.onMuxerDrain() })
    inner.addEventListener('close', (evt) => {
      if (evt.error == null) this.onTransportClosed()
      else if (evt.local) this.abort(evt.error)
      else this.onRemoteReset()
    })
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    await this.inner.close(options)
  }

  sendData (data: Uint8ArrayList): { sentBytes: number, canSendMore: boolean } {
    return { sentBytes: data.byteLength, canSendMore: this.inner.send(xor(this.outbound, data.subarray())) }
  }

  sendReset (err: Error): void {
    this.inner.abort(err)
  }

  sendPause (): void {
    this.inner.pause()
  }

  sendResume (): void {
    this.inner.resume()
  }
}

/** libp2p's `connectionProtector` for a mesh keyed with `psk`; the nonce exchange must finish within `timeoutMs`. */
export function privateNetwork (psk: Uint8Array, timeoutMs = 2_000): () => ConnectionProtector {
  if (psk.byteLength !== KEY_BYTES) throw new SwarmKeyError(`a swarm key has ${KEY_BYTES} bytes, not ${psk.byteLength}`)
  return () => ({
    [Symbol.toStringTag]: 'mrp2p/private-network',
    async protect (connection: MultiaddrConnection, options?: AbortOptions): Promise<MultiaddrConnection> {
      const log = connection.log.newScope('pnet')
      const localNonce = Uint8Array.from(randomBytes(NONCE_BYTES))
      const outbound: Cipher = xsalsa20(localNonce, psk)
      const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(options?.signal === undefined ? [] : [options.signal])])
      const bytes = byteStream(connection)
      let inbound: Cipher
      try {
        const [remote] = await Promise.all([
          bytes.read({ bytes: NONCE_BYTES + KEY_CHECK.byteLength, signal }),
          bytes.write(concat(localNonce, outbound.update(KEY_CHECK)), { signal })
        ])
        const received = remote.subarray()
        inbound = xsalsa20(received.subarray(0, NONCE_BYTES), psk)
        const check = inbound.update(received.subarray(NONCE_BYTES))
        if (!Buffer.from(check).equals(Buffer.from(KEY_CHECK))) throw new SwarmKeyHandshakeError('the peer uses another swarm key, or none')
      } catch (err) {
        connection.abort(err instanceof Error ? err : new Error(String(err)))
        if (err instanceof SwarmKeyHandshakeError) throw err
        throw new SwarmKeyHandshakeError(`no private-network handshake from the peer: ${(err as Error).message}`, { cause: err })
      }
      return new PrivateConnection(bytes.unwrap(), { inbound, outbound }, log)
    }
  })
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a)
  out.set(b, a.byteLength)
  return out
}
