import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import { createLogger } from '../../src/util/logger.js'
import { TASK_NICE } from '../../src/worker/task-defaults.js'
import { ThreadRunner } from '../../src/worker/task-runner.js'

/** The nice value of each thread of this process, by thread id (proc(5): the 19th field of a task's stat). */
function niceByThread (): Map<string, number> {
  const out = new Map<string, number>()
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      out.set(tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]))
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return out
}

describe('task threads step back behind the node\'s own threads', () => {
  it('a task thread runs at TASK_NICE; the threads it started beside keep their nice value', async () => {
    expect(TASK_NICE).toBeGreaterThan(0)
    const before = niceByThread()
    const runner = new ThreadRunner(64, createLogger('test'))
    try {
      const lowered = await waitFor(() => {
        const fresh = [...niceByThread()].filter(([tid, nice]) => !before.has(tid) && nice === TASK_NICE)
        return fresh.length > 0 ? fresh : undefined
      }, { timeoutMs: 10_000, intervalMs: 20, description: 'a new thread at TASK_NICE' })
      expect(lowered.length).toBeGreaterThan(0)
      const now = niceByThread()
      for (const [tid, nice] of before) if (now.has(tid)) expect(now.get(tid)).toBe(nice)
    } finally {
      await runner.kill()
    }
  })
})
