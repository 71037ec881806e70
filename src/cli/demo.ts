import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
import { loadJob } from '../mapreduce/job-loader.js'
import { partFileName } from '../mapreduce/output-dir.js'
import { runSequential } from '../mapreduce/sequential.js'

const BUNDLED_TEXT = fileURLToPath(new URL('../../../examples/data/metamorphosis.txt', import.meta.url))

export function registerDemoCommand (program: Command): void {
  program
    .command('demo')
    .description('word count on a bundled book, printing the top words')
    .action(async () => {
      const reduces = 3
      const out = join(mkdtempSync(join(tmpdir(), 'mrp2p-demo-')), 'out')
      try {
        const wc = await loadJob('wc')
        const started = performance.now()
        const result = await runSequential({ job: wc.job, jobName: wc.name, inputs: [BUNDLED_TEXT], output: out, reduces })
        const counts: Array<[string, number]> = []
        for (let r = 0; r < reduces; r++) {
          for (const line of readFileSync(join(out, partFileName(r)), 'utf8').split('\n')) {
            const sp = line.lastIndexOf(' ')
            if (sp > 0) counts.push([line.slice(0, sp), Number(line.slice(sp + 1))])
          }
        }
        counts.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        console.log(`word count of ${BUNDLED_TEXT.split('/').pop() ?? ''}: ${result.keys} distinct words, ${result.maps} map task(s), ${reduces} reduce tasks, ${((performance.now() - started) / 1000).toFixed(2)} s`)
        for (const [word, n] of counts.slice(0, 10)) console.log(`${String(n).padStart(7)}  ${word}`)
      } finally {
        rmSync(dirname(out), { recursive: true, force: true })
      }
    })
}
