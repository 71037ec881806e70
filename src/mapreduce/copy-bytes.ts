/** Below this many bytes a loop beats `Buffer.copy`, whose cost is mostly per call (it makes a view of the source). */
const LOOP_COPY_BYTES = 32

/** Copies `from[start, end)` to `to` at `at`; returns the position after it. */
export function copyBytes (from: Buffer, start: number, end: number, to: Buffer, at: number): number {
  if (end - start >= LOOP_COPY_BYTES) return at + from.copy(to, at, start, end)
  for (let i = start; i < end; i++) to[at++] = from[i]
  return at
}
