import { createHash } from 'node:crypto'
import { z } from 'zod'

/**
 * A streaming job (Hadoop Streaming's contract, docs/streaming.md): shell commands instead of a JavaScript module.
 * This schema is the one definition of its shape: `submit` builds it, the job spec carries it (protocol/job-messages.ts),
 * and the engine's streaming tasks take its type. The runtime modules import only the type, so that a sandboxed task
 * process never loads zod.
 */

/** `--file` content travels by hash, fetched once per node like job code; this bounds one file in memory. */
export const MAX_STREAMING_FILE_BYTES = 64 * 1024 * 1024
export const MAX_STREAMING_FILES = 64

const Command = z.string().min(1).max(16 * 1024)
/** A base name: no folder, no NUL, not `.` or `..`, so a file lands in the attempt's own folder and nowhere else. */
const FileName = z.string().min(1).max(255).regex(/^[^/\0]+$/).refine((n) => n !== '.' && n !== '..', 'a file name cannot be . or ..')
/** An environment variable's name, as POSIX shells accept them. */
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/

export const StreamingFileSchema = z.object({
  name: FileName,
  /** sha256 of its bytes, hex. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().min(0).max(MAX_STREAMING_FILE_BYTES)
})
export type StreamingFile = z.output<typeof StreamingFileSchema>

export const StreamingJobSchema = z.object({
  /** Run by `/bin/sh -c` with the split's lines on stdin; writes `key<TAB>value` lines. */
  mapper: Command,
  /** Run by `/bin/sh -c` with its partition's `key<TAB>value` lines, in key order, on stdin; its stdout is the part file. */
  reducer: Command,
  /** Optional: gets one map's output as sorted `key<TAB>value` lines; its output lines replace them. */
  combiner: Command.optional(),
  /** `--file`: present under its base name in every command's working folder. */
  files: z.array(StreamingFileSchema).max(MAX_STREAMING_FILES)
    .refine((files) => new Set(files.map((f) => f.name)).size === files.length, 'two --file entries have the same base name'),
  /** `--cmdenv K=V`: set for every command. */
  env: z.record(z.string().regex(ENV_NAME_PATTERN).max(256), z.string().max(16 * 1024))
    .refine((env) => Object.keys(env).length <= 256, 'at most 256 --cmdenv variables')
})
export type StreamingJob = z.output<typeof StreamingJobSchema>

/**
 * The job's code hash (the spec's `codeHash`): its commands, files and environment, in a fixed order. It names the
 * job's code in its history record as a module's bundle hash does, and a worker checks the spec against it.
 */
export function streamingCodeHash (job: StreamingJob): string {
  const canonical = {
    mapper: job.mapper,
    reducer: job.reducer,
    combiner: job.combiner ?? null,
    files: job.files.map((f) => [f.name, f.hash, f.bytes]),
    env: Object.keys(job.env).sort().map((k) => [k, job.env[k]])
  }
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex')
}
