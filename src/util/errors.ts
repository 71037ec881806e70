/**
 * Errors a person can cause or fix: bad flags, missing files, a job module that
 * does not load, a job whose own code throws. The CLI prints `.message` on one
 * line and exits with `.exitCode`, never a stack trace. Each condition has its
 * own class told apart by `.name`, as in js-libp2p.
 */
export abstract class UserFacingError extends Error {
  readonly userFacing = true
  /** 2: the command line was wrong; 1: the work failed. */
  abstract readonly exitCode: number
}

export class InvalidArgumentError extends UserFacingError {
  static readonly NAME = 'InvalidArgumentError'
  override readonly name = InvalidArgumentError.NAME
  readonly exitCode = 2
}

export class InputError extends UserFacingError {
  static readonly NAME = 'InputError'
  override readonly name = InputError.NAME
  readonly exitCode = 2
}

export class OutputExistsError extends UserFacingError {
  static readonly NAME = 'OutputExistsError'
  override readonly name = OutputExistsError.NAME
  readonly exitCode = 2
}

export class JobLoadError extends UserFacingError {
  static readonly NAME = 'JobLoadError'
  override readonly name = JobLoadError.NAME
  readonly exitCode = 2
}

/** The job's own map/reduce/combine/partition threw. `userStack` is its stack, trimmed to the user's frames. */
export class UserCodeError extends UserFacingError {
  static readonly NAME: string = 'UserCodeError'
  // Widened to string: subclasses (a job that failed on the mesh) carry their own name.
  override readonly name: string = UserCodeError.NAME
  readonly exitCode = 1
  constructor (message: string, readonly userStack: string | undefined) {
    super(message)
  }
}

/**
 * A streaming job's command (`--mapper`, `--reducer`, `--combiner`) failed: it exited non-zero, was killed, or
 * could not be started. `setup` is true when it never ran its job (not found, not executable, refused by the
 * node): the node cannot run this job, which says nothing of the job's data, so the scheduler tries another node
 * instead of counting an attempt (docs/streaming.md).
 */
export class StreamingCommandError extends UserCodeError {
  static override readonly NAME = 'StreamingCommandError'
  override readonly name = StreamingCommandError.NAME
  constructor (message: string, readonly setup: boolean) {
    super(message, undefined)
  }
}

export function isUserFacingError (err: unknown): err is UserFacingError {
  return err instanceof Error && (err as Partial<UserFacingError>).userFacing === true
}

/** A message for anything thrown, including the non-Error values libp2p streams reject with. */
export function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message
  if (typeof err === 'object' && err !== null && 'type' in err) return `event ${String((err as { type: unknown }).type)}`
  return String(err)
}
