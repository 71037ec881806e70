/** A buffer taken from an arena: the arena's whole view, the buffer, and where it starts in the whole. */
export interface ArenaBuffer { whole: Uint8Array, buffer: Buffer, at: number }

/** Buffers made with {@link withRoom}: only their room may be written past their end. */
const roomy = new WeakSet<ArrayBufferLike>()

/** A buffer of `length` bytes with `room` more after it in the same ArrayBuffer, for {@link roomAfter}. */
export function withRoom (length: number, room: number): Buffer {
  const whole = Buffer.allocUnsafeSlow(length + room)
  roomy.add(whole.buffer)
  return whole.subarray(0, length)
}

/**
 * The room past the end of a buffer made by {@link withRoom} (a split, splits.ts) as an arena buffer of `bytes`;
 * undefined when there is not that much, or when `source` is any other buffer: what follows a view of someone
 * else's memory is not ours to write.
 */
export function roomAfter (source: Buffer, bytes: number): ArenaBuffer | undefined {
  const at = source.byteOffset + source.length
  if (!roomy.has(source.buffer) || source.buffer.byteLength - at < bytes) return undefined
  return { whole: new Uint8Array(source.buffer), buffer: Buffer.from(source.buffer, at, bytes), at }
}

/**
 * Buffers of one task carved from one ArrayBuffer: the blocks a reduce reads its runs into and the chunk it writes
 * its part through. A record is then copied from one to the other by `copyWithin` over the whole, at offsets its
 * holders know: 28 ns for a 100-byte record against 88 for `Buffer.copy`, which makes a view of its source per call
 * (a third of the sort's reduce). Asking a Buffer for its `buffer` and `byteOffset` per record cost more than that
 * saved. Memory an arena holds but nothing wrote is never resident (a large ArrayBuffer is mapped zero pages), so
 * it is sized for the most its buffers could need.
 */
export class BlockArena {
  /** The whole arena: what copies within it go through. */
  readonly whole: Uint8Array
  private next = 0

  constructor (bytes: number) {
    this.whole = new Uint8Array(bytes)
  }

  /** The next `bytes` of the arena and where they start in it; a buffer of its own (at −1) once it is used up. */
  take (bytes: number): ArenaBuffer {
    if (this.next + bytes > this.whole.length) return { whole: this.whole, buffer: Buffer.allocUnsafe(bytes), at: -1 }
    const at = this.next
    this.next += bytes
    return { whole: this.whole, buffer: Buffer.from(this.whole.buffer, this.whole.byteOffset + at, bytes), at }
  }
}
