import { errorMessage, UserFacingError } from '../util/errors.js'
/**
 * One class per failure of a request/response exchange, told apart by `.name`
 * (js-libp2p and lodestar's reqresp do the same), so a caller can retry a dial
 * timeout but give up on a remote that answers garbage.
 */
export class ProtocolError extends Error {
  static readonly NAME: string = 'ProtocolError'
  override name = ProtocolError.NAME
}

/** No connection or stream could be opened within the dial timeout. */
export class DialTimeoutError extends ProtocolError {
  static override readonly NAME = 'DialTimeoutError'
  override name = DialTimeoutError.NAME
}

/** The dial failed for another reason (refused, blocked, protocol unsupported). */
export class DialFailedError extends ProtocolError {
  static override readonly NAME = 'DialFailedError'
  override name = DialFailedError.NAME
}

/** Writing the request did not finish within the request timeout (remote does not read). */
export class RequestTimeoutError extends ProtocolError {
  static override readonly NAME = 'RequestTimeoutError'
  override name = RequestTimeoutError.NAME
}

/** The remote sent nothing at all within the first-byte timeout after the request. */
export class FirstByteTimeoutError extends ProtocolError {
  static override readonly NAME = 'FirstByteTimeoutError'
  override name = FirstByteTimeoutError.NAME
}

/** The remote started answering but the whole response did not arrive in time. */
export class ResponseTimeoutError extends ProtocolError {
  static override readonly NAME = 'ResponseTimeoutError'
  override name = ResponseTimeoutError.NAME
}

/** A frame broke the framing rules: bad length prefix, over the size limit, truncated. */
export class InvalidFrameError extends ProtocolError {
  static override readonly NAME = 'InvalidFrameError'
  override name = InvalidFrameError.NAME
}

/** A frame was well formed but its body is not JSON or fails the message schema. */
export class InvalidMessageError extends ProtocolError {
  static override readonly NAME = 'InvalidMessageError'
  override name = InvalidMessageError.NAME
}

/** The stream ended where a message was expected. */
export class StreamEndedError extends ProtocolError {
  static override readonly NAME = 'StreamEndedError'
  override name = StreamEndedError.NAME
}

/** The remote handled the request and answered with an error of its own. */
export class RemoteError extends ProtocolError {
  static override readonly NAME = 'RemoteError'
  override name = RemoteError.NAME
  constructor (readonly remoteName: string, message: string) {
    super(`remote ${remoteName}: ${message}`)
  }
}

/** A peer refused our handshake: one side of the connection has a swarm key the other does not share. */
export class SwarmKeyMismatchError extends UserFacingError {
  static readonly NAME = 'SwarmKeyMismatchError'
  override readonly name = SwarmKeyMismatchError.NAME
  readonly exitCode = 1
}

/** Whether a dial failed in the encrypted handshake (what a missing or different swarm key looks like), not on the network. */
export function isHandshakeRefusal (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  if (err.name === 'EncryptionFailedError') return true
  if (err instanceof AggregateError && err.errors.some(isHandshakeRefusal)) return true
  return isHandshakeRefusal(err.cause)
}

export function swarmKeyMismatch (target: string, haveKey: boolean): SwarmKeyMismatchError {
  return new SwarmKeyMismatchError(haveKey
    ? `${target} refused the connection handshake: this swarm key is not the one the mesh uses`
    : `${target} refused the connection handshake: the mesh is private; pass its key with --swarm-key FILE (or MRP2P_SWARM_KEY)`)
}

/**
 * Why a stream could not be opened, in words: a peer that does not speak the protocol (at this version) is
 * named as such, since that is a different version of mrp2p or not mrp2p at all, and retrying will not help.
 */
export function dialFailure (protocol: string, err: unknown): DialFailedError {
  const unsupported = err instanceof Error && err.name === 'UnsupportedProtocolError'
  const why = unsupported ? `the peer does not speak ${protocol} (another mrp2p version, or not an mrp2p node)` : errorMessage(err)
  return new DialFailedError(`could not open ${protocol}: ${why}`, { cause: err })
}
