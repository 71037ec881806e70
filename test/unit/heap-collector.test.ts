import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import { heapCollector, heldBytes } from '../../src/worker/heap-collector.js'

describe('the collection between tasks', () => {
  // What a map task leaves: its split decoded into a string nothing refers to any more. UTF-8 text becomes a string
  // in the heap; a streaming map's Latin-1 one is external memory.
  it.each(['utf8', 'latin1'] as const)('frees the large strings a task left behind (%s) once the heap holds at least the threshold', async (encoding) => {
    const collect = heapCollector(32 * 2 ** 20)
    let split: string[] | undefined = Array.from({ length: 96 }, (_, i) => Buffer.alloc(2 ** 20, 0x61 + (i % 26)).toString(encoding))
    expect(split).toHaveLength(96)
    split = undefined
    const before = heldBytes()
    expect(before).toBeGreaterThan(96 * 2 ** 20)
    collect()
    await waitFor(() => heldBytes() < before - 64 * 2 ** 20 ? true : undefined, { timeoutMs: 5_000, intervalMs: 10, description: 'the dead split collected' })
  })
})
