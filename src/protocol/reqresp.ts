import { z } from 'zod'
import type { AbortOptions, Connection, PeerId, Startable, Stream, StreamHandlerOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../util/logger.js'
import { errorMessage } from '../util/errors.js'
import {
  dialFailure, DialTimeoutError, FirstByteTimeoutError, InvalidFrameError, InvalidMessageError,
  ProtocolError, RemoteError, RequestTimeoutError, ResponseTimeoutError
} from './errors.js'
import { DEFAULT_MAX_FRAME_BYTES, framed, validate } from './framing.js'
import { createLogLimiter } from '../util/log-limiter.js'
import { abortReasonOr, deadline } from './timeouts.js'

/**
 * One request frame, one response frame, on a fresh stream. Four separate
 * timeouts, as in lodestar's reqresp, because each one means something else:
 * dial (the peer is gone), request (it does not read), first byte (it is stuck
 * before answering), response (it is stuck mid-answer).
 */
export interface RequestTimeouts {
  dialMs: number
  requestMs: number
  firstByteMs: number
  responseMs: number
}

export const DEFAULT_REQUEST_TIMEOUTS: RequestTimeouts = {
  dialMs: 5_000,
  requestMs: 2_000,
  firstByteMs: 5_000,
  responseMs: 10_000
}

/** The part of libp2p a client needs. */
export interface StreamOpener {
  dialProtocol: (peer: PeerId | Multiaddr | Multiaddr[], protocol: string, options?: AbortOptions) => Promise<Stream>
}

/** The part of libp2p a server needs. */
export interface HandlerRegistrar {
  handle: (protocol: string, handler: (stream: Stream, connection: Connection) => void | Promise<void>, options?: StreamHandlerOptions) => Promise<void>
  unhandle: (protocol: string, options?: AbortOptions) => Promise<void>
}

/** Every response frame is one of these; `body` is validated by the protocol's own schema. */
const ResponseEnvelope = z.union([
  z.object({ ok: z.literal(true), body: z.unknown() }),
  z.object({ ok: z.literal(false), error: z.object({ name: z.string().max(200), message: z.string().max(4000) }) })
])

export interface RequestOptions extends AbortOptions {
  timeouts?: Partial<RequestTimeouts>
  maxFrameBytes?: number
}

export async function request<S extends z.ZodType> (
  opener: StreamOpener,
  peer: PeerId | Multiaddr | Multiaddr[],
  protocol: string,
  body: unknown,
  responseSchema: S,
  options: RequestOptions = {}
): Promise<z.output<S>> {
  const t = { ...DEFAULT_REQUEST_TIMEOUTS, ...options.timeouts }
  const stream = await dial(opener, peer, protocol, t.dialMs, options.signal)
  try {
    const io = framed(stream, { maxFrameBytes: options.maxFrameBytes })

    // Armed before the request goes out so a fast answer cannot slip past it.
    const response = new AbortController()
    const parent = options.signal
    const onParentAbort = (): void => { response.abort(parent?.reason) }
    parent?.addEventListener('abort', onParentAbort, { once: true })
    let responseTimer: NodeJS.Timeout | undefined
    const firstByteTimer = setTimeout(() => {
      response.abort(new FirstByteTimeoutError(`no response from ${protocol} within ${t.firstByteMs} ms`))
    }, t.firstByteMs)
    const onFirstByte = (): void => {
      clearTimeout(firstByteTimer)
      responseTimer = setTimeout(() => {
        response.abort(new ResponseTimeoutError(`response of ${protocol} not complete within ${t.responseMs} ms`))
      }, t.responseMs)
    }
    stream.addEventListener('message', onFirstByte, { once: true })

    try {
      const write = deadline(t.requestMs, () => new RequestTimeoutError(`request to ${protocol} not written within ${t.requestMs} ms`), parent)
      try {
        await io.writeJson(body, { signal: write.signal })
        await stream.close({ signal: write.signal })
      } catch (err) {
        throw abortReasonOr(write.signal, err)
      } finally {
        write.clear()
      }

      let envelope: z.output<typeof ResponseEnvelope>
      try {
        envelope = await io.readJson(ResponseEnvelope, { signal: response.signal })
      } catch (err) {
        throw abortReasonOr(response.signal, err)
      }
      if (!envelope.ok) throw new RemoteError(envelope.error.name, envelope.error.message)
      return validate(responseSchema, envelope.body, 'response')
    } finally {
      clearTimeout(firstByteTimer)
      if (responseTimer !== undefined) clearTimeout(responseTimer)
      stream.removeEventListener('message', onFirstByte)
      parent?.removeEventListener('abort', onParentAbort)
    }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new ProtocolError(errorMessage(err)))
    throw err
  }
}

async function dial (opener: StreamOpener, peer: PeerId | Multiaddr | Multiaddr[], protocol: string, dialMs: number, parent?: AbortSignal): Promise<Stream> {
  const d = deadline(dialMs, () => new DialTimeoutError(`could not open ${protocol} within ${dialMs} ms`), parent)
  try {
    return await opener.dialProtocol(peer, protocol, { signal: d.signal })
  } catch (err) {
    const reason = abortReasonOr(d.signal, err)
    if (reason instanceof DialTimeoutError || parent?.aborted === true) throw reason
    throw dialFailure(protocol, err)
  } finally {
    d.clear()
  }
}


