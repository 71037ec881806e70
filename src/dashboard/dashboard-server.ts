import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createAdaptorServer, type ServerType } from '@hono/node-server'
import type { Startable } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { Hono, type Context } from 'hono'
import { streamSSE } from 'hono/streaming'
import type { MeshNode } from '../node/node.js'
import type { Roles } from '../node/roles.js'
import { JobStateSchema } from '../protocol/history-messages.js'
import { queryInfo, type InfoResponse } from '../protocol/info.js'
import { CancelResponse, JOB_PROTOCOLS } from '../protocol/job-messages.js'
import { sealCancel } from '../protocol/job-seal.js'
import { LOGS_FRAME_BYTES, LOGS_PROTOCOL, LogsResponse } from '../protocol/log-messages.js'
import { errorMessage, UserFacingError } from '../util/errors.js'
import type { Logger } from '../util/logger.js'
import type { NodeMetrics } from './node-metrics.js'
import { PAGE_HTML } from './page.js'
import { isLoopback } from '../util/loopback.js'
import { DEFAULT_DASHBOARD_PORT } from './dashboard-port.js'

export { DEFAULT_DASHBOARD_PORT } from './dashboard-port.js'
/** Ports tried above the first before giving up. */
const PORT_TRIES = 50

/** `--http` names a host other than loopback without `--http-token`, or the port range is taken. */
export class DashboardConfigError extends UserFacingError {
  static readonly NAME = 'DashboardConfigError'
  override readonly name = DashboardConfigError.NAME
  readonly exitCode = 2
}

export interface DashboardInit {
  host: string
  /** The first port tried; 0: any free port. */
  port: number
  /** Every request must carry it (`Authorization: Bearer …` or `?token=`); required off loopback. */
  token?: string
  node: MeshNode
  roles: Roles
  metrics: NodeMetrics
  log: Logger
}

/** dist/dashboard/app.js, built by `npm run build` (esbuild), found from the compiled file or its source. */
function appScriptPath (): string {
  const here = fileURLToPath(new URL('.', import.meta.url))
  return here.includes('/dist/src/') ? join(here, '..', '..', 'dashboard', 'app.js') : join(here, '..', '..', 'dist', 'dashboard', 'app.js')
}

const MESH_TIMEOUTS = { dialMs: 1_000, firstByteMs: 1_000, responseMs: 1_000 }

/**
 * The node's dashboard and `/metrics` over HTTP (docs/observability.md): read-only JSON of the mesh and the
 * job history, Server-Sent Events when either changes, a job's attempt logs, and `cancel`. It never takes
 * code: the one thing it changes is a running job's end.
 */
export class DashboardServer implements Startable {
  private server: ServerType | undefined
  private readonly app = new Hono()
  private appScript = ''
  private meshCache: { at: number, value: Promise<unknown> } | undefined
  private readonly closers = new Set<() => void>()
  url = ''

  constructor (private readonly init: DashboardInit) {
    if (!isLoopback(init.host) && (init.token === undefined || init.token === '')) {
      throw new DashboardConfigError(`--http ${init.host} is reachable from other machines: it needs --http-token FILE (every request must then carry the token)`)
    }
    this.routes()
  }

