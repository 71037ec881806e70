import { setLogLevel } from '../util/logger.js'
import { envValue } from '../util/env.js'

/**
 * One-shot commands (submit, status, demo) show a person only warnings,
 * unless MRP2P_LOG_LEVEL asks for more; a node (`join`) keeps the logger's
 * default, since its logs are what an operator reads.
 */
export function quietUnlessLogLevelSet (): void {
  if (envValue(process.env, 'MRP2P_LOG_LEVEL') === undefined) setLogLevel('warn')
}
