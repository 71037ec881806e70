import type { Command } from 'commander'
import { registerDemoCommand } from './demo.js'
import { registerRunCommand } from './run.js'

/**
 * Every sub-command lives in its own file and exports one `register…` function;
 * this list is the only place that knows them all.
 */
export function registerCommands (program: Command): void {
  registerRunCommand(program)
  registerDemoCommand(program)
}
