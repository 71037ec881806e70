import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { Job } from '../../src/mapreduce/job-api.js'
import { runMapTask, type MapTaskInput } from '../../src/mapreduce/map-task.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-map-task-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

const lines = Array.from({ length: 2000 }, (_, i) => `${String(i * 7919 % 2000).padStart(4, '0')} ${'x'.repeat(40)}`)

describe('a map task and its split\'s text', () => {
  // The split's string is a task's largest object: a task thread collects it while the spills merge (heap-collector.ts).
  it.each([
    ['without spills', 1 << 24],
    ['with spills', 4096]
  ])('lets go of it once the map function returns, then says so, before it writes its runs (%s)', async (name, memoryBytes) => {
    const events: string[] = []
    const job: Job = {
      map (_doc, contents, emit) {
        for (const line of contents.split('\n')) if (line !== '') emit(line.slice(0, 4), line.slice(5))
        events.push('map returned')
      }
    }
    const work = mkdtempSync(join(dir, 'task-'))
    const input: MapTaskInput = {
      job,
      jobName: 'lines',
      split: { document: 'in.txt', index: 0, offset: 0, firstLine: 1 },
      contents: lines.join('\n') + '\n',
      reduces: 2,
      params: {},
      outputPaths: [join(work, 'run-0'), join(work, 'run-1')],
      spillDir: work,
      options: { memoryBytes },
      onContentsDone: () => { events.push(`done, contents ${JSON.stringify(input.contents)}, runs written ${String(existsSync(input.outputPaths[0]))}`) }
    }
    const result = await runMapTask(input)
    expect(events).toEqual(['map returned', 'done, contents "", runs written false'])
    expect(existsSync(input.outputPaths[0])).toBe(true)
    expect(result.lines).toBe(lines.length)
    expect(result.emitted).toBe(lines.length)
    expect(result.spills > 0).toBe(name === 'with spills')
    expect(result.partitions.reduce((n, p) => n + p.records, 0)).toBe(lines.length)
  })
})
