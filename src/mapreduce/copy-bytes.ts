import type { ArenaBuffer } from './block-arena.js'

/** Below this many bytes a loop beats `Buffer.copy`, whose cost is mostly per call (it makes a view of the source). */
const LOOP_COPY_BYTES = 32

/** Copies `from[start, end)` to `to` at `at`; returns the position after it. */
export function copyBytes (from: Buffer, start: number, end: number, to: Buffer, at: number): number {
  if (end - start >= LOOP_COPY_BYTES) return at + from.copy(to, at, start, end)
  for (let i = start; i < end; i++) to[at++] = from[i]
  return at
}

/**
 * The same copy where `to` may be the arena buffer `arenaTo` and `from` lies in that arena at `fromAt` (−1: not in
 * it): then one `copyWithin` over the arena (block-arena.ts). A buffer grown for one long record is no longer the
 * arena's, and is copied to as any other.
 */
export function copyWithinArena (from: Buffer, start: number, end: number, fromAt: number, to: Buffer, at: number, arenaTo: ArenaBuffer | undefined): number {
  if (arenaTo !== undefined && fromAt >= 0 && to === arenaTo.buffer) {
    arenaTo.whole.copyWithin(arenaTo.at + at, fromAt + start, fromAt + end)
    return at + end - start
  }
  return copyBytes(from, start, end, to, at)
}
