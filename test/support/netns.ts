import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A small private network on one machine, for tests that must not lean on
 * loopback: a Linux bridge in the root namespace with address 10.231.X.1/24,
 * and N network namespaces, each joined to the bridge by a veth pair and given
 * 10.231.X.(11+i)/24, `lo` up. A process started in namespace i sees only its
 * own loopback and that one link, so it can reach the others (and the root
 * namespace's 10.231.X.1) only over the bridge; multicast is routed onto that
 * link, so mDNS works between namespaces. Needs root and `ip`
 * (iproute2).
 *
 * With `nats`, some namespaces sit behind NAT instead: each NAT is a router
 * namespace on the bridge (10.231.X.(11+count+k)) with a LAN of its own
 * (10.(232+k).X.0/24, a bridge inside the router) for the namespaces named in
 * it, whose default route is the router. The router masquerades what leaves
 * for the bridge and forwards nothing in that its LAN did not start (nftables,
 * as a home router does), so those namespaces can dial out but cannot be
 * dialled from the bridge.
 *
 * Names are `mrp2p` + kind + a random 6-hex id (+ index): at most 13 chars,
 * under the kernel's 15 for links. Before anything is created the owner (pid
 * and start time of this process) is written to REGISTRY_DIR/<id>.json, so a
 * later run can tell leftovers of a crashed run (owner gone, or no record)
 * from the live network of a run beside it, and removes only the former.
 *
 * Clean-up happens in teardown(), and, should the test process end without
 * it, in a synchronous process 'exit' hook; a run killed by SIGKILL is cleaned
 * by the next run's start. Every process started through the lab runs in its
 * own process group and is killed by group in both.
 */

const PREFIX = 'mrp2p'
const REGISTRY_DIR = existsSync('/run') ? '/run/mrp2p-netns' : '/tmp/mrp2p-netns'
const NAME_RE = /^mrp2p[bvpn]([0-9a-f]{6})(?:\d+)?$/
const IP = 'ip'

interface Owner { pid: number, start: string, subnet: number, created: string }

export interface LabNamespace {
  index: number
  name: string
  /** This namespace's address: on the bridge, e.g. 10.231.7.11, or on its NAT's LAN, e.g. 10.232.7.13 */
  addr: string
  /** Set: the index of the NAT this namespace sits behind. */
  nat?: number
}

export interface LabOptions {
  /** Namespaces (by index) behind each NAT: `[[1, 2], [3, 4]]` puts 1 and 2 behind one router, 3 and 4 behind another. */
  nats?: number[][]
}

export interface LabProcessResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

export interface SpawnOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
}

/** Whether this machine can build a lab; the reason when it cannot. */
export function netnsSupport (): { ok: true } | { ok: false, reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'network namespaces need Linux' }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root' }
  try {
    execFileSync(IP, ['netns', 'list'], { stdio: 'ignore' })
  } catch {
    return { ok: false, reason: '`ip netns` (iproute2) is not available' }
  }
  return { ok: true }
}

/** Whether NAT routers can be built (nftables, installed by scripts/ensure-test-tools.sh); the reason when not. */
export function natSupport (): { ok: true } | { ok: false, reason: string } {
  const base = netnsSupport()
  if (!base.ok) return base
  try {
    execFileSync(NFT, ['--version'], { stdio: 'ignore' })
  } catch {
    return { ok: false, reason: '`nft` (nftables) is not installed: run scripts/ensure-test-tools.sh' }
  }
  return { ok: true }
}

/** A process started in the lab: its own process group, output kept. */
export class LabProcess {
  stdout = ''
  stderr = ''
  result: LabProcessResult | undefined
  readonly exited: Promise<LabProcessResult>

