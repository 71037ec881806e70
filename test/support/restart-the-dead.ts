import type { Cluster } from '../../src/harness/cluster.js'

/** Restarts, as MIT 6.824's test-mr.sh does, whichever node of `cluster` died, until `stop()`. */
export interface DeadRestarter {
  /** Nodes restarted so far. */
  readonly restarts: number
  stop: () => void
}

export function restartTheDead (cluster: Cluster, everyMs = 200): DeadRestarter {
  let restarts = 0
  let restarting = false
  const timer = setInterval(() => {
    if (restarting) return
    const dead = cluster.nodes.find((node) => node.state === 'running' && !node.process.running)
    if (dead === undefined) return
    restarting = true
    restarts++
    cluster.restart(dead.index).catch(() => {}).finally(() => { restarting = false })
  }, everyMs)
  return {
    get restarts () { return restarts },
    stop: () => { clearInterval(timer) }
  }
}
