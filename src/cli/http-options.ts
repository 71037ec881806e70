import { readFileSync } from 'node:fs'
import { DEFAULT_DASHBOARD_PORT } from '../dashboard/dashboard-port.js'
import { isLoopback } from '../util/loopback.js'
import { InvalidArgumentError } from '../util/errors.js'
import { flagOrEnv, type Env } from '../util/env.js'

export interface HttpFlags {
  http?: string
  httpToken?: string
}

/** Where `join` serves its dashboard and /metrics, or nothing (`--http off`). */
export type HttpOptions = { host: string, port: number, token?: string } | undefined

export const HTTP_FLAG_HELP = {
  http: `where the dashboard and /metrics listen: HOST:PORT, or off (env MRP2P_HTTP; default 127.0.0.1:${DEFAULT_DASHBOARD_PORT}, or the next free port)`,
  httpToken: 'a file holding the token every dashboard request must carry; needed when --http is not loopback (env MRP2P_HTTP_TOKEN)'
}

/** Checked before the node starts: a dashboard open to the network without a token is refused outright. */
export function resolveHttpOptions (flags: HttpFlags, env: Env = process.env): HttpOptions {
  const given = flagOrEnv(flags.http, '--http', env, 'MRP2P_HTTP')
  const raw = given?.raw ?? `127.0.0.1:${DEFAULT_DASHBOARD_PORT}`
  const source = given?.source ?? '--http'
  if (raw === 'off') return undefined
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw)
  const port = m === null ? NaN : Number(m[2])
  if (m === null || port > 65_535) throw new InvalidArgumentError(`${source} must be HOST:PORT or off, got ${JSON.stringify(raw)}`)
  const host = m[1].replace(/^\[|\]$/g, '')
  const tokenFile = flagOrEnv(flags.httpToken, '--http-token', env, 'MRP2P_HTTP_TOKEN')
  let token: string | undefined
  if (tokenFile !== undefined) {
    try {
      token = readFileSync(tokenFile.raw, 'utf8').trim()
    } catch (err) {
      throw new InvalidArgumentError(`${tokenFile.source} ${tokenFile.raw} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
    }
    if (token.length < 16) throw new InvalidArgumentError(`${tokenFile.source} ${tokenFile.raw} holds ${token.length} characters: a token needs at least 16`)
  }
  if (!isLoopback(host) && token === undefined) {
    throw new InvalidArgumentError(`${source} ${raw} is reachable from other machines: it needs --http-token FILE (every request must then carry the token)`)
  }
  return { host, port, token }
}
