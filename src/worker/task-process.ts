// Entry point of a sandboxed task process (`mrp2p join --sandbox`): started
// by the node for one attempt under Node's permission model, it runs that one
// task, sends the reply over the IPC channel and waits to be ended. What the
// process may read and write was fixed on its command line by task-sandbox.ts.
import { resolve } from 'node:path'
import { userStack } from '../mapreduce/user-code.js'
import { TASK_NICE } from './task-defaults.js'
import { lowerThreadPriority } from './task-priority.js'
import { createTaskRuntime, failure } from './task-runtime.js'
import type { RunnerCrash, RunnerLog, RunnerReady, TaskRequest, ThreadReply } from './thread-messages.js'

const send = process.send?.bind(process)
if (send === undefined) throw new Error('task-process must be started by the node with an IPC channel')

/** Node's permission model only says "Access to this API has been restricted": say which permission, and for what. */
function explainDenied (err: unknown): void {
  if (!(err instanceof Error) || (err as NodeJS.ErrnoException).code !== 'ERR_ACCESS_DENIED') return
  const { permission, resource } = err as Error & { permission?: unknown, resource?: unknown }
  if (err.message.includes('(sandbox:')) return
  // A relative path is named as the job gave it; the permission was checked against it resolved from the work folder.
  const what = typeof resource === 'string' && resource !== '' ? ` for ${resolve(resource)}` : ''
  err.message = `${err.message} (sandbox: permission ${String(permission ?? 'unknown')} denied${what}; a sandboxed task may read only its job's code and input, write only its work folder, and start no process or thread)`
}

// Its own process, but the same reason as a task thread: the node's main thread serves and pulls map output.
lowerThreadPriority(TASK_NICE)
const runtime = createTaskRuntime({ explainError: explainDenied })

// Job code that throws from a timer, or leaves a promise rejected, ends this process: say why first.
process.on('uncaughtException', (err) => {
  explainDenied(err)
  const crash: RunnerCrash = { crash: true, message: err instanceof Error ? err.message : String(err), stack: userStack(err) }
  send(crash, undefined, undefined, () => { process.exit(70) })
})

// The node went away (stopped, or killed): nobody is left to take a reply.
process.on('disconnect', () => { process.exit(0) })

process.once('message', (msg: TaskRequest) => {
  const output = (log: string, cut: number): void => { send({ id: msg.id, log, cut } satisfies RunnerLog) }
  runtime.run(msg.task, output).then(
    (reply) => { send({ id: msg.id, ...reply } satisfies ThreadReply) },
    (err: unknown) => { send({ id: msg.id, ok: false, error: failure(err) } satisfies ThreadReply) }
  )
})

send({ ready: true } satisfies RunnerReady)
