import type { ElectionView } from '../election/index.js'
import type { InfoResponse } from '../protocol/info.js'

export interface InfoInputs {
  self: string
  addrs: string[]
  version: string
  worker: boolean
  slots: number
  connections: string[]
  relayed?: string[]
  reachability?: InfoResponse['reachability']
  blocked: string[]
  view: ElectionView
  isCoordinator: boolean
  leaseMs: number
  uptimeMs: number
  control?: InfoResponse['control']
  tasks?: InfoResponse['tasks']
  streams?: InfoResponse['streams']
  resources?: InfoResponse['resources']
  submitters?: number
  graylisted?: string[]
}

/** Flatten the election's view into the info protocol's wire shape. */
export function toInfoResponse (i: InfoInputs): InfoResponse {
  const v = i.view
  const age = v.leaseAgeMs ?? null
  return {
    peerId: i.self,
    addrs: i.addrs,
    version: i.version,
    worker: i.worker,
    slots: i.slots,
    connections: i.connections,
    relayed: i.relayed,
    reachability: i.reachability,
    blocked: i.blocked,
    role: v.role,
    isCoordinator: i.isCoordinator,
    epoch: v.epoch,
    highestEpoch: v.highestEpoch,
    coordinator: v.leader ?? null,
    leaseValid: v.leaseValid,
    leaseAgeMs: age,
    leaseRemainingMs: age === null || !v.leaseValid ? null : Math.max(0, i.leaseMs - age),
    members: v.members.filter(m => m.peer !== i.self).map(m => ({
      peerId: m.peer,
      addrs: m.info.addrs,
      liveness: m.liveness,
      role: m.role,
      slots: m.info.slots,
      running: m.info.running,
      worker: m.info.worker,
      version: m.info.version,
      lastHeardMsAgo: Math.max(0, m.lastHeardAgoMs)
    })),
    uptimeMs: i.uptimeMs,
    tasks: i.tasks,
    streams: i.streams,
    resources: i.resources,
    quarantined: v.quarantined?.map((q) => ({ peer: q.peer, leftMs: Math.max(0, q.leftMs) })),
    graylisted: i.graylisted,
    submitters: i.submitters,
    control: i.control
  }
}
