import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { AbortOptions, Stream } from '@libp2p/interface'
import type { z } from 'zod'
import { errorMessage } from '../util/errors.js'
import { InvalidFrameError, InvalidMessageError, ProtocolError, StreamEndedError } from './errors.js'

/**
 * Control messages are small: a view of 20 members is a few KiB. The limit
 * exists so that a broken or hostile peer cannot make us buffer megabytes on
 * the strength of one length prefix.
 */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024

export interface FramedStreamOptions {
  maxFrameBytes?: number
}

/**
 * Varint-length-prefixed JSON frames over one libp2p 3 stream. Every frame
 * read is parsed and validated with a zod schema before anyone sees it, so
 * code past this point only ever holds well-typed messages.
 */
export interface FramedStream {
  readonly stream: Stream
  /** The next frame's raw bytes; InvalidFrameError / StreamEndedError on broken framing. */
  readFrame: (options?: AbortOptions) => Promise<Uint8Array>
  readJson: <S extends z.ZodType>(schema: S, options?: AbortOptions) => Promise<z.output<S>>
  writeFrame: (bytes: Uint8Array, options?: AbortOptions) => Promise<void>
  writeJson: (value: unknown, options?: AbortOptions) => Promise<void>
}

const FRAMING_ERRORS = new Set(['InvalidMessageLengthError', 'InvalidDataLengthError', 'InvalidDataLengthLengthError', 'StreamBufferError'])

export function framed (stream: Stream, options: FramedStreamOptions = {}): FramedStream {
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
  // The byte buffer must hold one whole frame plus its prefix; anything more is an overflow.
  const lp: LengthPrefixedStream<Stream> = lpStream(stream, { maxDataLength: maxFrameBytes, maxBufferSize: maxFrameBytes + 16 })

  const readFrame = async (opts?: AbortOptions): Promise<Uint8Array> => {
    try {
      const list = await lp.read(opts)
      return list.subarray()
    } catch (err) {
      throw translateReadError(err, opts)
    }
  }

  return {
    stream,
    readFrame,
    async readJson (schema, opts) {
      const bytes = await readFrame(opts)
      return decodeJson(schema, bytes)
    },
    async writeFrame (bytes, opts) {
      if (bytes.byteLength > maxFrameBytes) throw new InvalidFrameError(`frame of ${bytes.byteLength} bytes exceeds the limit of ${maxFrameBytes}`)
      await lp.write(bytes, opts)
    },
    async writeJson (value, opts) {
      const bytes = encodeJson(value)
      if (bytes.byteLength > maxFrameBytes) throw new InvalidFrameError(`message of ${bytes.byteLength} bytes exceeds the limit of ${maxFrameBytes}`)
      await lp.write(bytes, opts)
    }
  }
}

export function encodeJson (value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}

/** Parse and validate one frame's body; InvalidMessageError names what was wrong. */
export function decodeJson<S extends z.ZodType> (schema: S, bytes: Uint8Array): z.output<S> {
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new InvalidMessageError(`frame is not UTF-8 JSON: ${errorMessage(err)}`)
  }
  return validate(schema, parsed, 'message')
}

/** Validates a decoded value; InvalidMessageError names the first field that is wrong. */
export function validate<S extends z.ZodType> (schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value)
  if (!result.success) {
    const issue = result.error.issues[0]
    const where = issue === undefined || issue.path.length === 0 ? '' : ` at ${issue.path.join('.')}`
    throw new InvalidMessageError(`${what} fails its schema${where}: ${issue?.message ?? 'invalid'}`)
  }
  return result.data
}

function translateReadError (err: unknown, opts?: AbortOptions): unknown {
  // An abort is the caller's own timeout or cancel: let its reason through untouched.
  if (opts?.signal?.aborted === true) return opts.signal.reason ?? err
  if (err instanceof ProtocolError) return err
  const name = err instanceof Error ? err.name : ''
  if (FRAMING_ERRORS.has(name)) return new InvalidFrameError(errorMessage(err))
  if (name === 'UnexpectedEOFError') return new StreamEndedError(errorMessage(err))
  return err
}
