import { DEFAULT_ELECTION_CONFIG, resolveElectionConfig, type ElectionConfig } from '../election/index.js'
import { InvalidArgumentError } from '../util/errors.js'
import { flagOrEnv, type Env } from '../util/env.js'

/**
 * Election timings from flags and environment: each field of ElectionConfig
 * has a `join` flag and an MRP2P_* variable (the flag wins). The table is what
 * `join --help` and docs/mesh.md show. The combination is checked with the
 * election's own rules, so a setting that would break its safety argument is
 * refused at start with the flag's name, not discovered later.
 */
export interface ElectionFlagSpec {
  key: keyof ElectionConfig
  /** commander's property name is the camel-case of this */
  flag: string
  env: string
  description: string
  defaultValue: number
  /** Milliseconds (integer) or a fraction. */
  kind: 'ms' | 'fraction'
}

const SPECS: Array<Omit<ElectionFlagSpec, 'defaultValue'>> = [
  { key: 'leaseMs', flag: 'lease-ms', env: 'MRP2P_LEASE_MS', kind: 'ms', description: 'coordinator lease duration' },
  { key: 'heartbeatMs', flag: 'heartbeat-ms', env: 'MRP2P_HEARTBEAT_MS', kind: 'ms', description: 'interval between membership heartbeats' },
  { key: 'suspectAfterMs', flag: 'suspect-after-ms', env: 'MRP2P_SUSPECT_AFTER_MS', kind: 'ms', description: 'silence after which a member is suspect' },
  { key: 'deadAfterMs', flag: 'dead-after-ms', env: 'MRP2P_DEAD_AFTER_MS', kind: 'ms', description: 'silence after which a member is dead' },
  { key: 'forgetAfterMs', flag: 'forget-after-ms', env: 'MRP2P_FORGET_AFTER_MS', kind: 'ms', description: 'silence after which a dead member is forgotten' },
  { key: 'backoffStepMs', flag: 'backoff-step-ms', env: 'MRP2P_BACKOFF_STEP_MS', kind: 'ms', description: 'claim backoff per rank among live members' },
  { key: 'jitterMs', flag: 'jitter-ms', env: 'MRP2P_JITTER_MS', kind: 'ms', description: 'random extra claim backoff' },
  { key: 'driftBound', flag: 'drift-bound', env: 'MRP2P_DRIFT_BOUND', kind: 'fraction', description: 'assumed bound on relative clock-rate error' }
]

export const ELECTION_FLAGS: ElectionFlagSpec[] = SPECS.map(s => ({ ...s, defaultValue: DEFAULT_ELECTION_CONFIG[s.key] }))

export type ElectionFlags = Record<string, unknown>

function camel (flag: string): string {
  return flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())
}

/** The timings given by flag or variable (unset ones are left to the election's defaults), checked together. */
export function resolveElectionOptions (flags: ElectionFlags, env: Env = process.env): Partial<ElectionConfig> {
  const out: Partial<Record<keyof ElectionConfig, number>> = {}
  const source: Partial<Record<keyof ElectionConfig, string>> = {}
  for (const spec of ELECTION_FLAGS) {
    const flagValue = flags[camel(spec.flag)]
    const setting = flagOrEnv(typeof flagValue === 'string' ? flagValue : undefined, `--${spec.flag}`, env, spec.env)
    if (setting === undefined) continue
    const { raw, source: name } = setting
    const n = Number(raw.trim())
    const ok = spec.kind === 'ms' ? Number.isInteger(n) && n >= 0 && n <= 3_600_000 : Number.isFinite(n) && n >= 0 && n < 0.5
    if (!ok) {
      const expected = spec.kind === 'ms' ? 'a whole number of milliseconds' : 'a fraction from 0 to 0.5'
      throw new InvalidArgumentError(`invalid ${name} "${raw}": expected ${expected}`)
    }
    out[spec.key] = n
    source[spec.key] = name
  }
  try {
    resolveElectionConfig(out)
  } catch (err) {
    const names = Object.values(source)
    const given = names.length > 0 ? ` (from ${names.join(', ')})` : ''
    throw new InvalidArgumentError(`invalid election timings${given}: ${err instanceof Error ? err.message : String(err)}`)
  }
  return out
}