export interface RequestContext extends AbortOptions {
  remotePeer: PeerId
}

export interface HandlerInit<S extends z.ZodType> {
  protocol: string
  requestSchema: S
  handle: (request: z.output<S>, context: RequestContext) => Promise<unknown> | unknown
  log: Logger
  maxFrameBytes?: number
  /** How long a remote may take to send its whole request; a silent stream is not kept forever. */
  requestTimeoutMs?: number
  /** Bound on the handler's own work plus writing the answer. */
  responseTimeoutMs?: number
  maxInboundStreams?: number
}

export interface RegisteredHandler {
  unregister: (options?: AbortOptions) => Promise<void>
  /** Requests answered and requests dropped as bad, for tests and metrics. */
  stats: () => { served: number, dropped: number }
}

/** A protocol handler as a service: registered by `register` on start, unregistered on stop. */
export function servedWhileStarted (register: () => Promise<Pick<RegisteredHandler, 'unregister'>>): Startable {
  let handler: Pick<RegisteredHandler, 'unregister'> | undefined
  return {
    start: async () => { handler = await register() },
    stop: async () => {
      await handler?.unregister()
      handler = undefined
    }
  }
}

/**
 * Serve one request/response protocol. A broken frame (bad prefix, over the
 * limit, truncated) resets the stream; a well-framed but invalid message gets
 * an error answer, then the stream is closed. Either way it is logged,
 * rate-limited per peer, and the node carries on.
 */
export async function handleRequests<S extends z.ZodType> (registrar: HandlerRegistrar, init: HandlerInit<S>): Promise<RegisteredHandler> {
  const maxFrameBytes = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
  const requestTimeoutMs = init.requestTimeoutMs ?? 5_000
  const responseTimeoutMs = init.responseTimeoutMs ?? 10_000
  const limiter = createLogLimiter()
  const log = init.log
  const counts = { served: 0, dropped: 0 }

  const onStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const remote = connection.remotePeer
    const io = framed(stream, { maxFrameBytes })
    let req: z.output<S>
    const read = deadline(requestTimeoutMs, () => new RequestTimeoutError(`request not received within ${requestTimeoutMs} ms`))
    try {
      req = await io.readJson(init.requestSchema, { signal: read.signal })
    } catch (err) {
      const reason = abortReasonOr(read.signal, err)
      report(remote, reason)
      if (reason instanceof InvalidMessageError) {
        // The frame itself was fine, so the stream is in a known state: say why before closing.
        await answer(stream, io, { ok: false, error: { name: reason.name, message: reason.message } }, responseTimeoutMs)
      } else {
        stream.abort(reason instanceof Error ? reason : new ProtocolError(errorMessage(reason)))
      }
      return
    } finally {
      read.clear()
    }

    const work = deadline(responseTimeoutMs, () => new ResponseTimeoutError(`handler did not answer within ${responseTimeoutMs} ms`))
    try {
      const body = await init.handle(req, { remotePeer: remote, signal: work.signal })
      counts.served++
      await answer(stream, io, { ok: true, body }, responseTimeoutMs)
    } catch (err) {
      const reason = abortReasonOr(work.signal, err)
      // Rate-limited like the drops: any peer can make a handler refuse (a Register to a node that does not lead),
      // and the fuzz test's peer made one node write 1,500 of these lines in 100 s.
      const peer = remote.toString()
      const suppressed = limiter.admit(`${peer}:failed`)
      if (suppressed !== undefined) log.warn({ protocol: init.protocol, peer, err: errorMessage(reason), suppressed }, 'request handler failed')
      const name = reason instanceof Error ? reason.name : 'Error'
      await answer(stream, io, { ok: false, error: { name, message: errorMessage(reason).slice(0, 4000) } }, responseTimeoutMs)
    } finally {
      work.clear()
    }
  }

  const report = (remote: PeerId, err: unknown): void => {
    counts.dropped++
    const peer = remote.toString()
    const suppressed = limiter.admit(peer)
    if (suppressed === undefined) return
    const level = err instanceof InvalidFrameError || err instanceof InvalidMessageError ? 'warn' : 'debug'
    log[level]({ protocol: init.protocol, peer, err: errorMessage(err), errName: err instanceof Error ? err.name : typeof err, suppressed }, 'dropped bad request')
  }

  await registrar.handle(init.protocol, (stream, connection) => {
    onStream(stream, connection).catch((err: unknown) => {
      log.debug({ protocol: init.protocol, err: errorMessage(err) }, 'stream handler ended with error')
      stream.abort(err instanceof Error ? err : new ProtocolError(errorMessage(err)))
    })
  }, { maxInboundStreams: init.maxInboundStreams ?? 32 })

  return {
    unregister: async (options) => { await registrar.unhandle(init.protocol, options) },
    stats: () => ({ ...counts })
  }
}

async function answer (stream: Stream, io: ReturnType<typeof framed>, envelope: unknown, timeoutMs: number): Promise<void> {
  const d = deadline(timeoutMs, () => new ResponseTimeoutError(`response not written within ${timeoutMs} ms`))
  try {
    await io.writeJson(envelope, { signal: d.signal })
    await stream.close({ signal: d.signal })
  } catch (err) {
    stream.abort(err instanceof Error ? err : new ProtocolError(errorMessage(err)))
  } finally {
    d.clear()
  }
}

