import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { RunReader } from '../../src/mapreduce/run-file.js'
import { createTaskRuntime } from '../../src/worker/task-runtime.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-task-runtime-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

const keyValueJob = join(dir, 'key-value.mjs')
writeFileSync(keyValueJob, 'export default { keyValueSeparator: " " }\n')
const mapJob = join(dir, 'lines.mjs')
writeFileSync(mapJob, 'export default { map (_d, text, emit) { for (const l of text.split("\\n")) if (l !== "") emit(l, "") } }\n')

function records (path: string): string[] {
  const reader = RunReader.open(path)
  const out: string[] = []
  try {
    while (reader.next()) out.push(`${reader.key}|${reader.value}`)
  } finally {
    reader.close()
  }
  return out
}

describe('a task runtime running maps one after another', () => {
  it('reads each key-value split into the last one\'s buffer and sees only that split, whatever the sizes', async () => {
    const runtime = createTaskRuntime()
    // Large, then small (read into the large one's buffer), then a map function's split, then larger again.
    const splits: Array<[string, string[]]> = [
      [keyValueJob, Array.from({ length: 3000 }, (_, i) => `k${String(i % 977).padStart(4, '0')} v${i}`)],
      [keyValueJob, ['b 2', 'a 1']],
      [mapJob, ['z', 'y']],
      [keyValueJob, ['c 3']],
      [keyValueJob, Array.from({ length: 5000 }, (_, i) => `q${i} ${'x'.repeat(i % 200)}`)]
    ]
    for (const [i, [codeFile, lines]] of splits.entries()) {
      const splitFile = join(dir, `split-${i}`)
      writeFileSync(splitFile, lines.join('\n') + '\n')
      const run = join(dir, `run-${i}`)
      const done = await runtime.run({
        kind: 'map',
        codeFile,
        jobName: 'test',
        split: { document: 'in.txt', index: i, offset: 0, firstLine: 1 },
        splitFile,
        reduces: 1,
        params: {},
        outputPaths: [run],
        spillDir: dir,
        options: {},
        access: { read: [dir], write: [dir] }
      })
      expect(done.ok).toBe(true)
      const want = lines.map((l) => l.includes(' ') ? `${l.slice(0, l.indexOf(' '))}|${l.slice(l.indexOf(' ') + 1)}` : `${l}|`)
        .map((r, j) => ({ r, j })).sort((a, b) => Buffer.compare(Buffer.from(a.r.split('|')[0]), Buffer.from(b.r.split('|')[0])) || a.j - b.j).map(({ r }) => r)
      expect(records(run)).toEqual(want)
    }
    runtime.dropSpare()
  })
})
