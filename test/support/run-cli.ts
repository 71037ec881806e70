import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CLI = fileURLToPath(new URL('../../bin/mrp2p.js', import.meta.url))
/** ../shared/data beside the checkout: the lab's books and reference outputs (CI has it too). */
export const SHARED_DATA = fileURLToPath(new URL('../../../shared/data', import.meta.url))
/** Where the lab's reference was made from: a folder beside the books, so they are named `../pg-*.txt`. */
export const REFERENCE_CWD = join(SHARED_DATA, 'expected')
/** The eight books as the shell expands `../pg-*.txt` from REFERENCE_CWD. */
export const BOOKS = readdirSync(SHARED_DATA).filter((f) => /^pg-.*\.txt$/.test(f)).sort().map((f) => `../${f}`)

export interface CliResult { code: number | null, stdout: string, stderr: string }

/** A CLI process still running: its pid, a way to signal it, and its result once it ends. */
export interface RunningCli {
  readonly pid: number | undefined
  kill: (signal: NodeJS.Signals) => void
  readonly result: Promise<CliResult>
}

export interface CliOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  timeoutMs?: number
  /** A command the CLI runs under, e.g. bubblewrap's argv up to its `--`. */
  wrapper?: string[]
}

/** Starts the compiled CLI as a real process, the way a person would. */
export function startCli (args: string[], opts: CliOptions = {}): RunningCli {
  const argv = [...(opts.wrapper ?? []), process.execPath, CLI, ...args]
  const child = spawn(argv[0], argv.slice(1), {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const result = new Promise<CliResult>((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
  return { pid: child.pid, kill: (signal) => { child.kill(signal) }, result }
}

/** Runs the compiled CLI to its end. */
export async function runCli (args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return await startCli(args, opts).result
}
