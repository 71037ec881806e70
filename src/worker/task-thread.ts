// Entry point of a task thread: runs one task at a time, sent by the node's
// main thread, so a long map never delays heartbeats or the serving of data.
// An exception nothing caught ends the thread; the pool sees it as `error`.
import { parentPort } from 'node:worker_threads'
import { heapCollector } from './heap-collector.js'
import { SPARE_IDLE_MS, TASK_COLLECT_AFTER_MB, TASK_NICE } from './task-defaults.js'
import { lowerThreadPriority } from './task-priority.js'
import { createTaskRuntime, failure } from './task-runtime.js'
import type { RunnerLog, TaskRequest, ThreadReply } from './thread-messages.js'

const port = parentPort
if (port === null) throw new Error('task-thread must run in a worker thread')
lowerThreadPriority(TASK_NICE)
const collect = heapCollector(TASK_COLLECT_AFTER_MB * 2 ** 20)
const runtime = createTaskRuntime({ onSplitDone: collect })

// A thread left idle lets go of the split buffer it keeps for its next map.
let idle: NodeJS.Timeout | undefined
port.on('message', (msg: TaskRequest) => {
  clearTimeout(idle)
  const output = (log: string, cut: number): void => { port.postMessage({ id: msg.id, log, cut } satisfies RunnerLog) }
  runtime.run(msg.task, output).then(
    (reply) => { port.postMessage({ id: msg.id, ...reply } satisfies ThreadReply) },
    (err: unknown) => { port.postMessage({ id: msg.id, ok: false, error: failure(err) } satisfies ThreadReply) }
  ).finally(() => {
    idle = setTimeout(() => { runtime.dropSpare(); collect() }, SPARE_IDLE_MS).unref()
    collect()
  })
})
