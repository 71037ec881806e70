import { execFileSync, spawnSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BENCH_DIR, corpus } from './corpus.js'

const CHILD = fileURLToPath(new URL('./engine-child.js', import.meta.url))
const CORPUS_BYTES = 256 * 2 ** 20
const ROUNDS = 3

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

function timeShell (script: string): number {
  const t0 = performance.now()
  execFileSync('bash', ['-c', `set -o pipefail; ${script}`], { env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'ignore', 'inherit'] })
  return (performance.now() - t0) / 1000
}

/** Seconds of the coreutils word count over `input`: the baseline every benchmark compares with. */
export function timeCoreutils (input: string): number {
  return timeShell(`tr -cs A-Za-z '\\n' < '${input}' | sort | uniq -c > /dev/null`)
}

/** Seconds of the tr | mawk word count over `input`. */
export function timeMawk (input: string): number {
  return timeShell(`tr -cs A-Za-z '\\n' < '${input}' | mawk '{ c[$0]++ } END { for (w in c) print w, c[w] }' > /dev/null`)
}

/** `mrp2p run <job>` in a fresh process: the engine's own seconds and the process's peak RSS. */
export function timeEngine (job: string, input: string): { seconds: number, maxRssMiB: number } {
  const child = spawnSync(process.execPath, [CHILD, job, input, join(BENCH_DIR, 'engine-out')], { encoding: 'utf8' })
  if (child.status !== 0) throw new Error(`engine run failed: ${child.stderr}`)
  return JSON.parse(child.stdout) as { seconds: number, maxRssMiB: number }
}

export interface EngineBenchResult extends Record<string, number> {
  corpusMB: number
  mrp2pMBps: number
  coreutilsMBps: number
  mawkMBps: number
  ratioVsCoreutils: number
  ratioVsMawk: number
  peakRssMiB: number
}

/** Word count on ≥ 256 MiB: `mrp2p run wc` against two shell pipelines, each the median of three rounds in this same run. */
export async function runEngineBench (): Promise<EngineBenchResult> {
  const input = await corpus(CORPUS_BYTES)
  const mb = statSync(input).size / 1e6
  const mine: number[] = []
  const rss: number[] = []
  const coreutils: number[] = []
  const mawk: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const r = timeEngine('wc', input)
    mine.push(r.seconds)
    rss.push(r.maxRssMiB)
    coreutils.push(timeCoreutils(input))
    mawk.push(timeMawk(input))
  }
  const mrp2pMBps = mb / median(mine)
  const coreutilsMBps = mb / median(coreutils)
  const mawkMBps = mb / median(mawk)
  return {
    corpusMB: mb,
    mrp2pMBps,
    coreutilsMBps,
    mawkMBps,
    ratioVsCoreutils: mrp2pMBps / coreutilsMBps,
    ratioVsMawk: mrp2pMBps / mawkMBps,
    peakRssMiB: Math.max(...rss)
  }
}
