import type { Command } from 'commander'

/**
 * Every sub-command lives in its own file and exports one `register…` function;
 * this list is the only place that knows them all.
 */
export function registerCommands (program: Command): void {
  void program
}
