import type { AbortOptions, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { z } from 'zod'
import type { Logger } from '../util/logger.js'
import { errorMessage } from '../util/errors.js'
import { FrameReader, writeJsonFrame } from './bulk.js'
import { dialFailure, DialTimeoutError, InvalidFrameError, InvalidMessageError, ProtocolError, RequestTimeoutError } from './errors.js'
import { createLogLimiter } from '../util/log-limiter.js'
import type { HandlerRegistrar, RegisteredHandler, StreamOpener } from './reqresp.js'
import { abortReasonOr, deadline } from './timeouts.js'

export interface BulkExchange {
  stream: Stream
  reader: FrameReader
}

/** Opens a bulk stream and sends its request header; the caller reads or writes the rest. */
export async function openBulk (opener: StreamOpener, peer: PeerId | Multiaddr | Multiaddr[], protocol: string, header: unknown, options: AbortOptions & { dialMs?: number } = {}): Promise<BulkExchange> {
  const dialMs = options.dialMs ?? 5_000
  const d = deadline(dialMs, () => new DialTimeoutError(`could not open ${protocol} within ${dialMs} ms`), options.signal)
  let stream: Stream
  try {
    stream = await opener.dialProtocol(peer, protocol, { signal: d.signal })
  } catch (err) {
    const reason = abortReasonOr(d.signal, err)
    if (reason instanceof DialTimeoutError || options.signal?.aborted === true) throw reason
    throw dialFailure(protocol, err)
  } finally {
    d.clear()
  }
  const reader = new FrameReader(stream)
  try {
    await writeJsonFrame(stream, header, options)
  } catch (err) {
    stream.abort(err instanceof Error ? err : new ProtocolError(errorMessage(err)))
    throw err
  }
  return { stream, reader }
}

/**
 * Opens a bulk stream, sends its request header, lets `use` read or write the rest, and ends the stream
 * whatever `use` did: closed after a complete exchange, aborted after a failed one, since a close waits on a
 * peer that may be gone and a caller that was stopped must not wait on it.
 */
export async function withBulkStream<T> (opener: StreamOpener, peer: PeerId | Multiaddr | Multiaddr[], protocol: string, header: unknown, options: AbortOptions & { dialMs?: number }, use: (exchange: BulkExchange) => Promise<T>): Promise<T> {
  const exchange = await openBulk(opener, peer, protocol, header, options)
  let result: T
  try {
    result = await use(exchange)
  } catch (err) {
    exchange.stream.abort(err instanceof Error ? err : new ProtocolError(errorMessage(err)))
    throw err
  }
  await exchange.stream.close({ signal: options.signal }).catch(() => {})
  return result
}

export interface BulkHandlerContext extends AbortOptions {
  remotePeer: PeerId
  stream: Stream
  reader: FrameReader
}

export interface BulkHandlerInit<S extends z.ZodType> {
  protocol: string
  requestSchema: S
  /** Reads/writes the rest of the exchange; throwing resets the stream. */
  handle: (request: z.output<S>, context: BulkHandlerContext) => Promise<void>
  log: Logger
  requestTimeoutMs?: number
  /** Bound on the whole exchange (a bulk transfer of a large part takes a while). */
  exchangeTimeoutMs?: number
  maxInboundStreams?: number
}

/**
 * What {@link handleBulk} registered: `unregister` removes the protocol's handler and ends the exchanges still in
 * flight, so a stopped service serves nothing and no transfer of it (nor its deadline timer) outlives it.
 */
export type BulkHandlerRegistration = Pick<RegisteredHandler, 'unregister'>

/** Serves a bulk protocol: a bad header resets the stream and is logged (rate-limited per peer); the node carries on. */
export async function handleBulk<S extends z.ZodType> (registrar: HandlerRegistrar, init: BulkHandlerInit<S>): Promise<BulkHandlerRegistration> {
  const limiter = createLogLimiter()
  const requestTimeoutMs = init.requestTimeoutMs ?? 5_000
  const exchangeTimeoutMs = init.exchangeTimeoutMs ?? 10 * 60_000
  const serving = new AbortController()
  await registrar.handle(init.protocol, (stream, connection) => {
    const reader = new FrameReader(stream)
    const run = async (): Promise<void> => {
      const read = deadline(requestTimeoutMs, () => new RequestTimeoutError(`request not received within ${requestTimeoutMs} ms`), serving.signal)
      let req: z.output<S>
      try {
        req = await reader.json(init.requestSchema, { signal: read.signal })
      } catch (err) {
        throw abortReasonOr(read.signal, err)
      } finally {
        read.clear()
      }
      const work = deadline(exchangeTimeoutMs, () => new RequestTimeoutError(`exchange not complete within ${exchangeTimeoutMs} ms`), serving.signal)
      try {
        await init.handle(req, { remotePeer: connection.remotePeer, stream, reader, signal: work.signal })
        await stream.close({ signal: work.signal })
      } catch (err) {
        throw abortReasonOr(work.signal, err)
      } finally {
        work.clear()
      }
    }
    run().catch((err: unknown) => {
      const peer = connection.remotePeer.toString()
      const suppressed = limiter.admit(peer)
      // Garbage from a peer is worth a warning; a peer that died mid-transfer is an expected fault, handled by retries.
      const level = err instanceof InvalidFrameError || err instanceof InvalidMessageError ? 'warn' : 'debug'
      if (suppressed !== undefined) init.log[level]({ protocol: init.protocol, peer, err: errorMessage(err), suppressed }, 'bulk exchange failed')
      stream.abort(err instanceof Error ? err : new ProtocolError(errorMessage(err)))
    })
  }, { maxInboundStreams: init.maxInboundStreams ?? 64 })
  return {
    unregister: async (options) => {
      await registrar.unhandle(init.protocol, options)
      serving.abort(new ProtocolError(`${init.protocol} is no longer served here`))
    }
  }
}
