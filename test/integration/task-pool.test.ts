import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleJob } from '../../src/mapreduce/job-loader.js'
import { RunReader } from '../../src/mapreduce/run-file.js'
import { TaskAbortedError, TaskPool } from '../../src/worker/task-pool.js'
import type { ThreadTask } from '../../src/worker/thread-messages.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-pool-'))
let pool: TaskPool
let wcCode: string
let n = 0

async function codeFile (spec: string): Promise<string> {
  const b = await bundleJob(spec, dir)
  const file = join(dir, `${b.hash}.mjs`)
  writeFileSync(file, b.code)
  return file
}

function mapTask (code: string, text: string): ThreadTask & { kind: 'map' } {
  const work = join(dir, `task-${n++}`)
  mkdirSync(work)
  writeFileSync(join(work, 'split'), text)
  return {
    kind: 'map', codeFile: code, jobName: 'test', split: { document: 'doc.txt', index: 0, offset: 0, firstLine: 1 },
    splitFile: join(work, 'split'), reduces: 2, params: {}, outputPaths: [join(work, 'run-0'), join(work, 'run-1')], spillDir: work
  }
}

beforeAll(async () => {
  pool = new TaskPool({ slots: 2, resourceLimits: { maxOldGenerationSizeMb: 64 } })
  pool.start()
  wcCode = await codeFile('wc')
  writeFileSync(join(dir, 'throws.ts'), 'export const map = () => { throw new Error("map says no") }\nexport const reduce = () => ""\n')
  writeFileSync(join(dir, 'exits.ts'), 'export const map = () => { process.exit(3) }\nexport const reduce = () => ""\n')
  writeFileSync(join(dir, 'hogs.ts'), 'export const map = () => { const a: string[][] = []; for (;;) a.push(new Array(1e6).fill("x")) }\nexport const reduce = () => ""\n')
  writeFileSync(join(dir, 'hangs.ts'), 'export const map = () => { for (;;) {} }\nexport const reduce = () => ""\n')
})
afterAll(async () => { await pool.stop() })

describe('task pool', () => {
  it('runs a map task on a thread and writes its runs', async () => {
    const task = mapTask(wcCode, 'b a b\nc\n')
    const out = await pool.run(task)
    expect(out.ok).toBe(true)
    const records: string[] = []
    for (const p of task.outputPaths) {
      const r = RunReader.open(p)
      while (r.next()) records.push(`${r.key}=${r.value}`)
      r.close()
    }
    expect(records.sort()).toEqual(['a=1', 'b=2', 'c=1'])
  })

  it('reports the user\'s error with their stack, and the thread serves the next task', async () => {
    const out = await pool.run(mapTask(await codeFile('./throws.ts'), 'x'))
    expect(out).toMatchObject({ ok: false, error: { userCode: true, message: 'job test: map failed on document doc.txt: map says no' } })
    expect(out.ok === false && out.error.stack).toMatch(/throws\.ts:1:/)
    expect((await pool.run(mapTask(wcCode, 'ok'))).ok).toBe(true)
  })

  it('survives job code that calls process.exit', async () => {
    const out = await pool.run(mapTask(await codeFile('./exits.ts'), 'x'))
    expect(out).toMatchObject({ ok: false, error: { userCode: true, message: 'task code ended its thread (process.exit(3))' } })
    expect((await pool.run(mapTask(wcCode, 'still alive'))).ok).toBe(true)
  })

  it('survives job code that allocates without bound', async () => {
    const out = await pool.run(mapTask(await codeFile('./hogs.ts'), 'x'))
    expect(out).toMatchObject({ ok: false, error: { userCode: true, message: 'task ran out of memory (its heap is capped per task)' } })
    expect((await pool.run(mapTask(wcCode, 'still alive'))).ok).toBe(true)
  })

  it('abandons a task that never ends, and replaces its thread', async () => {
    const ac = new AbortController()
    const running = pool.run(mapTask(await codeFile('./hangs.ts'), 'x'), { signal: ac.signal })
    ac.abort()
    await expect(running).rejects.toBeInstanceOf(TaskAbortedError)
    expect(pool.busy).toBe(0)
    const both = await Promise.all([pool.run(mapTask(wcCode, 'one')), pool.run(mapTask(wcCode, 'two'))])
    expect(both.map((o) => o.ok)).toEqual([true, true])
  })
})
