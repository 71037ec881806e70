import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleJob } from '../../src/mapreduce/job-loader.js'
import { RunReader } from '../../src/mapreduce/run-file.js'
import { TaskAbortedError, TaskPool, type Isolation } from '../../src/worker/task-pool.js'
import { permissionFlag, sandboxArgs } from '../../src/worker/task-sandbox.js'
import { parseRunnerMessage, type ThreadTask } from '../../src/worker/thread-messages.js'
import { processLogger } from '../../src/util/logger.js'
import { REPO_ROOT } from '../support/run-cli.js'


const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'jobs')
const dir = mkdtempSync(join(tmpdir(), 'mrp2p-pool-'))
const codeDir = join(dir, 'code')
mkdirSync(codeDir)
/** Stands for the node's identity key: beside the job's code, not granted to it. */
const secret = join(dir, 'peer-key')
writeFileSync(secret, 'not for job code\n')
let n = 0

async function codeFile (spec: string): Promise<string> {
  const b = await bundleJob(spec, dir)
  const file = join(codeDir, `${b.hash}.mjs`)
  writeFileSync(file, b.code)
  return file
}

const fixture = async (name: string): Promise<string> => await codeFile(join(FIXTURES, `${name}.ts`))

function mapTask (code: string, text: string, params: Record<string, string> = {}): ThreadTask & { kind: 'map' } {
  const work = join(dir, `task-${n++}`)
  mkdirSync(join(work, 'out'), { recursive: true })
  writeFileSync(join(work, 'split'), text)
  return {
    kind: 'map', codeFile: code, jobName: 'test', split: { document: 'doc.txt', index: 0, offset: 0, firstLine: 1 },
    splitFile: join(work, 'split'), reduces: 2, params, outputPaths: [join(work, 'out', 'run-0'), join(work, 'out', 'run-1')], spillDir: work, options: {},
    access: { read: [code, join(work, 'split'), work], write: [work] }
  }
}

function records (task: ThreadTask & { kind: 'map' }): string[] {
  const out: string[] = []
  for (const p of task.outputPaths) {
    const r = RunReader.open(p)
    while (r.next()) out.push(`${r.key}=${r.value}`)
    r.close()
  }
  return out.sort()
}

const MEMORY_MB = 64

