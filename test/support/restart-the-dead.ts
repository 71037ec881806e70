import type { Cluster } from '../../src/harness/cluster.js'

/** Restarts, as MIT 6.824's test-mr.sh does, whichever node of `cluster` died, until `stop()`. */
export interface DeadRestarter {
  /** Nodes restarted so far. */
  readonly restarts: number
  /**
   * Nodes whose process is up and said `ready` since it last started, and not being restarted now, with when
   * each came up (ms since the epoch; the time `restartTheDead` was called for a node that never died).
   */
  up: () => Map<number, number>
  stop: () => void
}

/**
 * One restart at a time, the node dead longest first: with the lowest index first, a killer that picks among
 * running nodes would take the one node that keeps coming back, and the others would stay dead.
 */
export function restartTheDead (cluster: Cluster, everyMs = 200): DeadRestarter {
  let restarts = 0
  let restarting: number | undefined
  const diedAt = new Map<number, number>()
  const since = new Map<number, number>()
  const begun = Date.now()
  const timer = setInterval(() => {
    for (const node of cluster.nodes) {
      if (node.state === 'running' && !node.process.running && node.index !== restarting && !diedAt.has(node.index)) diedAt.set(node.index, Date.now())
    }
    if (restarting !== undefined) return
    const dead = [...diedAt].sort((a, b) => a[1] - b[1])[0]?.[0]
    if (dead === undefined) return
    restarting = dead
    diedAt.delete(dead)
    restarts++
    cluster.restart(dead)
      .then(() => { since.set(dead, Date.now()) })
      .catch(() => {})
      .finally(() => { restarting = undefined })
  }, everyMs)
  return {
    get restarts () { return restarts },
    up: () => {
      const out = new Map<number, number>()
      for (const node of cluster.nodes) {
        if (node.state !== 'running' || !node.process.running || node.index === restarting) continue
        out.set(node.index, since.get(node.index) ?? begun)
      }
      return out
    },
    stop: () => { clearInterval(timer) }
  }
}
