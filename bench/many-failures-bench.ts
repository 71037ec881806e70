// Issue #17's scenario with real processes, as a new user would try it: 100 maps and 50 reduces over 100,000
// numbers, one node that runs no tasks, and 16 workers that kill themselves at their 10th map call (the fixture's
// `dieAt`), a dead one started again each second (6.824's TestManyFailures). Once calm (the baseline, same mesh),
// then churning with the defaults (a second copy once workers die), then churning with `--intermediate-replicas 1`.
// Each run must give the sequential run's parts byte for byte, or the bench fails.
// `npm run bench many-failures -- --die-at 10 --deadline 300 [--keep] [--churn-only]`
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCluster, type Cluster } from '../src/harness/cluster.js'
import { Prng } from '../test/support/prng.js'
import { restartTheDead } from '../test/support/restart-the-dead.js'
import { REPO_ROOT } from './corpus.js'

const CLI = join(REPO_ROOT, 'bin', 'mrp2p.js')

/** The CLI as a process; killed past `timeoutMs`, which reads as exit null. */
async function runCli (args: string[], timeoutMs: number): Promise<{ code: number | null, stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  return { code, stderr }
}

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'churn.ts')
const NUMBERS = 100_000
const MAPS = 100
const REDUCES = '50'
const WORKERS = 16

function option (options: string[], name: string, fallback: number): number {
  const i = options.indexOf(name)
  if (i < 0) return fallback
  const v = Number(options[i + 1])
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive whole number, got ${String(options[i + 1])}`)
  return v
}

/**
 * A figure of the progress lines over the whole job: a new coordinator counts from 0 again (it rebuilds the job
 * from inventories), so each count that falls back adds what it had reached.
 */
function summed (lines: string[], re: RegExp): number {
  let total = 0
  let current = 0
  for (const l of lines) {
    const v = Number(re.exec(l)?.[1] ?? 0)
    if (v < current) total += current
    current = v
  }
  return total + current
}

interface Run { seconds: number, finished: boolean, restarts: number, lost: number, kept: number, copied: number, last: string }

export async function runManyFailuresBench (options: string[]): Promise<Record<string, number>> {
  const dieAt = option(options, '--die-at', 10)
  const deadlineS = option(options, '--deadline', 300)
  // --keep: the nodes log at info and their folders stay, to see what the coordinator did.
  const keep = options.includes('--keep')
  const only = options.includes('--churn-only')
  const scratch = mkdtempSync(join(tmpdir(), 'mrp2p-many-failures-'))
  let cluster: Cluster | undefined
  try {
    const rng = new Prng(17)
    const numbers = Array.from({ length: NUMBERS }, (_, i) => i)
    for (let i = numbers.length - 1; i > 0; i--) {
      const j = rng.int(0, i)
      ;[numbers[i], numbers[j]] = [numbers[j], numbers[i]]
    }
    const text = numbers.join('\n') + '\n'
    const input = join(scratch, 'numbers.txt')
    writeFileSync(input, text)
    // Splits end at line ends, a little past the size: this many bytes makes the issue's 100 maps.
    const splitSize = String(Math.floor(Buffer.byteLength(text) / MAPS))
    const reference = join(scratch, 'reference')
    const seq = await runCli(['run', FIXTURE, '--input', input, '--reduces', REDUCES, '--split-size', splitSize, '--output', reference, '-q'], 120_000)
    if (seq.code !== 0) throw new Error(`sequential run failed: ${seq.stderr}`)
    cluster = await startCluster({
      nodes: WORKERS + 1,
      env: { MRP2P_LOG_LEVEL: keep ? 'info' : 'warn' },
      args: (i) => i === 0 ? ['--no-worker'] : ['--slots', '1'],
      keep
    })
    if (keep) process.stderr.write(`many-failures: node logs kept in ${cluster.rootDir}\n`)
    const c = cluster
    const run = async (name: string, extra: string[], churn: boolean): Promise<Run> => {
      const out = join(scratch, name)
      const restarter = churn ? restartTheDead(c, 1_000) : undefined
      const params = churn ? ['--param', `dieAt=${dieAt}`, '--param', `callsDir=${scratch}`] : []
      const started = performance.now()
      const res = await runCli(['submit', FIXTURE, '--input', input, '--reduces', REDUCES, '--split-size', splitSize, ...params, ...extra, '--output', out, '--bootstrap', c.nodes[0].addr], deadlineS * 1_000)
      const seconds = (performance.now() - started) / 1_000
      restarter?.stop()
      const lines = res.stderr.split('\n').filter((l) => l.includes('maps '))
      const last = lines.at(-1) ?? ''
      const r: Run = { seconds, finished: res.code === 0, restarts: restarter?.restarts ?? 0, lost: summed(lines, /lost (\d+)/), kept: summed(lines, /kept by reducers (\d+)/), copied: summed(lines, /copied to a second node (\d+)/), last }
      process.stderr.write(`many-failures ${name}: ${r.finished ? 'finished' : `not finished (exit ${String(res.code)})`} in ${seconds.toFixed(1)} s, ${r.restarts} nodes restarted; ${last}\n`)
      if (r.finished) {
        const parts = readdirSync(reference).filter((f) => f.startsWith('part-')).sort()
        for (const p of parts) {
          if (!readFileSync(join(out, p)).equals(readFileSync(join(reference, p)))) throw new Error(`${name}: ${p} differs from the sequential run's`)
        }
      }
      rmSync(out, { recursive: true, force: true })
      // The next run starts on a whole mesh, each node's map calls counted from 0.
      for (const n of c.nodes) if (!n.process.running) await c.restart(n.index)
      for (const f of readdirSync(scratch)) if (f.startsWith('mrp2p-churn-calls-')) rmSync(join(scratch, f))
      return r
    }
    // --churn-only: no calm baseline (when looking into the churned runs).
    const calm = only ? undefined : await run('calm', [], false)
    if (calm !== undefined && !calm.finished) throw new Error(`the calm run did not finish: ${calm.last}`)
    const auto = await run('churn-default', [], true)
    const runs: Array<[string, Run]> = [['default', auto]]
    if (!only) runs.push(['noCopies', await run('churn-no-copies', ['--intermediate-replicas', '1'], true)])
    const figures: Record<string, number> = { dieAt }
    if (calm !== undefined) figures.calmS = calm.seconds
    for (const [name, r] of runs) {
      figures[`${name}Finished`] = r.finished ? 1 : 0
      figures[`${name}S`] = r.seconds
      if (calm !== undefined) figures[`${name}VsCalm`] = r.seconds / calm.seconds
      figures[`${name}Restarts`] = r.restarts
      figures[`${name}Lost`] = r.lost
      figures[`${name}Kept`] = r.kept
      figures[`${name}Copied`] = r.copied
    }
    return figures
  } finally {
    await cluster?.stop()
    rmSync(scratch, { recursive: true, force: true })
  }
}
