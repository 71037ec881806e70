import type { Command } from 'commander'
import { registerCancelCommand } from './cancel.js'
import { registerClusterCommand } from './cluster.js'
import { registerDatasetCommands } from './datasets.js'
import { registerDemoCommand } from './demo.js'
import { registerJobCommand } from './job.js'
import { registerJobsCommand } from './jobs.js'
import { registerJoinCommand } from './join.js'
import { registerKeygenCommand } from './keygen.js'
import { registerLogsCommand } from './logs.js'
import { registerRunCommand } from './run.js'
import { registerStatusCommand } from './status.js'
import { registerSubmitCommand } from './submit.js'
import { registerWaitCommand } from './wait.js'

/**
 * Every sub-command lives in its own file and exports one `register…` function;
 * this list is the only place that knows them all.
 */
export function registerCommands (program: Command): void {
  registerRunCommand(program)
  registerDemoCommand(program)
  registerJoinCommand(program)
  registerSubmitCommand(program)
  registerStatusCommand(program)
  registerJobsCommand(program)
  registerJobCommand(program)
  registerLogsCommand(program)
  registerCancelCommand(program)
  registerDatasetCommands(program)
  registerWaitCommand(program)
  registerClusterCommand(program)
  registerKeygenCommand(program)
}
