import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import type { Command } from 'commander'
import type { CommandFile } from '../mapreduce/command-folder.js'
import { ENV_NAME_PATTERN, MAX_STREAMING_FILE_BYTES, MAX_STREAMING_FILES, StreamingJobSchema, type StreamingJob } from '../mapreduce/streaming-job.js'
import { InvalidArgumentError } from '../util/errors.js'

/** What commander parses of a streaming job's flags (docs/streaming.md). */
export interface StreamingFlags {
  mapper?: string
  reducer?: string
  combiner?: string
  file: string[]
  cmdenv: Record<string, string>
}

/** The job name a streaming job goes by in `jobs`, logs and errors. */
export const STREAMING_JOB_NAME = 'streaming'

function collect (raw: string, acc: string[] = []): string[] {
  return [...acc, raw]
}

function collectEnv (raw: string, acc: Record<string, string> = {}): Record<string, string> {
  const eq = raw.indexOf('=')
  const name = eq < 1 ? '' : raw.slice(0, eq)
  if (!ENV_NAME_PATTERN.test(name)) throw new InvalidArgumentError(`--cmdenv takes NAME=value with NAME a variable name (letters, digits, _), got '${raw}'`)
  return { ...acc, [name]: raw.slice(eq + 1) }
}

/** Adds Hadoop Streaming's flags to `run` or `submit`: the one place they become flags. */
export function addStreamingFlags (command: Command): Command {
  return command
    .option('--mapper <command>', 'streaming job: a shell command that reads input lines on stdin and writes key<TAB>value lines (instead of <job>)')
    .option('--reducer <command>', 'streaming job: a shell command that reads key<TAB>value lines in key order on stdin; its stdout is the part file')
    .option('--combiner <command>', 'streaming job: a shell command run over each map\'s sorted output; its lines replace it')
    .option('--file <path>', 'streaming job: a file every command finds under its base name in its working folder (repeatable)', collect, [])
    .option('--cmdenv <name=value>', 'streaming job: a variable set for every command (repeatable)', collectEnv, {})
}

/** A streaming job ready to run or submit: its commands and where each file is here. */
export interface ResolvedStreaming {
  streaming: StreamingJob
  files: CommandFile[]
}

/**
 * The job the command line names: a module (`<job>`) or a streaming job (`--mapper` and `--reducer`), never both.
 * A streaming job's files are read and hashed here, so a missing or oversized one is refused before anything runs.
 */
export async function resolveStreaming (jobArg: string | undefined, flags: StreamingFlags, cwd = process.cwd()): Promise<ResolvedStreaming | undefined> {
  const streamingFlag = flags.mapper !== undefined || flags.reducer !== undefined || flags.combiner !== undefined ||
    flags.file.length > 0 || Object.keys(flags.cmdenv).length > 0
  if (!streamingFlag) {
    if (jobArg === undefined) throw new InvalidArgumentError('name a job (wc, indexer, grep, sort or a .ts/.js module), or a streaming job with --mapper and --reducer')
    return undefined
  }
  if (jobArg !== undefined) throw new InvalidArgumentError(`give either a job module ('${jobArg}') or --mapper/--reducer commands, not both`)
  if (flags.mapper === undefined || flags.mapper.trim() === '') throw new InvalidArgumentError('a streaming job needs --mapper <command>')
  if (flags.reducer === undefined || flags.reducer.trim() === '') throw new InvalidArgumentError('a streaming job needs --reducer <command> (use --reducer cat to keep the sorted map output)')
  if (flags.file.length > MAX_STREAMING_FILES) throw new InvalidArgumentError(`at most ${MAX_STREAMING_FILES} --file, got ${flags.file.length}`)
  const files: CommandFile[] = []
  const refs: StreamingJob['files'] = []
  for (const given of flags.file) {
    const path = resolve(cwd, given)
    const name = basename(path)
    if (files.some((f) => f.name === name)) throw new InvalidArgumentError(`--file ${given}: another --file is also named ${name}`)
    let bytes: Buffer
    try {
      const st = await stat(path)
      if (!st.isFile()) throw new InvalidArgumentError(`--file ${given} is not a regular file`)
      if (st.size > MAX_STREAMING_FILE_BYTES) throw new InvalidArgumentError(`--file ${given} is ${st.size} bytes; a file is at most ${MAX_STREAMING_FILE_BYTES / 2 ** 20} MiB (put larger data in the input)`)
      bytes = await readFile(path)
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw err
      const code = (err as NodeJS.ErrnoException).code
      throw new InvalidArgumentError(code === 'ENOENT' ? `--file ${given} does not exist` : `--file ${given} cannot be read: ${code ?? String(err)}`)
    }
    files.push({ name, path })
    refs.push({ name, hash: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length })
  }
  const parsed = StreamingJobSchema.safeParse({ mapper: flags.mapper, reducer: flags.reducer, combiner: flags.combiner, files: refs, env: flags.cmdenv })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidArgumentError(`streaming job: ${issue.path.length > 0 ? `--${String(issue.path[0])}: ` : ''}${issue.message}`)
  }
  return { streaming: parsed.data, files }
}
