/** The process environment, or a test's stand-in for it. */
export type Env = Record<string, string | undefined>

/**
 * `undefined` for a setting that is unset, empty or only whitespace; any
 * other value as given.
 *
 * This is the one rule for every MRP2P_* variable (through envValue), because
 * a script that clears a setting (`MRP2P_LISTEN= mrp2p submit …`, or
 * `env: { X: '' }` in a test) means "not set": the default applies rather than
 * "" being refused as a bad value. The value is not trimmed, so that an error
 * quotes exactly what the person wrote.
 */
export function nonBlank (value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

/** The variable `name` under the one rule of nonBlank: empty counts as unset. */
export function envValue (env: Env, name: string): string | undefined {
  return nonBlank(env[name])
}

/** A list given in one variable, separated by commas and/or whitespace; unset or empty is no items. */
export function envList (env: Env, name: string): string[] {
  return (envValue(env, name) ?? '').split(/[\s,]+/).filter(s => s.length > 0)
}

/** Where a setting came from: its raw text and the flag or variable to name in an error. */
export interface SettingSource { raw: string, source: string }

/** A flag given on the command line wins over its variable; `undefined` when neither is set. */
export function flagOrEnv (flag: string | undefined, flagName: string, env: Env, envName: string): SettingSource | undefined {
  if (flag !== undefined) return { raw: flag, source: flagName }
  const raw = envValue(env, envName)
  return raw === undefined ? undefined : { raw, source: envName }
}
