/**
 * Lets one log line per key through each interval and counts the rest, so a
 * peer that floods us with garbage costs one line per second, not one per
 * message. The count of what was held back rides on the next line let through.
 */
export interface LogLimiter {
  /** Returns how many were suppressed since the last one let through, or undefined to stay quiet. */
  admit: (key: string, now?: number) => number | undefined
}

export function createLogLimiter (intervalMs = 1000, maxKeys = 1000): LogLimiter {
  const last = new Map<string, { at: number, suppressed: number }>()
  return {
    admit (key, now = performance.now()) {
      const entry = last.get(key)
      if (entry !== undefined && now - entry.at < intervalMs) {
        entry.suppressed++
        return undefined
      }
      // Bound memory if keys come from remote data (peer ids): forget the oldest.
      if (entry === undefined && last.size >= maxKeys) {
        const oldest = last.keys().next().value
        if (oldest !== undefined) last.delete(oldest)
      }
      const suppressed = entry?.suppressed ?? 0
      last.delete(key)
      last.set(key, { at: now, suppressed: 0 })
      return suppressed
    }
  }
}
