import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { DIRECT_LAUNCHER, runStreamingCommand, type CommandLauncher } from '../src/mapreduce/streaming-command.js'
import { SANDBOX_LAUNCHER, sandboxUnavailable } from '../src/worker/command-sandbox.js'
import { BENCH_DIR, corpus, REPO_ROOT } from './corpus.js'
import { median, timeMawk } from './engine-bench.js'

const CLI = join(REPO_ROOT, 'bin', 'mrp2p.js')
const EXAMPLES = join(REPO_ROOT, 'examples', 'streaming')
const ROUNDS = Number(process.env.MRP2P_BENCH_ROUNDS ?? 3)

/**
 * The environment of the measured commands: this one without PYTHONUNBUFFERED, which some shells set and which
 * makes Python write each line with its own system call (its word-count mapper ran 3× slower here with it).
 */
function commandEnv (): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.PYTHONUNBUFFERED
  return env
}

/** Seconds of one `mrp2p run` (a fresh process, as a user runs it), output removed after. */
function timeRun (args: string[]): number {
  const out = join(BENCH_DIR, 'streaming-out')
  rmSync(out, { recursive: true, force: true })
  const t0 = performance.now()
  const child = spawnSync(process.execPath, [CLI, 'run', ...args, '--output', out, '-q'], { cwd: EXAMPLES, encoding: 'utf8', maxBuffer: 1 << 26, env: commandEnv() })
  const seconds = (performance.now() - t0) / 1000
  if (child.status !== 0) throw new Error(`mrp2p run ${args.join(' ')} failed: ${child.stderr}`)
  rmSync(out, { recursive: true, force: true })
  return seconds
}

/** Seconds of Hadoop Streaming's local test of the same scripts: `cat | mapper | sort | reducer`. */
function timePipeline (input: string): number {
  const t0 = performance.now()
  const sh = `set -o pipefail; python3 mapper.py < '${input}' | LC_ALL=C sort -s -t "$(printf '\\t')" -k1,1 | python3 reducer.py > /dev/null`
  const child = spawnSync('bash', ['-c', sh], { cwd: EXAMPLES, env: commandEnv(), stdio: ['ignore', 'ignore', 'inherit'] })
  if (child.status !== 0) throw new Error('the Python word count pipeline failed')
  return (performance.now() - t0) / 1000
}

/** Milliseconds per command start (`true`) through a launcher: what each streaming task pays to start its command. */
async function startMs (launcher: CommandLauncher, cwd: string, count: number): Promise<number> {
  const t0 = performance.now()
  for (let i = 0; i < count; i++) {
    await runStreamingCommand({ role: 'mapper', task: 'bench', command: 'true', cwd, env: {}, launcher }, async () => {}, () => {})
  }
  return (performance.now() - t0) / count
}

/** MB/s of `cat` through a launcher: bytes written to its stdin and read back from its stdout. */
async function catMBps (launcher: CommandLauncher, cwd: string, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(1 << 20, 0x61)
  let got = 0
  const t0 = performance.now()
  await runStreamingCommand({ role: 'mapper', task: 'bench', command: 'cat', cwd, env: {}, launcher }, async (stdin) => {
    for (let sent = 0; sent < bytes; sent += chunk.length) if (!await stdin.write(chunk)) return
  }, (out) => { got += out.length })
  if (got !== bytes) throw new Error(`cat gave back ${got} of ${bytes} bytes`)
  return bytes / 1e6 / ((performance.now() - t0) / 1000)
}

/**
 * Streaming jobs (docs/streaming.md), each against a baseline in this same run:
 * - the identity job (`cat` as mapper and reducer) against the same job as a module, on the same 256 MiB: what the
 *   pipes cost (target: at most 30 %);
 * - the Python word count of examples/streaming (with and without its reducer as combiner) beside the same scripts
 *   in a shell pipeline (`mapper | sort | reducer`) and `tr | mawk`, on the same 64 MiB;
 * - what the bubblewrap sandbox of a --sandbox node adds: per command start, and to a pipe's throughput.
 */
export async function runStreamingBench (): Promise<Record<string, number>> {
  const big = await corpus(256 * 2 ** 20)
  const small = await corpus(64 * 2 ** 20)
  const bigMB = statSync(big).size / 1e6
  const smallMB = statSync(small).size / 1e6
  const streaming: number[] = []
  const module: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    streaming.push(timeRun(['--mapper', 'cat', '--reducer', 'cat', '--input', big]))
    module.push(timeRun([join(REPO_ROOT, 'bench', 'identity-job.ts'), '--input', big]))
  }
  const py: number[] = []
  const pyCombined: number[] = []
  const pipeline: number[] = []
  const mawk: number[] = []
  const pyWc = ['--mapper', 'python3 mapper.py', '--reducer', 'python3 reducer.py', '--file', 'mapper.py', '--file', 'reducer.py', '--input', small]
  for (let round = 0; round < ROUNDS; round++) {
    py.push(timeRun(pyWc))
    pyCombined.push(timeRun([...pyWc, '--combiner', 'python3 reducer.py']))
    pipeline.push(timePipeline(small))
    mawk.push(timeMawk(small))
  }
  const cwd = mkdtempSync(join(BENCH_DIR, 'sandbox-'))
  const result: Record<string, number> = {
    identityMB: bigMB,
    identityStreamingSeconds: median(streaming),
    identityModuleSeconds: median(module),
    pipeCost: median(streaming) / median(module) - 1,
    wcMB: smallMB,
    pythonWcMBps: smallMB / median(py),
    pythonWcCombinerMBps: smallMB / median(pyCombined),
    pythonPipelineMBps: smallMB / median(pipeline),
    mawkMBps: smallMB / median(mawk),
    pythonWcVsPipeline: median(pipeline) / median(py),
    pythonWcVsMawk: median(mawk) / median(py),
    directStartMs: await startMs(DIRECT_LAUNCHER, cwd, 50),
    directCatMBps: await catMBps(DIRECT_LAUNCHER, cwd, 512 * 2 ** 20)
  }
  if (await sandboxUnavailable(cwd) === undefined) {
    result.sandboxStartMs = await startMs(SANDBOX_LAUNCHER, cwd, 50)
    result.sandboxCatMBps = await catMBps(SANDBOX_LAUNCHER, cwd, 512 * 2 ** 20)
  }
  rmSync(cwd, { recursive: true, force: true })
  return result
}
