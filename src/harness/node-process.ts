import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, existsSync, type WriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NodeInfoFile, NODE_INFO_FILE } from '../node/data-dir.js'
import { waitFor } from './wait-for.js'

/** The child exited before it said `ready`; carries its stderr tail. */
export class NodeExitedError extends Error {
  static readonly NAME = 'NodeExitedError'
  override readonly name = NodeExitedError.NAME
}

export interface NodeProcessInit {
  dataDir: string
  listen: string
  bootstrap: string[]
  env?: Record<string, string>
  extraArgs?: string[]
  /** Flags for node itself, before the script (e.g. --cpu-prof for a benchmark). */
  nodeArgs?: string[]
  /** Where stdout+stderr are appended, for reading after a failed test. */
  logFile?: string
  bin?: string
}

export interface ReadyInfo {
  peerId: string
  addrs: string[]
  pid: number
  /** The node's dashboard, as its `dashboard URL` line said (absent with `--http off`). */
  dashboard?: string
}

/**
 * One `mrp2p join` child. Output is always drained (a node blocked on a full
 * stderr pipe would look frozen) and kept in memory, bounded, so tests can
 * assert on log lines.
 */
export class NodeProcess {
  child: ChildProcess | undefined
  stdout = ''
  stderr = ''
  exitCode: number | null = null
  exitSignal: NodeJS.Signals | null = null
  private exited: Promise<void> = Promise.resolve()
  private log: WriteStream | undefined

  constructor (readonly init: NodeProcessInit) {}

  get pid (): number | undefined {
    return this.child?.pid
  }

  get running (): boolean {
    return this.child !== undefined && this.exitCode === null && this.exitSignal === null
  }

  start (): void {
    if (this.running) throw new Error('node process already running')
    const args = [...(this.init.nodeArgs ?? []), this.init.bin ?? binPath(), 'join', '--data-dir', this.init.dataDir, '--listen', this.init.listen]
    for (const b of this.init.bootstrap) args.push('--bootstrap', b)
    args.push(...(this.init.extraArgs ?? []))
    // Any free port, unless the test chose: nodes of parallel test files would otherwise race for 8470 and up.
    if (!args.includes('--http')) args.push('--http', '127.0.0.1:0')
    this.stdout = ''
    this.stderr = ''
    this.exitCode = null
    this.exitSignal = null
    this.log ??= this.init.logFile === undefined ? undefined : createWriteStream(this.init.logFile, { flags: 'a' })
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        MRP2P_BOOTSTRAP: '',
        MRP2P_LISTEN: '',
        MRP2P_DATA_DIR: '',
        // A node whose harness dies (even by SIGKILL) notices and stops: no orphans.
        MRP2P_PARENT_PID: String(process.pid),
        ...this.init.env
      }
    })
    this.child = child
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => { this.stdout = keepTail(this.stdout + chunk); this.log?.write(chunk) })
    child.stderr.on('data', (chunk: string) => { this.stderr = keepTail(this.stderr + chunk); this.log?.write(chunk) })
    this.exited = new Promise(resolve => {
      child.once('exit', (code, signal) => {
        this.exitCode = code
        this.exitSignal = signal
        resolve()
      })
    })
  }

  /** Wait for the `ready` line and a node.json written by this very process. */
  async waitReady (timeoutMs = 20_000): Promise<ReadyInfo> {
    const pid = this.pid
    return await waitFor(async () => {
      if (!this.running) {
        throw new NodeExitedError(`node exited (code ${String(this.exitCode)}, signal ${String(this.exitSignal)}) before ready: ${this.stderr.slice(-2000)}`)
      }
      if (!/^ready$/m.test(this.stdout)) return undefined
      const file = NodeInfoFile.parse(JSON.parse(await readFile(join(this.init.dataDir, NODE_INFO_FILE), 'utf8')))
      const dashboard = /^dashboard (\S+)$/m.exec(this.stdout)?.[1]
      return file.pid === pid ? { peerId: file.peerId, addrs: file.addrs, pid: file.pid, dashboard } : undefined
    }, { timeoutMs, intervalMs: 50, description: `node ${this.init.dataDir} to be ready` }).catch((err: unknown) => {
      if (!this.running) throw new NodeExitedError(`node exited (code ${String(this.exitCode)}, signal ${String(this.exitSignal)}) before ready: ${this.stderr.slice(-2000)}`)
      throw err
    })
  }

  signal (sig: NodeJS.Signals): void {
    if (this.running) this.child?.kill(sig)
  }

  async waitExit (timeoutMs = 10_000): Promise<boolean> {
    if (!this.running) return true
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<false>(resolve => { timer = setTimeout(() => { resolve(false) }, timeoutMs) })
    const done = await Promise.race([this.exited.then(() => true as const), timedOut])
    clearTimeout(timer)
    return done
  }

  /** SIGTERM, then SIGKILL if it has not gone after graceMs. */
  async stop (graceMs = 3_000): Promise<void> {
    if (!this.running) return
    this.signal('SIGCONT')
    this.signal('SIGTERM')
    if (!(await this.waitExit(graceMs))) {
      this.signal('SIGKILL')
      await this.waitExit(graceMs)
    }
  }

  closeLog (): void {
    this.log?.end()
    this.log = undefined
  }
}

const MAX_KEPT = 4 * 1024 * 1024

function keepTail (s: string): string {
  return s.length > MAX_KEPT ? s.slice(s.length - MAX_KEPT / 2) : s
}

/** bin/mrp2p.js of this package, found from this module whether it runs from src/ (vitest) or dist/. */
export function binPath (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'bin', 'mrp2p.js')
    if (existsSync(candidate) && existsSync(join(dir, 'package.json'))) return candidate
    dir = resolve(dir, '..')
  }
  throw new Error('cannot find bin/mrp2p.js above the harness module')
}
