import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Job } from '../../src/mapreduce/job-api.js'
import { ArraySource, forEachGroup, KWayMerge } from '../../src/mapreduce/merge.js'
import { mergeDown, removeRuns } from '../../src/mapreduce/merge-passes.js'
import { runReduceTask } from '../../src/mapreduce/reduce-task.js'
import { RunReader, RunWriter } from '../../src/mapreduce/run-file.js'

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

function groups (sources: Array<Array<[string, string]>>): Array<[string, string[]]> {
  const out: Array<[string, string[]]> = []
  forEachGroup(new KWayMerge(sources.map((s) => new ArraySource(s))), (k, v) => out.push([k, v]))
  return out
}

describe('k-way merge', () => {
  it('groups every key once, in byte order, values in source order then emit order (stable)', () => {
    const key = fc.constantFrom('', 'a', 'a b', 'b', 'é', '日本', '𝐀', '\uff21', 'z z', 'ß')
    const source = fc.array(fc.tuple(key, fc.string({ maxLength: 3 })), { maxLength: 20 })
      .map((recs) => recs.map(([k], i): [string, string] => [k, `${i}`]).sort((x, y) => byBytes(x[0], y[0]) || Number(x[1]) - Number(y[1])))
    fc.assert(fc.property(fc.array(source, { maxLength: 6 }), (sources) => {
      const expected = new Map<string, string[]>()
      sources.forEach((recs, s) => { for (const [k, v] of recs) expected.set(k, [...(expected.get(k) ?? []), `${s}:${v}`]) })
      const tagged = sources.map((recs, s) => recs.map(([k, v]): [string, string] => [k, `${s}:${v}`]))
      const got = groups(tagged)
      expect(got.map(([k]) => k)).toEqual([...expected.keys()].sort(byBytes))
      for (const [k, values] of got) expect(values).toEqual(expected.get(k))
    }), { numRuns: 500 })
  })

  it('handles no sources, empty sources and a single record', () => {
    expect(groups([])).toEqual([])
    expect(groups([[], [], []])).toEqual([])
    expect(groups([[], [['only', '1']], []])).toEqual([['only', ['1']]])
  })

  it('keeps keys with spaces and non-ASCII keys apart and in byte order', () => {
    expect(groups([[['a b', '1'], ['é', '2']], [['a', '3'], ['a b', '4'], ['𝐀', '5']], [['\uff21', '6']]]))
      .toEqual([['a', ['3']], ['a b', ['1', '4']], ['é', ['2']], ['\uff21', ['6']], ['𝐀', ['5']]])
  })
})

describe('merge passes (a bounded fan-in)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mrp2p-merge-passes-'))
  let n = 0

  function writeRun (records: Array<[string, string]>): string {
    const path = join(dir, `run-${n++}`)
    const w = RunWriter.create(path, { blockBytes: 64 })
    for (const [k, v] of records) w.add(k, v)
    w.close()
    return path
  }

  function readMerged (paths: readonly string[]): Array<[string, string]> {
    const readers = paths.map((p) => RunReader.open(p))
    const out: Array<[string, string]> = []
    try {
      const m = new KWayMerge(readers)
      while (m.next()) out.push([m.key, m.value])
    } finally {
      for (const r of readers) r.close()
    }
    return out
  }

  it('merge down to at most the fan-in and give the records of one merge of all, equal keys in run order', () => {
    // Keys that tie on their first four bytes, are shorter than four, or hold NULs: the merge compares those as numbers first.
    const key = fc.constantFrom('a', 'ab', 'b', 'c', 'é', 'z', '\uff21', '𝐀', '', 'abcd', 'abcde', 'abcd\u0000', 'abc', 'ab\u0000', '\u0000', 'ééx', 'ééy')
    const run = fc.array(key, { maxLength: 12 }).map((keys) => [...keys].sort(byBytes))
    fc.assert(fc.property(fc.array(run, { maxLength: 14 }), fc.integer({ min: 2, max: 5 }), (runs, fanIn) => {
      const paths = runs.map((keys, r) => writeRun(keys.map((k, i): [string, string] => [k, `${r}.${i}`])))
      const merged = mergeDown(paths, (i) => join(dir, `merged-${n}-${i}`), fanIn)
      try {
        expect(merged.paths.length).toBeLessThanOrEqual(fanIn)
        expect(merged.temporary.length).toBe(paths.length <= fanIn ? 0 : Math.ceil((paths.length - fanIn) / (fanIn - 1)))
        expect(readMerged(merged.paths)).toEqual(readMerged(paths))
      } finally {
        removeRuns(merged.temporary)
        n++
      }
      for (const t of merged.temporary) expect(existsSync(t)).toBe(false)
    }), { numRuns: 200 })
  })

  it('a reduce over more runs than its fan-in writes the same part, and leaves no run of its own behind', () => {
    const job = { name: 'cat', map: () => {}, reduce: (_k: string, values: string[]) => values.join(',') }
    const paths = Array.from({ length: 9 }, (_, r) => writeRun([['k', `${r}`], [`m${r % 3}`, `${r}`], ['z', `${r}`]]))
    const reduce = (mergeFanIn: number | undefined, out: string): string => {
      runReduceTask({ job, jobName: 'cat', partition: 0, reduces: 1, params: {}, inputs: paths, outputPath: join(dir, out), mergeFanIn })
      return readFileSync(join(dir, out), 'utf8')
    }
    const once = reduce(undefined, 'part-once')
    expect(once).toBe('k 0,1,2,3,4,5,6,7,8\nm0 0,3,6\nm1 1,4,7\nm2 2,5,8\nz 0,1,2,3,4,5,6,7,8\n')
    expect(reduce(2, 'part-passes')).toBe(once)
    expect(readdirSync(dir).filter((f) => f.includes('.merge-'))).toEqual([])
  })

  it('a job without a reduce writes every record as its own line, as a reduce that joins them by lines would', () => {
    const key = fc.constantFrom('a', 'a b', 'abcd', 'abcde', 'abcd\u0000', 'abc', '', 'é', '𝐀', '\uff21', '\u0000')
    // Values of up to 127 bytes have a 1-byte length where the line's space goes; longer ones are copied apart.
    const value = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('v'.repeat(120), 'w'.repeat(130), 'é'.repeat(70))).map((v) => v.replaceAll('\n', ''))
    const run = fc.array(fc.tuple(key, value), { maxLength: 15 })
      .map((recs) => [...recs].sort((x, y) => byBytes(x[0], y[0])))
    fc.assert(fc.property(fc.array(run, { maxLength: 8 }), fc.boolean(), fc.integer({ min: 2, max: 6 }), (runs, valuesOnly, mergeFanIn) => {
      const paths = runs.map((recs, r) => writeRun(recs.map(([k, v], i): [string, string] => [k, `${r}.${i}${v}`])))
      const part = (job: Job, out: string): string => {
        runReduceTask({ job, jobName: 'lines', partition: 0, reduces: 1, params: {}, inputs: paths, outputPath: join(dir, out), mergeFanIn })
        return readFileSync(join(dir, out), 'utf8')
      }
      const joined = part({ map: () => {}, valuesOnly, reduce: (k, values) => values.join(valuesOnly ? '\n' : `\n${k} `) }, `part-joined-${n}`)
      expect(part({ map: () => {}, valuesOnly }, `part-as-they-are-${n++}`)).toBe(joined)
    }), { numRuns: 200 })
  })

  it('refuses a fan-in under 2', () => {
    expect(() => mergeDown([], () => 'x', 1)).toThrow(RangeError)
  })
})
