import type { BlockRef } from '../protocol/dataset-messages.js'

/** One copy a put owes: block `block` of the file at `path` (recorded as `recorded`) onto node `to`. */
export interface PutCopy { block: BlockRef, path: string, recorded: string, to: string }

export interface PutSendsDeps {
  /** Whether node `to` holds `cid` already (then the copy is skipped). */
  holds: (to: string, cid: string, signal: AbortSignal) => Promise<boolean>
  /** Sends the copy; resolves once the node has checked and kept it. */
  send: (copy: PutCopy, signal: AbortSignal) => Promise<void>
  /** Copies in flight at once. */
  concurrency: number
  /** Called after each copy is sent or skipped, with the bytes done so far. */
  onCopied?: (doneBytes: number) => void
}

/**
 * The copies of a put, sent while it is still cutting: blocks are added as they are cut, each copy goes out as
 * soon as one of `concurrency` places is free, and a block added twice (two files with the same bytes) is sent
 * once. The first failure stops the rest; {@link done} throws it.
 */
export class PutSends {
  sentBytes = 0
  skippedBytes = 0
  private doneBytes = 0
  private readonly queue: PutCopy[] = []
  private readonly added = new Set<string>()
  private running = 0
  private failure: Error | undefined
  private readonly controller = new AbortController()
  private wake: (() => void) | undefined

  constructor (private readonly deps: PutSendsDeps, signal: AbortSignal, private readonly describe: (copy: PutCopy, err: unknown) => Error) {
    if (signal.aborted) this.controller.abort(signal.reason)
    else signal.addEventListener('abort', () => { this.fail(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }, { once: true })
  }

  /** Owes a copy of `block` on each of `holders`, unless the block was added before. */
  add (block: BlockRef, file: { path: string, recorded: string }, holders: readonly string[]): void {
    this.throwIfFailed()
    if (this.added.has(block.cid)) {
      this.doneBytes += block.bytes * holders.length
      this.deps.onCopied?.(this.doneBytes)
      return
    }
    this.added.add(block.cid)
    for (const to of holders) this.queue.push({ block, path: file.path, recorded: file.recorded, to })
    this.pump()
  }

  /** Stops every copy: the put failed for `reason` (a file changed while it was cut, say). */
  abort (reason: Error): void {
    this.fail(reason)
  }

  /** Throws the first failure, if a copy failed. */
  throwIfFailed (): void {
    if (this.failure !== undefined) throw this.failure
  }

  /** Resolves once every copy added is sent or skipped; throws the first failure. */
  async done (): Promise<void> {
    while (this.failure === undefined && (this.running > 0 || this.queue.length > 0)) {
      await new Promise<void>((resolve) => { this.wake = resolve })
    }
    this.throwIfFailed()
  }

  private pump (): void {
    while (this.running < this.deps.concurrency && this.queue.length > 0) {
      const copy = this.queue.shift() as PutCopy
      this.running++
      void this.copy(copy).finally(() => {
        this.running--
        this.pump()
        this.notify()
      })
    }
  }

  private async copy (copy: PutCopy): Promise<void> {
    const signal = this.controller.signal
    try {
      if (await this.deps.holds(copy.to, copy.block.cid, signal)) this.skippedBytes += copy.block.bytes
      else {
        await this.deps.send(copy, signal)
        this.sentBytes += copy.block.bytes
      }
      this.doneBytes += copy.block.bytes
      this.deps.onCopied?.(this.doneBytes)
    } catch (err) {
      this.fail(signal.aborted && this.failure !== undefined ? this.failure : this.describe(copy, err))
    }
  }

  private fail (err: Error): void {
    if (this.failure !== undefined) return
    this.failure = err
    this.queue.length = 0
    this.controller.abort(err)
    this.notify()
  }

  private notify (): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }
}
