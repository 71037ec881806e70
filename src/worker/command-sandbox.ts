import { spawn } from 'node:child_process'
import { existsSync, lstatSync, readlinkSync } from 'node:fs'
import type { CommandLauncher } from '../mapreduce/streaming-command.js'
import { envValue } from '../util/env.js'

/**
 * Streaming commands on a `--sandbox` node run under bubblewrap (Debian's `bubblewrap`): their own user, PID, IPC,
 * UTS and network namespaces (no network at all), a root holding only the system's read-only files, their working
 * folder (read-write) and an empty /tmp. Their input comes on stdin, so they need to see nothing else of the node.
 */

/** `MRP2P_BWRAP` names another bwrap binary (the tests point it at a missing one). */
export function bwrapPath (): string {
  return envValue(process.env, 'MRP2P_BWRAP') ?? '/usr/bin/bwrap'
}

/** The system's read-only parts a command may need: programs, libraries, interpreters, and the few files of /etc they read. */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt']
const SYSTEM_ETC = ['/etc/alternatives', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/localtime', '/etc/passwd', '/etc/group', '/etc/nsswitch.conf', '/etc/mime.types', '/etc/ssl/certs']

/** The same for every command of the node's life: looked up at the first, not at each. */
let mounts: string[] | undefined

function systemMounts (): string[] {
  if (mounts !== undefined) return mounts
  const args: string[] = []
  for (const dir of SYSTEM_DIRS) {
    if (!existsSync(dir)) continue
    // Debian's merged /usr: /bin is a link to usr/bin, kept a link inside.
    const st = lstatSync(dir)
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir)
    else args.push('--ro-bind', dir, dir)
  }
  for (const path of SYSTEM_ETC) if (existsSync(path)) args.push('--ro-bind', path, path)
  mounts = args
  return args
}

function sandboxArgs (cwd: string): string[] {
  return [
    '--unshare-all', '--die-with-parent', '--new-session',
    '--uid', '65534', '--gid', '65534',
    ...systemMounts(),
    '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp',
    '--bind', cwd, cwd, '--chdir', cwd
  ]
}

/** Only what output should not depend on is passed in: the locale and the time zone. */
function sandboxEnv (cwd: string): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: cwd, TMPDIR: '/tmp' }
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && (k === 'LANG' || k === 'TZ' || k.startsWith('LC_'))) env[k] = v
  }
  return env
}

export const SANDBOX_LAUNCHER: CommandLauncher = {
  argv: (command, cwd) => [bwrapPath(), ...sandboxArgs(cwd), '--', '/bin/sh', '-c', command],
  env: sandboxEnv
}

/**
 * Whether this node can sandbox streaming commands: bubblewrap is there and may create its namespaces here (a
 * container may forbid them). Undefined when it can; else the one-line reason a `--sandbox` node gives for refusing
 * streaming tasks.
 */
export async function sandboxUnavailable (probeDir: string): Promise<string | undefined> {
  const bwrap = bwrapPath()
  if (!existsSync(bwrap)) return `this node runs --sandbox and bubblewrap is not installed (no ${bwrap}; apt-get install bubblewrap)`
  return await new Promise((resolve) => {
    const child = spawn(bwrap, [...sandboxArgs(probeDir), '--', '/bin/sh', '-c', 'exit 0'], { stdio: ['ignore', 'ignore', 'pipe'], env: sandboxEnv(probeDir) })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
    child.on('error', (err) => { resolve(`this node runs --sandbox and bubblewrap cannot start: ${err.message}`) })
    child.on('close', (code) => {
      resolve(code === 0 ? undefined : `this node runs --sandbox and bubblewrap cannot make a sandbox here: ${stderr.trim().split('\n').pop() ?? `exit ${String(code)}`}`)
    })
  })
}
