import type { Cluster } from '../../src/harness/cluster.js'
import { waitFor } from '../../src/harness/wait-for.js'
import type { InfoResponse } from '../../src/protocol/info.js'

/**
 * Test-side readings of a cluster: who acts as coordinator according to each
 * node's own answer (computed by its own clock at answer time), and a watcher
 * that samples all nodes in a loop and records every safety violation it sees.
 */
export const TEST_ELECTION_ENV = {
  MRP2P_LEASE_MS: '2000',
  MRP2P_HEARTBEAT_MS: '400',
  MRP2P_SUSPECT_AFTER_MS: '1200',
  MRP2P_DEAD_AFTER_MS: '2400',
  MRP2P_LOG_LEVEL: 'info'
}
export const TEST_LEASE_MS = Number(TEST_ELECTION_ENV.MRP2P_LEASE_MS)

export function acting (samples: Map<number, InfoResponse>): number[] {
  return [...samples].filter(([, info]) => info.isCoordinator).map(([i]) => i)
}

export interface Agreement {
  coordinator: number
  peerId: string
  epoch: number
}

/** Until every node in `indices` answers, exactly one acts, and all name it as coordinator at its epoch. */
export async function waitForAgreement (cluster: Cluster, indices: number[], timeoutMs: number): Promise<Agreement> {
  return await waitFor(async () => {
    const samples = await cluster.sample(indices)
    if (samples.size !== indices.length) return undefined
    const leaders = acting(samples)
    if (leaders.length !== 1) return undefined
    const leader = samples.get(leaders[0]) as InfoResponse
    for (const info of samples.values()) {
      if (info.coordinator !== leader.peerId || info.epoch !== leader.epoch || !info.leaseValid) return undefined
    }
    return { coordinator: leaders[0], peerId: leader.peerId, epoch: leader.epoch }
  }, { timeoutMs, intervalMs: 100, description: `nodes ${indices.join(',')} to agree on one coordinator` })
}

export interface WatchReport {
  samples: number
  violations: string[]
}

/**
 * Samples every running node about every 50 ms until stopped. Records:
 * - two nodes of one component acting as coordinator in the same sample;
 * - a node whose highest epoch went down.
 * `component(i)` names the side of a partition node i is on (default: all one).
 */
export function watchSafety (cluster: Cluster, component: (i: number) => string = () => 'all'): { stop: () => Promise<WatchReport> } {
  let running = true
  const report: WatchReport = { samples: 0, violations: [] }
  const highest = new Map<string, number>()
  const loop = (async () => {
    while (running) {
      const samples = await cluster.sample()
      report.samples++
      const byComponent = new Map<string, number[]>()
      for (const i of acting(samples)) {
        const c = component(i)
        byComponent.set(c, [...(byComponent.get(c) ?? []), i])
      }
      for (const [c, nodes] of byComponent) {
        if (nodes.length > 1) report.violations.push(`component ${c}: nodes ${nodes.join(',')} act as coordinator at once (epochs ${nodes.map(i => samples.get(i)?.epoch).join(',')})`)
      }
      for (const [i, info] of samples) {
        const before = highest.get(info.peerId) ?? 0
        if (info.highestEpoch < before) report.violations.push(`node ${i}: highest epoch went back from ${before} to ${info.highestEpoch}`)
        highest.set(info.peerId, Math.max(before, info.highestEpoch))
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  })()
  return {
    async stop () {
      running = false
      await loop
      return report
    }
  }
}
