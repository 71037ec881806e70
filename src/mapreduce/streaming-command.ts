import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync } from 'node:fs'
import { StreamingCommandError } from '../util/errors.js'

/** Which of a streaming job's commands runs: it names the command in every error. */
export type StreamingRole = 'mapper' | 'reducer' | 'combiner'

/**
 * How a command is started. The default runs `/bin/sh -c` as a child of this process; a `--sandbox` node wraps it
 * in bubblewrap (worker/command-sandbox.ts). `env` is the whole environment the command gets, before the task's
 * own variables are added.
 */
export interface CommandLauncher {
  argv: (command: string, cwd: string) => string[]
  env: (cwd: string) => Record<string, string>
}

// setpriv (util-linux) sets the parent-death signal: a command outlives neither the node nor the task thread that
// started it, when either is killed. Looked for on first use, not at load: a sandboxed task process (which loads
// this module with the rest of the engine) may not even look at /usr/bin.
const SETPRIV = '/usr/bin/setpriv'
let pdeathsig: string[] | undefined

/** The command as a child of this process, with this process's environment (as Hadoop's task runs with its node's). */
export const DIRECT_LAUNCHER: CommandLauncher = {
  argv: (command) => {
    pdeathsig ??= existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'SIGKILL', '--'] : []
    return [...pdeathsig, '/bin/sh', '-c', command]
  },
  env: () => {
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v
    return env
  }
}

export interface StreamingCommandOptions {
  role: StreamingRole
  command: string
  /** The task's name in errors: `map 3`, `reduce 0`. */
  task: string
  /** Its working folder, where the job's `--file`s are. */
  cwd: string
  /** The task's variables (Hadoop's names, mrp2p's, `--cmdenv`), over the launcher's environment. */
  env: Readonly<Record<string, string>>
  launcher?: CommandLauncher
  /** Where its stderr goes as it comes (the attempt's log); default this process's stderr. */
  onStderr?: (chunk: Buffer) => void
  /** Where it runs, for errors: ` on node 12D3…`. */
  where?: string
}

/** What `feed` writes to the command's stdin with. */
export interface CommandInput {
  /** Resolves once the pipe takes more; false once the command has closed its stdin (it stopped reading: no error). */
  write: (chunk: Buffer) => Promise<boolean>
}

/** The last bytes of a command's stderr kept for its error message; the whole of it goes to the log. */
const STDERR_TAIL_BYTES = 8 * 1024
const STDERR_TAIL_LINES = 10

function tailLines (tail: Buffer): string[] {
  const lines = tail.toString('utf8').split('\n').map((l) => l.trimEnd()).filter((l) => l !== '')
  return lines.slice(-STDERR_TAIL_LINES)
}

/**
 * Runs one command of a streaming job to its end: `feed` writes its stdin (then it is closed), `onStdout` takes its
 * stdout chunk by chunk. Both ways are paced by the pipes: `feed` waits while the command does not read, and the
 * command blocks on a full stdout while `onStdout` works, so neither side buffers more than a pipe's worth.
 * Resolves when the command exited 0; a command that exits 0 without reading all its input is no error (Hadoop's
 * TestUnconsumedInput). Anything else throws a StreamingCommandError naming the task, the command, the exit code or
 * signal and the last lines of its stderr.
 */
export async function runStreamingCommand (
  opts: StreamingCommandOptions,
  feed: (input: CommandInput) => Promise<void>,
  onStdout: (chunk: Buffer) => void
): Promise<void> {
  const launcher = opts.launcher ?? DIRECT_LAUNCHER
  const argv = launcher.argv(opts.command, opts.cwd)
  const where = opts.where ?? ''
  const quoted = JSON.stringify(opts.command)
  const child: ChildProcessWithoutNullStreams = spawn(argv[0], argv.slice(1), {
    cwd: opts.cwd,
    env: { ...launcher.env(opts.cwd), ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group: ending the task ends whatever the command started.
    detached: true
  })
  let tail = Buffer.alloc(0)
  let failed: unknown
  let stdinOpen = true
  const killGroup = (): void => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    try { process.kill(-child.pid, 'SIGKILL') } catch { /* already gone */ }
  }
  const fail = (err: unknown): void => {
    failed ??= err
    killGroup()
  }

  child.stderr.on('data', (chunk: Buffer) => {
    tail = tail.length + chunk.length > STDERR_TAIL_BYTES
      ? Buffer.concat([tail, chunk]).subarray(-STDERR_TAIL_BYTES)
      : Buffer.concat([tail, chunk])
    if (opts.onStderr !== undefined) opts.onStderr(chunk)
    else process.stderr.write(chunk)
  })
  child.stdout.on('data', (chunk: Buffer) => {
    if (failed !== undefined) return
    try {
      onStdout(chunk)
    } catch (err) {
      fail(err)
    }
  })
  // EPIPE: the command closed its input, which it may (a `head`, a mapper that needs only the first lines).
  child.stdin.on('error', () => { stdinOpen = false })
  child.stdin.on('close', () => { stdinOpen = false })

  const closed = new Promise<{ code: number | null, signal: NodeJS.Signals | null, spawnError?: Error }>((resolve) => {
    let spawnError: Error | undefined
    child.on('error', (err) => { spawnError = err })
    child.on('close', (code, signal) => { resolve({ code, signal, spawnError }) })
  })

  const input: CommandInput = {
    write: async (chunk) => {
      if (!stdinOpen || failed !== undefined) return false
      if (child.stdin.write(chunk)) return true
      await new Promise<void>((resolve) => {
        const done = (): void => {
          child.stdin.off('drain', done)
          child.stdin.off('close', done)
          resolve()
        }
        child.stdin.on('drain', done)
        child.stdin.on('close', done)
      })
      return stdinOpen && failed === undefined
    }
  }
  try {
    await feed(input)
  } catch (err) {
    fail(err)
  }
  if (stdinOpen) child.stdin.end()

  const { code, signal, spawnError } = await closed
  if (failed !== undefined) throw failed
  if (spawnError !== undefined) {
    throw new StreamingCommandError(`${opts.task}: ${opts.role} could not be started${where}: ${spawnError.message}`, true)
  }
  if (code === 0) return
  const stderr = tailLines(tail)
  const said = stderr.length === 0 ? ' (its stderr was empty)' : `; the last lines of its stderr:\n${stderr.map((l) => `  ${l}`).join('\n')}`
  const lastLine = stderr.at(-1) ?? quoted
  // 127 and 126 are the shell's "not found" and "not executable": the command never ran its job.
  if (code === 127) throw new StreamingCommandError(`${opts.role} command not found${where}: ${lastLine}`, true)
  if (code === 126) throw new StreamingCommandError(`${opts.role} command cannot be run${where} (not executable): ${lastLine}`, true)
  const how = signal !== null ? `was killed by ${signal}` : `exited with code ${String(code)}`
  throw new StreamingCommandError(`${opts.task}: ${opts.role} ${quoted} ${how}${where}${said}`, false)
}
