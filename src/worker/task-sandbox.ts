import { fork, type ChildProcess } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import type { Logger } from '../util/logger.js'
import { compiledEntry, type RunnerListener, type RunnerLoss, type TaskRunner } from './task-runner.js'
import { parseRunnerMessage, type TaskAccess, type TaskRequest } from './thread-messages.js'
import { TASK_YOUNG_GENERATION_MB } from './task-defaults.js'

/** Node 20 and 21 call the permission model experimental; from 22 on the flag is `--permission`. */
export function permissionFlag (nodeVersion = process.versions.node): string {
  const major = Number.parseInt(nodeVersion.split('.')[0] ?? '0', 10)
  return major >= 22 ? '--permission' : '--experimental-permission'
}

const ENTRY = compiledEntry('task-process')
/** The compiled engine a task process loads (its entry and what that imports): read-only, holds nothing secret. */
const ENGINE_DIRS = ['worker', 'mapreduce', 'util'].map((d) => resolve(dirname(ENTRY), '..', d))

/** Environment variables a task process keeps: what can change a job's output (locale, time zone), nothing else. */
const KEPT_ENV = /^(TZ|LANG|LANGUAGE|LC_[A-Z]+)$/

/**
 * The node flags of one sandboxed attempt: the permission model on, reads
 * limited to the engine's code plus `access.read`, writes to `access.write`;
 * no --allow-child-process, --allow-worker, --allow-addons or --allow-wasi,
 * so those are refused. The heap cap replaces a thread's resourceLimits.
 */
export function sandboxArgs (access: TaskAccess, memoryMb: number): string[] {
  // Three semi-spaces make the young generation, as in a task thread's resourceLimits.
  const args = [permissionFlag(), `--max-old-space-size=${memoryMb}`, `--max-semi-space-size=${Math.max(1, Math.round(TASK_YOUNG_GENERATION_MB / 3))}`]
  // Every sandboxed start would print "Permission is an experimental feature" into the node's log.
  if (process.allowedNodeEnvironmentFlags.has('--disable-warning')) args.push('--disable-warning=ExperimentalWarning')
  for (const path of [...ENGINE_DIRS, ...access.read]) args.push(`--allow-fs-read=${resolve(path)}`)
  for (const path of access.write) args.push(`--allow-fs-write=${resolve(path)}`)
  return args
}

function sandboxEnv (): NodeJS.ProcessEnv {
  // Job code must not see the node's environment (NODE_OPTIONS could undo the sandbox; other variables may hold secrets).
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => KEPT_ENV.test(k)))
}

/** V8's last words when a heap cap is hit; the process then aborts (SIGABRT). */
const OOM_MARKER = /Reached heap limit|JavaScript heap out of memory/
/** What is kept of a task process's stdout and stderr, for the log when it fails. */
const OUTPUT_TAIL = 4096

function lastLine (text: string): string {
  return text.trim().split('\n').filter((l) => l.trim() !== '').pop() ?? 'no output'
}

/**
 * One sandboxed attempt: a child process of the node (`--sandbox`), started
 * for this attempt only, since its permissions name this attempt's folders.
 * Talks to the node over the IPC channel, with the messages a thread uses.
 */
export class ProcessRunner implements TaskRunner {
  readonly kind = 'process'
  readonly reusable = false
  private child: ChildProcess | undefined
  private closed: Promise<void> = Promise.resolve()
  private listener: RunnerListener | undefined
  private ended = false
  private outOfMemory = false
  /** Whether the engine loaded in the sandbox: an end before that is ours or the machine's, never the job's. */
  private ready = false
  private output = ''

  constructor (private readonly memoryMb: number, private readonly log: Logger) {}

  get alive (): boolean {
    return !this.ended
  }

  start (request: TaskRequest, listener: RunnerListener): void {
    if (this.child !== undefined) throw new Error('a sandboxed task process runs one attempt only')
    const { access } = request.task
    this.listener = listener
    const child = fork(ENTRY, [], {
      execArgv: sandboxArgs(access, this.memoryMb),
      // Relative paths of the job's code then land in the only folder it may write.
      cwd: access.write[0],
      env: sandboxEnv(),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced'
    })
    this.child = child
    const keep = (chunk: Buffer): void => {
      const text = this.output + chunk.toString('utf8')
      if (OOM_MARKER.test(text)) this.outOfMemory = true
      this.output = text.slice(-OUTPUT_TAIL)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.on('message', (raw: unknown) => {
      const msg = parseRunnerMessage(raw)
      if (msg === undefined) {
        this.log.warn({ childPid: child.pid }, 'a task process sent a message that is not a reply; ignored')
      } else if ('ready' in msg) {
        this.ready = true
        // Sent only now: a message that reached the process before its entry module had loaded could go unheard.
        child.send(request, (err) => {
          if (err !== null) this.lose({ kind: 'unavailable', message: `task process did not take its task: ${err.message}` })
        })
      } else if ('crash' in msg) {
        this.lose({ kind: 'crash', message: msg.message, stack: msg.stack })
      } else if ('log' in msg) {
        if (msg.id === request.id && !this.ended) listener.output?.(msg.log, msg.cut)
      } else if (msg.id === request.id && !this.ended) {
        this.ended = true
        this.listener = undefined
        listener.reply(msg)
      }
    })
    let spawned = false
    child.once('spawn', () => { spawned = true })
    this.closed = new Promise((resolve) => {
      child.once('close', () => { resolve() })
      child.once('error', () => { if (!spawned) resolve() })
    })
    child.on('error', (err) => {
      // Once it runs, 'close' tells how it ended; before that, it never ran the job's code at all.
      if (spawned) this.log.warn({ childPid: child.pid, err: err.message }, 'task process error')
      else this.lose({ kind: 'unavailable', message: `cannot start a task process: ${err.message}` })
    })
    // 'close', not 'exit': by then all of its stderr is in, V8's out-of-memory report included.
    child.on('close', (code, signal) => {
      if (!this.ready) this.lose({ kind: 'unavailable', message: `task process ended before it was ready (${signal ?? `exit code ${String(code)}`}): ${lastLine(this.output)}` })
      else this.lose(this.outOfMemory ? { kind: 'out-of-memory' } : { kind: 'exit', code, signal })
    })
  }

  private lose (why: RunnerLoss): void {
    if (this.ended) return
    this.ended = true
    const listener = this.listener
    this.listener = undefined
    this.log.warn({ childPid: this.child?.pid, why: why.kind, output: this.output.slice(-1024) }, 'task process ended without a result')
    listener?.lost(why)
  }

  async kill (): Promise<void> {
    this.ended = true
    this.listener = undefined
    const child = this.child
    if (child === undefined) return
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await this.closed
  }
}
