import { DEFAULT_MAX_JOBS } from '../coordinator/coordinator-defaults.js'
import { DEFAULT_HISTORY_DAYS, DEFAULT_HISTORY_JOBS } from '../history/history-store.js'
import { flagOrEnv, type Env } from '../util/env.js'
import { byteSize, parseIntArg } from './arg-parsers.js'
import { DEFAULT_MIN_FREE_DISK_BYTES } from '../worker/disk-reserve.js'
import { DEFAULT_REPAIR_AFTER_MS } from '../dataset/departure-grace.js'

/**
 * A node's resource limits (docs/security.md): what a member, buggy or
 * hostile, can make this node hold. A flag wins over its variable.
 */
export interface LimitFlags {
  minFreeDisk?: string
  maxJobs?: string
  historyJobs?: string
  historyDays?: string
  storeMax?: string
  repairAfter?: string
}

export interface LimitOptions {
  /** An attempt starts only with this much free disk under the data dir beyond its input (MiB). */
  minFreeDiskMb: number
  /** Jobs a coordinator holds at once (running and queued); more are refused with a clear reason. */
  maxJobs: number
  /** Job records this node keeps; the oldest go first. */
  historyJobs: number
  /** Days an ended job's record is kept. */
  historyDays: number
  /** Bytes of dataset blocks this node keeps at most; undefined: what the disk has. */
  storeMaxBytes?: number
  /** How long a storing member that left still counts for its blocks before they are copied elsewhere, ms. */
  datasetRepairAfterMs: number
}

/** What `join` uses when neither flag nor variable is set: the coordinator's and the worker's own defaults. */
export const DEFAULT_LIMITS: LimitOptions = { minFreeDiskMb: DEFAULT_MIN_FREE_DISK_BYTES / 2 ** 20, maxJobs: DEFAULT_MAX_JOBS, historyJobs: DEFAULT_HISTORY_JOBS, historyDays: DEFAULT_HISTORY_DAYS, datasetRepairAfterMs: DEFAULT_REPAIR_AFTER_MS }

export const LIMIT_FLAG_HELP = {
  minFreeDisk: `free disk (MiB) a task needs under the data dir beyond its input, or it fails with that reason (env MRP2P_MIN_FREE_DISK; default ${DEFAULT_LIMITS.minFreeDiskMb})`,
  maxJobs: `jobs this node holds at once as coordinator; later submits are refused (env MRP2P_MAX_JOBS; default ${DEFAULT_LIMITS.maxJobs})`,
  historyJobs: `job records this node keeps; the oldest go first (env MRP2P_HISTORY_JOBS; default ${DEFAULT_LIMITS.historyJobs})`,
  storeMax: 'bytes of dataset blocks this node keeps at most, e.g. 10GiB; a put that cannot fit is refused before anything is listed (env MRP2P_STORE_MAX; default: the free disk less 256 MiB)',
  repairAfter: `seconds a node that stores blocks may be gone before the others copy its blocks elsewhere; one back in time costs no copies (env MRP2P_REPAIR_AFTER; default ${DEFAULT_REPAIR_AFTER_MS / 1000})`,
  historyDays: `days an ended job's record is kept (env MRP2P_HISTORY_DAYS; default ${DEFAULT_LIMITS.historyDays})`
}

/** A flag wins over its variable; errors name the one that was wrong. */
export function resolveLimitOptions (flags: LimitFlags, env: Env = process.env): LimitOptions {
  const pick = (flag: string | undefined, flagName: string, envName: string, fallback: number, min: number, max: number): number => {
    const given = flagOrEnv(flag, flagName, env, envName)
    return given === undefined ? fallback : parseIntArg(given.raw, given.source, min, max)
  }
  const storeMax = flagOrEnv(flags.storeMax, '--store-max', env, 'MRP2P_STORE_MAX')
  return {
    minFreeDiskMb: pick(flags.minFreeDisk, '--min-free-disk', 'MRP2P_MIN_FREE_DISK', DEFAULT_LIMITS.minFreeDiskMb, 0, 1_048_576),
    maxJobs: pick(flags.maxJobs, '--max-jobs', 'MRP2P_MAX_JOBS', DEFAULT_LIMITS.maxJobs, 1, 10_000),
    historyJobs: pick(flags.historyJobs, '--history-jobs', 'MRP2P_HISTORY_JOBS', DEFAULT_LIMITS.historyJobs, 1, 1_000_000),
    historyDays: pick(flags.historyDays, '--history-days', 'MRP2P_HISTORY_DAYS', DEFAULT_LIMITS.historyDays, 1, 36_500),
    datasetRepairAfterMs: 1000 * pick(flags.repairAfter, '--repair-after', 'MRP2P_REPAIR_AFTER', DEFAULT_LIMITS.datasetRepairAfterMs / 1000, 0, 86_400),
    storeMaxBytes: storeMax === undefined ? undefined : byteSize(storeMax.source)(storeMax.raw)
  }
}
