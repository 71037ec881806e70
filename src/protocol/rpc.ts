import { peerIdFromString } from '@libp2p/peer-id'
import type { z } from 'zod'
import type { Logger } from '../util/logger.js'
import { RemoteError } from './errors.js'
import { decodeJson, encodeJson } from './framing.js'
import { handleRequests, request, type HandlerRegistrar, type RegisteredHandler, type RequestOptions, type StreamOpener } from './reqresp.js'

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

  /**
   * Serves `protocol` on the network and to this node's own calls. The handle's `unregister` undoes both, so a
   * service that stops leaves no handler behind (a later `call` to self then fails as to any peer without it).
   */
  async serve<S extends z.ZodType> (protocol: string, requestSchema: S, handle: (request: z.output<S>, from: string, signal?: AbortSignal) => Promise<unknown> | unknown, options: { maxFrameBytes?: number } = {}): Promise<RegisteredHandler> {
    const local: Handler = async (req, from, signal) => await handle(decodeJson(requestSchema, encodeJson(req)), from, signal)
    this.local.set(protocol, local)
    const remote = await handleRequests(this.network, {
      protocol,
      requestSchema,
      log: this.log,
      maxFrameBytes: options.maxFrameBytes,
      handle: async (req, ctx) => await handle(req, ctx.remotePeer.toString(), ctx.signal)
    })
    return {
      unregister: async (options) => {
        if (this.local.get(protocol) === local) this.local.delete(protocol)
        await remote.unregister(options)
      },
      stats: remote.stats
    }
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
