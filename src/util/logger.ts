import { pino, type Logger } from 'pino'

export type { Logger }

/**
 * One logger for the whole process. Logs go to stderr as JSON lines so that a
 * command's stdout stays the user's (part files, tables, `ready` lines).
 * MRP2P_LOG_LEVEL picks the level; the CLI lowers the default for one-shot
 * commands so that only warnings reach a person's terminal.
 */
let root: Logger | undefined

function rootLogger (): Logger {
  if (root === undefined) {
    root = pino(
      { level: process.env.MRP2P_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
      pino.destination({ fd: 2, sync: true })
    )
  }
  return root
}

export function setLogLevel (level: string): void {
  rootLogger().level = level
}

export function createLogger (component: string): Logger {
  return rootLogger().child({ component })
}
