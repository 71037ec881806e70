import { InvalidArgumentError } from '../util/errors.js'

/** Option parsers shared by the commands. Each throws one line naming the flag and the bad value. */

export function positiveInt (flag: string) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw.trim()) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) {
      throw new InvalidArgumentError(`${flag} must be a positive integer, got '${raw}'`)
    }
    return Number(raw)
  }
}

/** A fraction from 0 to 1: 0.05, 1. */
export function fraction (flag: string) {
  return (raw: string): number => {
    const n = /^\d+(?:\.\d+)?$/.test(raw.trim()) ? Number(raw) : NaN
    if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${flag} must be a fraction from 0 to 1, got '${raw}'`)
    return n
  }
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 }

/** Sizes in bytes with an optional binary unit: 65536, 64k, 16MiB, 1g. */
export function byteSize (flag: string) {
  return (raw: string): number => {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw.trim())
    const unit = m === null ? undefined : UNITS[m[2].toLowerCase()]
    const bytes = m === null || unit === undefined ? NaN : Math.floor(Number(m[1]) * unit)
    if (!Number.isSafeInteger(bytes) || bytes < 1) throw new InvalidArgumentError(`${flag} must be a size in bytes such as 65536, 64k or 16MiB, got '${raw}'`)
    return bytes
  }
}

/** Collects repeated `--param key=value` into an object. */
export function collectParam (raw: string, acc: Record<string, string> = {}): Record<string, string> {
  const eq = raw.indexOf('=')
  if (eq < 1) throw new InvalidArgumentError(`--param takes key=value, got '${raw}'`)
  return { ...acc, [raw.slice(0, eq)]: raw.slice(eq + 1) }
}

/** An integer from `min` to `max`; the error names `source`, the flag or variable it came from. */
export function parseIntArg (value: string, source: string, min: number, max: number): number {
  const n = Number(value.trim())
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`invalid ${source} "${value}": expected an integer from ${min} to ${max}`)
  }
  return n
}
