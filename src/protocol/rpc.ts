import { peerIdFromString } from '@libp2p/peer-id'
import type { z } from 'zod'
import type { Logger } from '../util/logger.js'
import { RemoteError } from './errors.js'
import { decodeJson, encodeJson } from './framing.js'
import { handleRequests, request, type HandlerRegistrar, type RequestOptions, type StreamOpener } from './reqresp.js'

type Handler = (request: unknown, from: string, signal: AbortSignal | undefined) => Promise<unknown>

/**
 * Request/response by peer id, where a call to this node itself (a 1-node
 * mesh: the coordinator is its own worker) skips the network but not the
 * schemas: the request and the answer are encoded and validated exactly as
 * they would be on the wire.
 */
export class Rpc {
  private readonly local = new Map<string, Handler>()

  constructor (private readonly self: string, private readonly network: StreamOpener & HandlerRegistrar, private readonly log: Logger) {}

  async serve<S extends z.ZodType> (protocol: string, requestSchema: S, handle: (request: z.output<S>, from: string, signal?: AbortSignal) => Promise<unknown> | unknown): Promise<void> {
    this.local.set(protocol, async (req, from, signal) => await handle(decodeJson(requestSchema, encodeJson(req)), from, signal))
    await handleRequests(this.network, {
      protocol,
      requestSchema,
      log: this.log,
      handle: async (req, ctx) => await handle(req, ctx.remotePeer.toString(), ctx.signal)
    })
  }

  async call<S extends z.ZodType> (peer: string, protocol: string, body: unknown, responseSchema: S, options: RequestOptions = {}): Promise<z.output<S>> {
    if (peer === this.self) {
      const handler = this.local.get(protocol)
      if (handler === undefined) throw new RemoteError('UnsupportedProtocolError', `${protocol} is not served here`)
      let answer: unknown
      try {
        answer = await handler(body, this.self, options.signal)
      } catch (err) {
        throw new RemoteError(err instanceof Error ? err.name : 'Error', err instanceof Error ? err.message : String(err))
      }
      return decodeJson(responseSchema, encodeJson(answer))
    }
    return await request(this.network, peerIdFromString(peer), protocol, body, responseSchema, options)
  }
}
