import type { Startable } from '@libp2p/interface'
import type { z } from 'zod'
import { LOGS_FRAME_BYTES, LOGS_PROTOCOL, LogsRequest, type LogsResponse } from '../protocol/log-messages.js'
import type { RegisteredHandler } from '../protocol/reqresp.js'
import type { AttemptLogs } from './attempt-logs.js'
import type { WorkerRpc } from './worker-components.js'

/** Serves this node's attempt logs (`mrp2p logs`, the dashboard) for as long as the worker runs. */
export class LogServer implements Startable {
  private handler: RegisteredHandler | undefined

  constructor (private readonly rpc: WorkerRpc, private readonly logs: AttemptLogs) {}

  async start (): Promise<void> {
    this.handler = await this.rpc.serve(LOGS_PROTOCOL, LogsRequest, (req): z.input<typeof LogsResponse> => this.logs.read(req.jobId, { task: req.task, after: req.after }), { maxFrameBytes: LOGS_FRAME_BYTES })
  }

  async stop (): Promise<void> {
    await this.handler?.unregister()
    this.handler = undefined
  }
}
