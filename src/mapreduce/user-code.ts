import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { UserCodeError } from '../util/errors.js'

const ENGINE_DIR = dirname(fileURLToPath(import.meta.url))

/** The user's part of a stack: the frames above the first frame of this engine. */
export function userStack (err: unknown): string | undefined {
  if (!(err instanceof Error) || err.stack === undefined) return undefined
  const lines = err.stack.split('\n')
  const cut = lines.findIndex((line, i) => i > 0 && line.includes(ENGINE_DIR))
  return (cut === -1 ? lines : lines.slice(0, cut)).join('\n')
}

/** Wraps anything the job's own code threw, naming the job and what it was working on. */
export function userCodeError (jobName: string, what: string, err: unknown): UserCodeError {
  if (err instanceof UserCodeError) return err
  const reason = err instanceof Error ? err.message : String(err)
  return new UserCodeError(`job ${jobName}: ${what}: ${reason}`, userStack(err))
}
