import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { loadJob, type LoadedJob } from '../../src/mapreduce/job-loader.js'
import { SUCCESS_FILE } from '../../src/mapreduce/output-dir.js'
import { runSequential } from '../../src/mapreduce/sequential.js'
import { sortedOutput } from '../support/output.js'
import { BOOKS, REFERENCE_CWD, runCli, SHARED_DATA } from '../support/run-cli.js'

/** As the lab produced its reference: from a folder beside the books, inputs given as ../pg-*.txt. */

describe('mrp2p run equals MIT 6.824 mrsequential on the eight books', () => {
  const jobs: Record<string, LoadedJob> = {}
  const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-reference-'))
  beforeAll(async () => {
    expect(BOOKS).toHaveLength(8)
    jobs.wc = await loadJob('wc')
    jobs.indexer = await loadJob('indexer')
  })

  for (const name of ['wc', 'indexer']) {
    for (const reduces of [1, 3, 10]) {
      // 100 kB cuts every book (the smallest is 139 kB) into several splits.
      for (const splitSize of [undefined, 100_000]) {
        it(`${name}, R=${reduces}, ${splitSize === undefined ? 'one split per book' : 'every book cut into splits'}`, async () => {
          const output = join(scratch, `${name}-${reduces}-${splitSize ?? 'whole'}`)
          const job = jobs[name]
          const result = await runSequential({ job: job.job, jobName: job.name, inputs: BOOKS, output, reduces, splitSize, cwd: REFERENCE_CWD })
          if (splitSize !== undefined) expect(result.maps).toBeGreaterThan(BOOKS.length * 2)
          expect(readdirSync(output).sort()).toEqual([SUCCESS_FILE, ...Array.from({ length: reduces }, (_, r) => `part-${String(r).padStart(5, '0')}`)].sort())
          expect(sortedOutput(output).equals(readFileSync(join(SHARED_DATA, 'expected', `${name}.txt`)))).toBe(true)
        })
      }
    }
  }

  it('through the CLI, as a person runs it', async () => {
    const output = join(scratch, 'cli-wc')
    const res = await runCli(['run', 'wc', '--input', ...BOOKS, '--reduces', '3', '--output', output], { cwd: REFERENCE_CWD })
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/^wc: 8 maps, 3 reduces, 22107 keys/)
    expect(sortedOutput(output).equals(readFileSync(join(SHARED_DATA, 'expected', 'wc.txt')))).toBe(true)
  })
})
