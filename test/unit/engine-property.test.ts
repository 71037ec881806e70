import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { defaultPartition } from '../../src/mapreduce/fnv1a.js'
import type { Job } from '../../src/mapreduce/job-api.js'
import { loadJob } from '../../src/mapreduce/job-loader.js'
import { partFileName } from '../../src/mapreduce/output-dir.js'
import { runSequential } from '../../src/mapreduce/sequential.js'

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** Every line of a document, keyed by the line itself (keys with spaces, empty keys), valued by where it stands. */
const linesJob: Job = {
  map (document, contents, emit, ctx) {
    const lines = contents.split('\n')
    if (lines[lines.length - 1] === '') lines.pop()
    lines.forEach((line, i) => emit(line, `${document}:${ctx.split.firstLine + i}`))
  },
  reduce: (_key, values) => values.join(',')
}

/** What a job without a map reads (`keyValueSeparator`): every non-empty line, its key before the first separator. */
function keyValueLines (separator: string): NonNullable<Job['map']> {
  return (_document, contents, emit) => {
    for (const line of contents.split('\n')) {
      if (line === '') continue
      const at = line.indexOf(separator)
      emit(at < 0 ? line : line.slice(0, at), at < 0 ? '' : line.slice(at + 1))
    }
  }
}

/** The whole job in memory, one map call per document: what the engine must reproduce, line by line. */
function naive (job: Job, docs: Array<{ name: string, text: string }>, reduces: number): string[] {
  const groups = new Map<string, string[]>()
  for (const d of docs) {
    const ctx = { params: {}, reduces, split: { document: d.name, index: 0, offset: 0, firstLine: 1 } }
    void (job.map ?? keyValueLines(job.keyValueSeparator ?? ''))(d.name, d.text, (k, v) => { groups.set(k, [...(groups.get(k) ?? []), v]) }, ctx)
  }
  // Without a reduce, every value is its own line, in emit order (Hadoop's identity reducer).
  const reduce = job.reduce ?? ((k: string, values: string[]): string => values.join(`\n${k} `))
  return [...groups.keys()].sort(byBytes).flatMap((k) => `${k} ${reduce(k, groups.get(k) as string[], { params: {}, reduces, partition: 0 })}`.split('\n'))
}

const alphabet = fc.constantFrom('a', 'b', 'Z', ' ', ' ', '\n', '\n', 'é', 'ß', '日', '𝐀', '😀', '\uff21', '-', '1')
const doc = fc.array(alphabet, { maxLength: 400 }).map((cs) => cs.join(''))

let dir: string
let wc: Job
let run = 0
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mrp2p-engine-'))
  wc = (await loadJob('wc')).job
})

async function engine (job: Job, texts: string[], reduces: number, splitSize: number, memory: number | undefined): Promise<string[][]> {
  const base = join(dir, `case-${run++}`)
  const inputs = texts.map((text, i) => {
    const name = `doc-${i}.txt`
    writeFileSync(join(dir, `${base.split('/').pop() ?? ''}-${name}`), text)
    return `${base.split('/').pop() ?? ''}-${name}`
  })
  const output = `${base}-out`
  await runSequential({ job, jobName: 'test', inputs, output, reduces, splitSize, options: { memoryBytes: memory }, cwd: dir })
  return Array.from({ length: reduces }, (_, r) => readFileSync(join(output, partFileName(r)), 'utf8').split('\n').filter((l) => l !== ''))
}

const params = fc.record({
  texts: fc.array(doc, { minLength: 1, maxLength: 4 }),
  reduces: fc.integer({ min: 1, max: 6 }),
  splitSize: fc.integer({ min: 1, max: 300 }),
  memory: fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined })
})

describe('sequential engine against a naive in-memory run', () => {
  const linesAsThey: Job = { map: linesJob.map }
  // Read by the engine as bytes, left where they are in the split: keys before the first space, values with spaces.
  const keyValue: Job = { keyValueSeparator: ' ' }
  // …and decoded for a combiner, which may see any subset of a key's values: a bag of them, in byte order.
  const bag = (values: string[]): string => values.flatMap((v) => v.split('\u0001')).sort(byBytes).join('\u0001')
  const keyValueCombined: Job = { keyValueSeparator: ' ', combine: (_k, values) => bag(values), reduce: (_k, values) => bag(values) }
  const jobs = [
    ['wc (with combiner)', () => wc],
    ['lines (order-sensitive values, keys with spaces)', () => linesJob],
    ['lines with no reduce (records as they are)', () => linesAsThey],
    ['key-value lines with no map and no reduce', () => keyValue],
    ['key-value lines with a combiner', () => keyValueCombined]
  ] as const
  for (const [name, getJob] of jobs) {
    it(`${name}: same lines for random documents, R, split sizes and spill budgets`, async () => {
      await fc.assert(fc.asyncProperty(params, async ({ texts, reduces, splitSize, memory }) => {
        const job = getJob()
        const parts = await engine(job, texts, reduces, splitSize, memory)
        const docs = texts.map((text, i) => ({ name: `case-${run - 1}-doc-${i}.txt`, text }))
        expect(parts.flat().sort(byBytes)).toEqual(naive(job, docs, reduces).sort(byBytes))
        parts.forEach((lines, r) => {
          // each part file is sorted by key bytes and holds only its own partition's keys
          const keyOf = (l: string): string => l.slice(0, job.keyValueSeparator !== undefined ? l.indexOf(' ') : l.lastIndexOf(' '))
          const keys = lines.map(keyOf)
          expect([...keys].sort(byBytes)).toEqual(keys)
          if (job === wc) for (const k of keys) expect(defaultPartition(k, reduces)).toBe(r)
          // Records as they are: the part is the naive run's lines of its partition, equal keys in emit order.
          if (job === linesAsThey || job === keyValue) expect(lines).toEqual(naive(job, docs, reduces).filter((l) => defaultPartition(keyOf(l), reduces) === r))
        })
      }), { numRuns: 60 })
    })
  }

  it('handles empty documents and documents with no keys', async () => {
    const parts = await engine(wc, ['', '123 --- 456\n', ''], 3, 4, undefined)
    expect(parts).toEqual([[], [], []])
  })
})