for (const isolation of ['thread', 'sandbox'] as const satisfies readonly Isolation[]) {
  const runner = isolation === 'thread' ? 'thread' : 'process'

  describe(`task pool, ${isolation} mode`, () => {
    let pool: TaskPool
    let wc: string
    beforeAll(async () => {
      pool = new TaskPool({ slots: 2, memoryMb: MEMORY_MB, isolation, logger: processLogger() })
      pool.start()
      wc = await codeFile('wc')
    })
    afterAll(async () => { await pool.stop() })

    it('runs a map task and writes its runs', async () => {
      const task = mapTask(wc, 'b a b\nc\n')
      const out = await pool.run(task)
      expect(out.ok).toBe(true)
      expect(records(task)).toEqual(['a=1', 'b=2', 'c=1'])
    })

    it('runs a reduce task over runs held outside its work folder', async () => {
      const map = mapTask(wc, 'b a b\nc\n')
      expect((await pool.run(map)).ok).toBe(true)
      const work = join(dir, `task-${n++}`)
      mkdirSync(work)
      const outputPath = join(work, 'part')
      const out = await pool.run({
        kind: 'reduce', codeFile: wc, jobName: 'test', partition: 0, reduces: 2, params: {}, inputs: [map.outputPaths[0]], outputPath,
        access: { read: [wc, work, map.spillDir], write: [work] }
      })
      expect(out).toMatchObject({ ok: true, reduce: { bytes: expect.any(Number) } })
    })

    it('reports the user\'s error with their stack, and the next task runs', async () => {
      const out = await pool.run(mapTask(await fixture('throws'), 'x'))
      expect(out).toMatchObject({ ok: false, error: { userCode: true, message: 'job test: map failed on document doc.txt: this map refuses doc.txt' } })
      expect(out.ok === false && out.error.stack).toMatch(/throws\.ts:7:/)
      // Only the user's frames: none of the engine's (nor of the sandbox's wrapper around the job).
      expect(out.ok === false && out.error.stack).not.toMatch(/dist\/src|\/src\/(worker|mapreduce)\//)
      expect((await pool.run(mapTask(wc, 'ok'))).ok).toBe(true)
    })

    it('survives job code that calls process.exit', async () => {
      const out = await pool.run(mapTask(await fixture('exits'), 'x'))
      expect(out).toMatchObject({ ok: false, error: { userCode: true, message: `task code ended its ${runner} (process.exit(7))` } })
      expect((await pool.run(mapTask(wc, 'still alive'))).ok).toBe(true)
    })

    it('survives job code that allocates without bound', async () => {
      const out = await pool.run(mapTask(await fixture('hogs'), 'x'))
      expect(out).toMatchObject({ ok: false, error: { userCode: true, message: `task ran out of memory (its heap is capped at ${MEMORY_MB} MiB per task)` } })
      expect((await pool.run(mapTask(wc, 'still alive'))).ok).toBe(true)
    })

    it('survives an exception thrown from a timer of the job\'s code', async () => {
      writeFileSync(join(dir, 'later.ts'), 'export const map = () => { setTimeout(() => { throw new Error("thrown later") }, 1); return new Promise<void>(() => {}) }\nexport const reduce = () => ""\n')
      const out = await pool.run(mapTask(await codeFile('./later.ts'), 'x'))
      expect(out).toMatchObject({ ok: false, error: { userCode: true, message: `task ${runner} failed: thrown later` } })
      expect((await pool.run(mapTask(wc, 'still alive'))).ok).toBe(true)
    })

    it('ends a task that runs past its timeout, and reports it as the job\'s failure', async () => {
      const started = performance.now()
      const out = await pool.run(mapTask(await fixture('hangs'), 'x'), { timeoutMs: 500 })
      expect(out).toEqual({ ok: false, error: { userCode: true, message: 'task timed out after 0.5 s' } })
      expect(performance.now() - started).toBeGreaterThanOrEqual(490)
      expect(pool.busy).toBe(0)
      const both = await Promise.all([pool.run(mapTask(wc, 'one')), pool.run(mapTask(wc, 'two'))])
      expect(both.map((o) => o.ok)).toEqual([true, true])
    })

    it('a task asked for while every slot is busy waits for one, first come first served; an abort or stop() ends the wait', async () => {
      const own = new TaskPool({ slots: 1, memoryMb: MEMORY_MB, isolation, logger: processLogger() })
      own.start()
      try {
        const first = mapTask(wc, 'a\n')
        const second = mapTask(wc, 'b b\n')
        const order: string[] = []
        const one = own.run(first).then((o) => { order.push('first'); return o })
        const two = own.run(second).then((o) => { order.push('second'); return o })
        const ac = new AbortController()
        const gaveUp = own.run(mapTask(wc, 'c\n'), { signal: ac.signal })
        ac.abort()
        await expect(gaveUp).rejects.toBeInstanceOf(TaskAbortedError)
        expect([(await one).ok, (await two).ok]).toEqual([true, true])
        expect(order).toEqual(['first', 'second'])
        expect(records(second)).toEqual(['b=2'])
        const hang = own.run(mapTask(await fixture('hangs'), 'x'))
        const waiting = own.run(mapTask(wc, 'd\n'))
        const stopped = own.stop()
        await expect(waiting).rejects.toThrow('task pool stopped')
        await expect(hang).rejects.toThrow('task pool stopped')
        await stopped
      } finally {
        await own.stop()
      }
    })

    it('stop() ends the tasks in flight', async () => {
      const own = new TaskPool({ slots: 1, memoryMb: MEMORY_MB, isolation, logger: processLogger() })
      own.start()
      const ended = expect(own.run(mapTask(await fixture('hangs'), 'x'))).rejects.toThrow('task pool stopped')
      await own.stop()
      await ended
    })

    it('abandons a task that never ends, and replaces its runner', async () => {
      const ac = new AbortController()
      const running = pool.run(mapTask(await fixture('hangs'), 'x'), { signal: ac.signal })
      ac.abort()
      await expect(running).rejects.toBeInstanceOf(TaskAbortedError)
      expect(pool.busy).toBe(0)
      const both = await Promise.all([pool.run(mapTask(wc, 'one')), pool.run(mapTask(wc, 'two'))])
      expect(both.map((o) => o.ok)).toEqual([true, true])
    })
  })
}

describe('the sandbox keeps job code to its own files', () => {
  let sandbox: TaskPool
  let threads: TaskPool
  let escape: string
  beforeAll(async () => {
    sandbox = new TaskPool({ slots: 1, memoryMb: MEMORY_MB, isolation: 'sandbox', logger: processLogger() })
    threads = new TaskPool({ slots: 1, memoryMb: MEMORY_MB, isolation: 'thread', logger: processLogger() })
    sandbox.start()
    threads.start()
    escape = await fixture('escape')
  })
  afterAll(async () => { await Promise.all([sandbox.stop(), threads.stop()]) })

  it.each([
    ['/etc/passwd', 'read', '/etc/passwd', 'FileSystemRead'],
    ['a file beside its code (the node\'s key)', 'read', secret, 'FileSystemRead'],
    ['a folder outside its work folder', 'write', dir, 'FileSystemWrite'],
    ['a child process', 'spawn', '', 'ChildProcess']
  ])('refuses %s, naming the permission', async (_what, action, path, permission) => {
    const task = mapTask(escape, 'x', { try: action, path })
    const out = await sandbox.run(task)
    expect(out.ok).toBe(false)
    const message = out.ok ? '' : out.error.message
    expect(message).toMatch(/^job test: map failed on document doc\.txt: Access to this API has been restricted \(sandbox: permission /)
    expect(message).toContain(`permission ${permission} denied`)
    if (action === 'read') expect(message).toContain(`for ${path}`)
    expect(out.ok === false && out.error.userCode).toBe(true)
    // Not in the sandbox, the same task gets through: the test would notice a fixture that cannot escape at all.
    const free = mapTask(escape, 'x', { try: action, path })
    expect(await threads.run(free)).toMatchObject({ ok: true })
    expect(records(free)[0]).toMatch(new RegExp(`^${action}=`))
  })

  it('refuses a read at load time, and counts it against the job', async () => {
    writeFileSync(join(dir, 'loads.ts'), `import { readFileSync } from 'node:fs'\nconst key = readFileSync(${JSON.stringify(secret)}, 'utf8')\nexport const map = () => { if (key === '') throw new Error('empty') }\nexport const reduce = () => ""\n`)
    const out = await sandbox.run(mapTask(await codeFile('./loads.ts'), 'x'))
    expect(out).toMatchObject({ ok: false, error: { userCode: true } })
    expect(out.ok === false && out.error.message).toBe(`job test failed to load on this node: Access to this API has been restricted (sandbox: permission FileSystemRead denied for ${secret}; a sandboxed task may read only its job's code and input, write only its work folder, and start no process or thread)`)
  })

  it('lets it write in its own work folder and read its own input', async () => {
    const task = mapTask(escape, 'x', { try: 'write', path: '.' })
    expect(await sandbox.run(task)).toMatchObject({ ok: true })
    expect(readdirSync(task.spillDir)).toContain('escaped.txt')
  })

  it('gives a task process none of the node\'s environment', async () => {
    process.env.MRP2P_TEST_SECRET = 'leak'
    try {
      writeFileSync(join(dir, 'env.ts'), 'export const map = (_d: string, _c: string, emit: (k: string, v: string) => void) => { emit("env", String(process.env.MRP2P_TEST_SECRET)) }\nexport const reduce = () => ""\n')
      const task = mapTask(await codeFile('./env.ts'), 'x')
      expect(await sandbox.run(task)).toMatchObject({ ok: true })
      expect(records(task)).toEqual(['env=undefined'])
    } finally {
      delete process.env.MRP2P_TEST_SECRET
    }
  })
})

describe('sandbox flags and runner messages', () => {
  it('picks the permission flag by Node version', () => {
    expect(permissionFlag('20.20.2')).toBe('--experimental-permission')
    expect(permissionFlag('21.7.0')).toBe('--experimental-permission')
    expect(permissionFlag('22.0.0')).toBe('--permission')
    expect(permissionFlag('24.1.0')).toBe('--permission')
  })

  it('grants reads and writes only as asked, and nothing else', () => {
    const args = sandboxArgs({ read: ['/data/code/x.mjs', '/data/work'], write: ['/data/work'] }, 99)
    expect(args).toContain(permissionFlag())
    expect(args).toContain('--max-old-space-size=99')
    expect(args).toContain('--allow-fs-read=/data/code/x.mjs')
    expect(args.filter((a) => a.startsWith('--allow-fs-write='))).toEqual(['--allow-fs-write=/data/work'])
    expect(args.filter((a) => /^--allow-(child-process|worker|addons|wasi)/.test(a))).toEqual([])
    // The engine's own code is readable, but not the folder above it (which holds the node's data and config).
    const reads = args.filter((a) => a.startsWith('--allow-fs-read=')).map((a) => a.slice('--allow-fs-read='.length))
    expect(reads).not.toContain(REPO_ROOT.replace(/\/$/, ''))
    expect(reads.every((p) => p.startsWith('/data/') || p.includes('/dist/src/'))).toBe(true)
  })

  it('takes only well-formed replies from a runner', () => {
    expect(parseRunnerMessage({ id: 1, ok: true, map: { partitions: [{ bytes: 3, records: 1 }], emitted: 1, spills: 0 } })).toMatchObject({ id: 1, ok: true })
    expect(parseRunnerMessage({ id: 2, ok: false, error: { message: 'x', userCode: true } })).toEqual({ id: 2, ok: false, error: { message: 'x', userCode: true } })
    expect(parseRunnerMessage({ crash: true, message: 'boom' })).toEqual({ crash: true, message: 'boom', stack: undefined })
    expect(parseRunnerMessage({ id: 3, ok: true, map: { partitions: 'lots' } })).toBeUndefined()
    expect(parseRunnerMessage({ id: 4, ok: false, error: 'x' })).toBeUndefined()
    expect(parseRunnerMessage('done')).toBeUndefined()
    expect(parseRunnerMessage({ ok: true })).toBeUndefined()
  })
})
