// Entry point of a task thread: runs one task at a time, sent by the node's
// main thread, so a long map never delays heartbeats or the serving of data.
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { parentPort } from 'node:worker_threads'
import type { Job } from '../mapreduce/job-api.js'
import { readSplit } from '../mapreduce/splits.js'
import { runMapTask } from '../mapreduce/map-task.js'
import { runReduceTask } from '../mapreduce/reduce-task.js'
import { InputError, isUserFacingError, UserCodeError } from '../util/errors.js'
import type { ThreadFailure, ThreadReply, ThreadTask } from './thread-messages.js'

const port = parentPort
if (port === null) throw new Error('task-thread must run in a worker thread')
process.setSourceMapsEnabled(true)

const jobs = new Map<string, Promise<Job>>()

async function loadJob (codeFile: string): Promise<Job> {
  let job = jobs.get(codeFile)
  if (job === undefined) {
    job = import(pathToFileURL(codeFile).href).then((mod: Record<string, unknown>) =>
      (typeof mod.default === 'object' && mod.default !== null ? mod.default : mod) as Job)
    jobs.set(codeFile, job)
  }
  return await job
}

async function run (task: ThreadTask): Promise<Omit<Extract<ThreadReply, { ok: true }>, 'id'>> {
  const job = await loadJob(task.codeFile)
  if (task.kind === 'map') {
    const contents = task.splitLength === undefined
      ? readFileSync(task.splitFile).toString('utf8')
      : readShared(task.splitFile, task.splitOffset ?? 0, task.splitLength)
    return { ok: true, map: await runMapTask({ ...task, job, contents }) }
  }
  return { ok: true, reduce: runReduceTask({ ...task, job }) }
}

/** A `--shared` input that this node cannot read is the job's mistake, not this node's: it counts toward the job's attempts. */
function readShared (path: string, offset: number, length: number): string {
  try {
    return readSplit({ path, offset, length })
  } catch (err) {
    throw new InputError(`shared input ${path} cannot be read on this node: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

function failure (err: unknown): ThreadFailure {
  if (err instanceof UserCodeError) return { message: err.message, stack: err.userStack, userCode: true }
  if (err instanceof InputError) return { message: err.message, userCode: true }
  if (isUserFacingError(err)) return { message: err.message, userCode: false }
  return { message: err instanceof Error ? err.message : String(err), userCode: false }
}

port.on('message', (msg: { id: number, task: ThreadTask }) => {
  run(msg.task).then(
    (reply) => { port.postMessage({ id: msg.id, ...reply } satisfies ThreadReply) },
    (err: unknown) => { port.postMessage({ id: msg.id, ok: false, error: failure(err) } satisfies ThreadReply) }
  )
})
