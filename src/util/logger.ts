// One logger for the whole process. Logs go to stderr as JSON lines so that a command's stdout stays the user's
// (part files, tables, `ready` lines). MRP2P_LOG_LEVEL picks the level; the CLI lowers the default for one-shot
// commands so that only warnings reach a person's terminal.
import { pino, type Logger } from 'pino'
import { envValue, type Env } from './env.js'
import { InvalidArgumentError } from './errors.js'

export type { Logger }

let root: Logger | undefined

const LEVELS = Object.keys(pino.levels.values).concat('silent')

/**
 * The level MRP2P_LOG_LEVEL asks for (unset or blank: info). A level pino does not know is refused in one line
 * (the CLI checks it before it does anything), rather than pino's stack trace at the first log line.
 */
export function logLevelFromEnv (env: Env = process.env): string {
  const level = envValue(env, 'MRP2P_LOG_LEVEL') ?? 'info'
  if (!LEVELS.includes(level)) throw new InvalidArgumentError(`MRP2P_LOG_LEVEL must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(level)}`)
  return level
}

function rootLogger (): Logger {
  if (root === undefined) {
    let level: string
    try { level = logLevelFromEnv() } catch { level = 'info' }
    root = pino(
      { level, base: { pid: process.pid } },
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

/**
 * The one logger a node hands its services (as js-libp2p's ComponentLogger): each takes a child named for its
 * own component, so a line says `component` once and a test or an embedding program decides where lines go.
 */
export interface ComponentLogger {
  forComponent: (component: string) => Logger
}

/** The process's logger (stderr, MRP2P_LOG_LEVEL), by component. */
export function processLogger (): ComponentLogger {
  return { forComponent: createLogger }
}

/** Every component's lines into `base`, each with its name: a test's capture, say. */
export function componentLogger (base: Logger): ComponentLogger {
  return { forComponent: (component) => base.child({ component }) }
}
