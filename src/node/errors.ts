import { UserFacingError } from '../util/errors.js'

/** The data dir cannot be created or written (permissions, a file in the way, read-only fs). */
export class DataDirNotWritableError extends UserFacingError {
  static readonly NAME = 'DataDirNotWritableError'
  override readonly name = DataDirNotWritableError.NAME
  readonly exitCode = 1
}

/** Another live process already runs a node from this data dir (it would share our PeerId). */
export class DataDirInUseError extends UserFacingError {
  static readonly NAME = 'DataDirInUseError'
  override readonly name = DataDirInUseError.NAME
  readonly exitCode = 1
}

/** The stored private key cannot be read back; regenerating it would silently change our PeerId. */
export class CorruptKeyFileError extends UserFacingError {
  static readonly NAME = 'CorruptKeyFileError'
  override readonly name = CorruptKeyFileError.NAME
  readonly exitCode = 1
}

/** A listen address's port is taken by another process. */
export class ListenPortInUseError extends UserFacingError {
  static readonly NAME = 'ListenPortInUseError'
  override readonly name = ListenPortInUseError.NAME
  readonly exitCode = 1
}

/** libp2p could not listen on an address for a reason other than a taken port. */
export class ListenFailedError extends UserFacingError {
  static readonly NAME = 'ListenFailedError'
  override readonly name = ListenFailedError.NAME
  readonly exitCode = 1
}

/** A method that needs a started node was called before start() or after stop(). */
export class NodeNotStartedError extends Error {
  static readonly NAME = 'NodeNotStartedError'
  override readonly name = NodeNotStartedError.NAME
}