  async start (): Promise<void> {
    this.appScript = readFileSync(appScriptPath(), 'utf8')
    const { host } = this.init
    const first = this.init.port
    for (let port = first, tries = 0; ; port++, tries++) {
      const server = createAdaptorServer({ fetch: this.app.fetch })
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          server.listen(port, host, () => { server.off('error', reject); resolve() })
        })
        this.server = server
        const bound = (server.address() as AddressInfo).port
        this.url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`
        return
      } catch (err) {
        server.close()
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EADDRINUSE' && first !== 0 && tries < PORT_TRIES) continue
        throw new DashboardConfigError(`cannot serve the dashboard on ${host}:${port}: ${code ?? errorMessage(err)}`)
      }
    }
  }

  async stop (): Promise<void> {
    for (const close of [...this.closers]) close()
    const server = this.server
    this.server = undefined
    if (server === undefined) return
    await new Promise<void>((resolve) => {
      server.close(() => { resolve() })
      // Event streams hold their connections open: end them, or close() waits for the browser to go.
      if ('closeAllConnections' in server) server.closeAllConnections()
    })
  }

  private routes (): void {
    const { app } = this
    const { node, roles, metrics, token } = this.init
    const store = roles.historyStore
    app.use('*', async (c, next) => {
      if (token !== undefined && token !== '') {
        const given = c.req.header('authorization')?.replace(/^Bearer /, '') ?? c.req.query('token')
        if (given !== token) return c.text('unauthorized: this dashboard needs its token (Authorization: Bearer …, or ?token=…)\n', 401)
      }
      await next()
    })
    app.get('/', (c) => c.html(PAGE_HTML))
    app.get('/app.js', (c) => c.body(this.appScript, 200, { 'content-type': 'text/javascript; charset=utf-8' }))
    app.get('/metrics', async (c) => c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }))
    app.get('/api/mesh', async (c) => c.json(await this.mesh()))
    app.get('/api/jobs', (c) => {
      const state = JobStateSchema.safeParse(c.req.query('state'))
      const limit = Number.parseInt(c.req.query('limit') ?? '200', 10)
      return c.json(store.list({ state: state.success ? state.data : undefined, limit: Number.isFinite(limit) && limit > 0 ? limit : 200 }))
    })
    app.get('/api/jobs/:id', (c) => {
      const record = store.get(c.req.param('id'))
      return record === undefined ? c.json({ error: 'no such job' }, 404) : c.json(record)
    })
    app.get('/api/jobs/:id/log', async (c) => await this.attemptLog(c))
    app.post('/api/jobs/:id/cancel', async (c) => {
      // A header a plain form or image cannot send: another site's page cannot cancel through the user's browser.
      if (c.req.header('x-mrp2p-action') !== 'cancel') return c.json({ error: 'cancel needs the header x-mrp2p-action: cancel' }, 400)
      const leader = node.view().leader
      if (leader === undefined) return c.json({ error: 'no coordinator now' }, 503)
      try {
        // Signed by this node's own key: with --submitters, the coordinator lets it cancel only if it lists this node.
        const jobId = c.req.param('id')
        return c.json(await roles.rpc.call(leader, JOB_PROTOCOLS.cancel, { jobId, seal: await sealCancel(jobId, node.privateKey) }, CancelResponse, { timeouts: MESH_TIMEOUTS }))
      } catch (err) {
        return c.json({ error: errorMessage(err) }, 502)
      }
    })
    app.get('/api/events', (c) => streamSSE(c, async (stream) => {
      let pending = true
      let wake: (() => void) | undefined
      const unsubscribe = store.onChange(() => { pending = true; wake?.() })
      let open = true
      const close = (): void => { open = false; wake?.() }
      this.closers.add(close)
      stream.onAbort(close)
      try {
        let lastMesh = 0
        while (open) {
          if (pending) {
            pending = false
            await stream.writeSSE({ event: 'jobs', data: JSON.stringify(store.list({ limit: 200 })) })
          }
          if (performance.now() - lastMesh >= 2_000) {
            lastMesh = performance.now()
            await stream.writeSSE({ event: 'mesh', data: JSON.stringify(await this.mesh()) })
          }
          // At most four job updates a second, however often records change.
          await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, pending ? 250 : 2_000).unref() })
          wake = undefined
          if (pending) await new Promise<void>((resolve) => setTimeout(resolve, 250).unref())
        }
      } finally {
        unsubscribe()
        this.closers.delete(close)
      }
    }))
  }

  /** Every member's own answer (so each one's CPU and memory), asked at most once a second. */
  private async mesh (): Promise<unknown> {
    const now = performance.now()
    if (this.meshCache !== undefined && now - this.meshCache.at < 1_000) return await this.meshCache.value
    const { node } = this.init
    const value = (async () => {
      const self = node.info()
      const others = await Promise.all(self.members.filter((m) => m.liveness !== 'dead').map(async (m): Promise<[string, InfoResponse | undefined]> => {
        try {
          return [m.peerId, await queryInfo(node.libp2p, peerIdFromString(m.peerId), { timeouts: MESH_TIMEOUTS, signal: AbortSignal.timeout(2_000) })]
        } catch {
          return [m.peerId, undefined]
        }
      }))
      return { self, nodes: Object.fromEntries(others) }
    })()
    this.meshCache = { at: now, value }
    return await value
  }

  /** One attempt's log as text, from the node that ran it. */
  private async attemptLog (c: Context): Promise<Response> {
    const { roles } = this.init
    const record = roles.historyStore.get(c.req.param('id') ?? '')
    const m = /^(map|reduce)-(\d+)$/.exec(c.req.query('task') ?? '')
    const epoch = Number(c.req.query('epoch'))
    const attemptNo = Number(c.req.query('attempt'))
    if (record === undefined || m === null) return c.text('no such job or task\n', 404)
    const kind = m[1] as 'map' | 'reduce'
    const index = Number(m[2])
    const attempt = record.tasks.find((t) => t.kind === kind && t.index === index)?.attempts.find((a) => a.epoch === epoch && a.attempt === attemptNo)
    if (attempt === undefined) return c.text('no such attempt\n', 404)
    try {
      const res = await roles.rpc.call(attempt.node, LOGS_PROTOCOL, { jobId: record.jobId, task: { kind, index } }, LogsResponse, { timeouts: MESH_TIMEOUTS, maxFrameBytes: LOGS_FRAME_BYTES })
      const log = res.attempts.find((a) => a.epoch === epoch && a.attempt === attemptNo)
      const cut = log === undefined || log.start === 0 ? '' : `[${log.start} characters cut: only the last part of an attempt's output is kept]\n`
      return c.text(`${cut}${log?.text ?? ''}`)
    } catch (err) {
      return c.text(`the log on ${attempt.node} cannot be read: ${errorMessage(err)}\n`, 502)
    }
  }
}