  constructor (readonly child: ChildProcess, readonly label: string) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { this.stdout = keepTail(this.stdout + d) })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { this.stderr = keepTail(this.stderr + d) })
    this.exited = new Promise(resolve => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.result ??= { code, signal, stdout: this.stdout, stderr: this.stderr }
        resolve(this.result)
      }
      // 'close' waits for the pipes too, so stdout is complete.
      child.once('close', done)
      child.once('error', (err) => { this.stderr += `\nspawn failed: ${err.message}`; done(null, null) })
    })
  }

  get pid (): number | undefined {
    return this.child.pid
  }

  get running (): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Signal the whole process group (the group id is the leader's pid). */
  signal (sig: NodeJS.Signals): void {
    const pid = this.child.pid
    if (pid === undefined || !this.running) return
    try {
      process.kill(-pid, sig)
    } catch {
      try { this.child.kill(sig) } catch { /* gone */ }
    }
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves when it has exited. */
  async stop (graceMs = 3_000): Promise<void> {
    if (!this.running) return
    this.signal('SIGCONT')
    this.signal('SIGTERM')
    if (await exitedWithin(this, graceMs)) return
    this.signal('SIGKILL')
    await exitedWithin(this, graceMs)
  }
}

async function exitedWithin (p: LabProcess, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>(resolve => { timer = setTimeout(() => { resolve(false) }, ms) })
  const ok = await Promise.race([p.exited.then(() => true as const), timeout])
  clearTimeout(timer)
  return ok
}

export class NetnsLab {
  readonly bridge: string
  /** The root namespace's address on the bridge: where a submitter listens. */
  readonly hostAddr: string
  readonly namespaces: LabNamespace[]
  /** The NAT routers, by NAT index: each one's namespace name and its address on the bridge. */
  readonly routers: Array<{ name: string, addr: string }>
  private readonly processes: LabProcess[] = []
  private readonly onExit = (): void => { this.teardownSync() }
  private torn = false

  private constructor (readonly id: string, readonly subnet: number, count: number, readonly nats: number[][] = []) {
    this.bridge = `${PREFIX}b${id}`
    this.hostAddr = `10.231.${subnet}.1`
    const natOf = (i: number): number | undefined => { const k = nats.findIndex(members => members.includes(i)); return k < 0 ? undefined : k }
    this.namespaces = Array.from({ length: count }, (_, i) => {
      const nat = natOf(i)
      return { index: i, name: `${PREFIX}n${id}${i}`, addr: nat === undefined ? `10.231.${subnet}.${11 + i}` : `10.${232 + nat}.${subnet}.${11 + i}`, nat }
    })
    this.routers = nats.map((_, k) => ({ name: `${PREFIX}n${id}${count + k}`, addr: `10.231.${subnet}.${11 + count + k}` }))
  }

  /** Build the bridge and `count` namespaces (after removing stale labs of crashed runs). */
  static create (count: number, options: LabOptions = {}): NetnsLab {
    const nats = options.nats ?? []
    if (count < 1 || count + nats.length > 9) throw new Error(`a lab has 1 to 9 namespaces and routers, not ${count} and ${nats.length}`)
    if (nats.flat().some(i => i < 0 || i >= count)) throw new Error(`a NAT names a namespace outside 0..${count - 1}`)
    cleanStaleLabs()
    mkdirSync(REGISTRY_DIR, { recursive: true })
    let lab: NetnsLab | undefined
    for (let tries = 0; lab === undefined; tries++) {
      const id = randomBytes(3).toString('hex')
      const subnet = freeSubnet()
      const owner: Owner = { pid: process.pid, start: processStart(process.pid) ?? '', subnet, created: new Date().toISOString() }
      try {
        // 'wx': the record is ours alone; a clash of ids just means another try.
        writeFileSync(join(REGISTRY_DIR, `${id}.json`), JSON.stringify(owner), { flag: 'wx' })
      } catch (err) {
        if (tries >= 5) throw err
        continue
      }
      // A run beside us may have picked the same subnet a moment ago: pick again.
      if (otherRecords(id).some(o => o.subnet === subnet)) {
        rmSync(join(REGISTRY_DIR, `${id}.json`), { force: true })
        if (tries >= 5) throw new Error('no free 10.231.X.0/24 subnet after 6 tries')
        continue
      }
      lab = new NetnsLab(id, subnet, count, nats)
    }
    process.on('exit', lab.onExit)
    try {
      lab.build()
    } catch (err) {
      lab.teardownSync()
      throw err
    }
    return lab
  }

  private build (): void {
    ip('link', 'add', this.bridge, 'type', 'bridge')
    ip('addr', 'add', `${this.hostAddr}/24`, 'dev', this.bridge)
    ip('link', 'set', this.bridge, 'up')
    this.routers.forEach((router, k) => { this.buildRouter(router, k, this.namespaces.length + k) })
    for (const ns of this.namespaces) {
      if (ns.nat !== undefined) {
        this.buildBehindNat(ns, ns.nat)
        continue
      }
      const inner = this.onBridge(ns.name, ns.index, ns.addr)
      // As on a LAN, multicast (mDNS) goes out on the one link; with no route for it a send fails.
      ip('-n', ns.name, 'route', 'add', '224.0.0.0/4', 'dev', inner)
    }
  }

  /** Namespace `name`, joined to the bridge by veth pair `index` and given `addr`: returns its end's link name. */
  private onBridge (name: string, index: number, addr: string): string {
    const host = `${PREFIX}v${this.id}${index}`
    const inner = `${PREFIX}p${this.id}${index}`
    ip('netns', 'add', name)
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', inner, 'netns', name)
    ip('link', 'set', host, 'master', this.bridge)
    ip('link', 'set', host, 'up')
    ip('-n', name, 'link', 'set', 'lo', 'up')
    ip('-n', name, 'addr', 'add', `${addr}/24`, 'dev', inner)
    ip('-n', name, 'link', 'set', inner, 'up')
    return inner
  }

  /** A router namespace: one leg on the bridge, a LAN bridge `lan` inside, masquerade out, nothing new in. */
  private buildRouter (router: { name: string, addr: string }, k: number, index: number): void {
    const wan = this.onBridge(router.name, index, router.addr)
    ip('-n', router.name, 'link', 'add', 'lan', 'type', 'bridge')
    ip('-n', router.name, 'addr', 'add', `10.${232 + k}.${this.subnet}.1/24`, 'dev', 'lan')
    ip('-n', router.name, 'link', 'set', 'lan', 'up')
    inNamespace(router.name, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
    inNamespace(router.name, [NFT, '-f', '-'], [
      'table ip nat {',
      '  chain post {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    oifname "${wan}" masquerade`,
      '  }',
      '}',
      'table ip filter {',
      '  chain inbound {',
      '    type filter hook forward priority filter; policy drop;',
      '    ct state established,related accept',
      '    iifname "lan" accept',
      '  }',
      '}'
    ].join('\n'))
  }

  /** A namespace on NAT k's LAN: its veth's other end is moved into the router and put on `lan`. */
  private buildBehindNat (ns: LabNamespace, k: number): void {
    const host = `${PREFIX}v${this.id}${ns.index}`
    const inner = `${PREFIX}p${this.id}${ns.index}`
    const router = this.routers[k].name
    ip('netns', 'add', ns.name)
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', inner, 'netns', ns.name)
    ip('link', 'set', host, 'netns', router)
    ip('-n', router, 'link', 'set', host, 'master', 'lan')
    ip('-n', router, 'link', 'set', host, 'up')
    ip('-n', ns.name, 'link', 'set', 'lo', 'up')
    ip('-n', ns.name, 'addr', 'add', `${ns.addr}/24`, 'dev', inner)
    ip('-n', ns.name, 'link', 'set', inner, 'up')
    ip('-n', ns.name, 'route', 'add', 'default', 'via', `10.${232 + k}.${this.subnet}.1`)
    ip('-n', ns.name, 'route', 'add', '224.0.0.0/4', 'dev', inner)
  }

  /**
   * Start argv[0] with argv[1..] inside namespace `ns` (via `ip netns exec`,
   * which execs, so the pid is the program's own), or in the root namespace
   * when ns is undefined. Tracked: teardown kills it if it still runs.
   */
  spawn (ns: LabNamespace | undefined, argv: string[], opts: SpawnOptions = {}): LabProcess {
    if (this.torn) throw new Error('lab already torn down')
    const [cmd, args] = ns === undefined ? [argv[0], argv.slice(1)] : [IP, ['netns', 'exec', ns.name, ...argv]]
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so teardown can kill all it may have started.
      detached: true
    })
    const p = new LabProcess(child, `${ns?.name ?? 'root'}: ${argv.slice(0, 4).join(' ')}`)
    this.processes.push(p)
    return p
  }

  /** spawn() and wait for the exit; killed (group) after timeoutMs. */
  async run (ns: LabNamespace | undefined, argv: string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<LabProcessResult> {
    const p = this.spawn(ns, argv, opts)
    const timer = setTimeout(() => { p.signal('SIGKILL') }, opts.timeoutMs ?? 60_000)
    try {
      return await p.exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** Stop every process started here, then remove namespaces, veths, bridge and record. */
  async teardown (): Promise<void> {
    if (this.torn) return
    await Promise.all(this.processes.map(async p => { await p.stop(3_000) }))
    this.teardownSync()
  }

  /** Synchronous: usable from process.on('exit'). SIGKILLs what still runs. */
  teardownSync (): void {
    if (this.torn) return
    this.torn = true
    process.removeListener('exit', this.onExit)
    for (const p of this.processes) p.signal('SIGKILL')
    removeLab(this.id)
  }

  /** Whatever of this lab is still on the machine (namespaces, links, record). */
  leftovers (): string[] {
    return labResources().filter(r => r.id === this.id).map(r => `${r.kind} ${r.name}`)
  }
}

interface Resource { kind: 'netns' | 'link' | 'record', name: string, id: string }

function ip (...args: string[]): string {
  try {
    return execFileSync(IP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? ''
    throw new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || String(err)}`)
  }
}

const NFT = 'nft'

/** `argv` run inside namespace `ns`, with `input` on its stdin; throws with its stderr. */
function inNamespace (ns: string, argv: string[], input?: string): void {
  try {
    execFileSync(IP, ['netns', 'exec', ns, ...argv], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? ''
    throw new Error(`${argv.join(' ')} in ${ns} failed: ${stderr.trim() || String(err)}`)
  }
}

function tryIp (...args: string[]): void {
  try { execFileSync(IP, args, { stdio: 'ignore' }) } catch { /* already gone */ }
}

/** Every namespace, link and record of any lab on this machine. */
function labResources (): Resource[] {
  const out: Resource[] = []
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.trim().split(/\s+/)[0]
    const m = NAME_RE.exec(name ?? '')
    if (m !== null) out.push({ kind: 'netns', name, id: m[1] })
  }
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    // "12: mrp2pv1a2b3c0@if2: <BROADCAST,...> ..."
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1]
    const m = NAME_RE.exec(name ?? '')
    if (name !== undefined && m !== null) out.push({ kind: 'link', name, id: m[1] })
  }
  if (existsSync(REGISTRY_DIR)) {
    for (const f of readdirSync(REGISTRY_DIR)) {
      const m = /^([0-9a-f]{6})\.json$/.exec(f)
      if (m !== null) out.push({ kind: 'record', name: f, id: m[1] })
    }
  }
  return out
}

function removeLab (id: string): void {
  const mine = labResources().filter(r => r.id === id)
  for (const r of mine.filter(r => r.kind === 'netns')) {
    // Anything still inside (a node of a crashed run): by explicit pid.
    let pids: string[] = []
    try { pids = ip('netns', 'pids', r.name).split(/\s+/).filter(s => /^\d+$/.test(s)) } catch { /* gone */ }
    for (const pid of pids) {
      try { process.kill(Number(pid), 'SIGKILL') } catch { /* gone */ }
    }
    tryIp('netns', 'del', r.name)
  }
  // Deleting the host end of a veth removes its peer too, even while a dying
  // process still holds the namespace.
  for (const r of mine.filter(r => r.kind === 'link' && r.name.startsWith(`${PREFIX}v`))) tryIp('link', 'del', r.name)
  for (const r of mine.filter(r => r.kind === 'link' && r.name.startsWith(`${PREFIX}b`))) tryIp('link', 'del', r.name)
  rmSync(join(REGISTRY_DIR, `${id}.json`), { force: true })
}

/** Remove the labs whose owner is gone (or never recorded). Returns their ids. */
export function cleanStaleLabs (): string[] {
  const ids = new Set(labResources().map(r => r.id))
  const removed: string[] = []
  for (const id of ids) {
    const owner = readOwner(id)
    if (owner !== undefined && owner.start !== '' && processStart(owner.pid) === owner.start) continue
    removeLab(id)
    removed.push(id)
  }
  return removed
}

function readOwner (id: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(join(REGISTRY_DIR, `${id}.json`), 'utf8')) as Owner
  } catch {
    return undefined
  }
}

/** The owners recorded by every lab but `except`. */
function otherRecords (except: string | undefined): Owner[] {
  if (!existsSync(REGISTRY_DIR)) return []
  const out: Owner[] = []
  for (const f of readdirSync(REGISTRY_DIR)) {
    const id = /^([0-9a-f]{6})\.json$/.exec(f)?.[1]
    const owner = id === undefined || id === except ? undefined : readOwner(id)
    if (owner !== undefined) out.push(owner)
  }
  return out
}

/** Field 22 of /proc/<pid>/stat (start time since boot): tells a live owner from a reused pid. */
function processStart (pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** A third octet for 10.231.X.0/24 that no interface and no live lab uses. */
function freeSubnet (): number {
  const used = new Set<number>()
  for (const m of ip('-4', '-o', 'addr', 'show').matchAll(/inet 10\.231\.(\d+)\./g)) used.add(Number(m[1]))
  for (const o of otherRecords(undefined)) used.add(o.subnet)
  const free = Array.from({ length: 254 }, (_, i) => i + 1).filter(x => !used.has(x))
  if (free.length === 0) throw new Error('no free 10.231.X.0/24 subnet')
  return free[randomBytes(2).readUInt16BE(0) % free.length]
}

const MAX_KEPT = 1024 * 1024

function keepTail (s: string): string {
  return s.length > MAX_KEPT ? s.slice(s.length - MAX_KEPT / 2) : s
}
