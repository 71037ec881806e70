import { readFileSync } from 'node:fs'

/** Resident set size of a process in bytes (VmRSS of /proc/<pid>/status); undefined once it is gone. */
export function rssBytes (pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) * 1024
  } catch {
    return undefined
  }
}

export const MiB = 1024 * 1024

export function mib (bytes: number | undefined): string {
  return bytes === undefined ? '-' : `${(bytes / MiB).toFixed(1)} MiB`
}

/** Samples the RSS of some processes every `intervalMs` until stopped; keeps the max and the last value of each. */
export class RssSampler {
  readonly max = new Map<string, number>()
  readonly last = new Map<string, number>()
  samples = 0
  private timer: NodeJS.Timeout | undefined

  constructor (private readonly pids: () => Map<string, number | undefined>, private readonly intervalMs = 250) {}

  sample (): void {
    this.samples++
    for (const [name, pid] of this.pids()) {
      if (pid === undefined) continue
      const rss = rssBytes(pid)
      if (rss === undefined) continue
      this.last.set(name, rss)
      this.max.set(name, Math.max(this.max.get(name) ?? 0, rss))
    }
  }

  start (): void {
    this.sample()
    this.timer = setInterval(() => { this.sample() }, this.intervalMs)
  }

  stop (): void {
    clearInterval(this.timer)
    this.sample()
  }
}
