/**
 * Small seeded PRNG (mulberry32) so a simulation replays exactly from its seed.
 * Not for anything but tests.
 */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class Prng {
  readonly next: () => number

  constructor (readonly seed: number) {
    this.next = mulberry32(seed)
  }

  /** Integer in [lo, hi], both included. */
  int (lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  float (lo: number, hi: number): number {
    return lo + this.next() * (hi - lo)
  }

  chance (p: number): boolean {
    return this.next() < p
  }

  pick<T> (items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from empty list')
    return items[Math.floor(this.next() * items.length)]
  }

  /** An independent stream, so that adding draws in one place does not shift another. */
  fork (): Prng {
    return new Prng(Math.floor(this.next() * 4294967296))
  }

  shuffle<T> (items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1))
      const x = items[i]
      items[i] = items[j]
      items[j] = x
    }
    return items
  }
}
