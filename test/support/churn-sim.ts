/**
 * The scheduler under churn, seeded: MIT 6.824's TestManyFailures in a simulated world. One node that runs no
 * tasks coordinates; workers die at their `lifetimeMaps`-th map call (the call itself is lost with them) and a
 * new one arrives every `arrivalMs` while fewer than `alive` live. A map output lives only on its mapper's disk;
 * a reduce keeps on its own disk what it pulled, and loses it when it dies. The failure detector names a dead
 * node 1 to 1.5 s later.
 *
 * The question it answers: does a job still finish, and how fast, as nodes live shorter, with and without the
 * scheduler's mechanisms for churn (reduces started early, which keep what they pulled).
 */
import { DEFAULT_SCHEDULER_CONFIG, Scheduler, type SchedulerConfig } from '../../src/coordinator/scheduler.js'
import type { Assignment, JobSpec, SchedulerEffect, SchedulerEvent } from '../../src/coordinator/scheduler-types.js'
import { EventQueue } from './event-queue.js'
import { Prng } from './prng.js'
import { UNCHECKED_SEAL } from './sealed-job.js'

export interface ChurnOptions {
  seed: number
  maps: number
  reduces: number
  /** Workers kept alive: a new one arrives every `arrivalMs` while fewer live. */
  alive: number
  arrivalMs: number
  /** A worker dies at this map call (6.824's workers die after 10 tasks). */
  lifetimeMaps?: number
  /** Or: a worker lives this long on average (exponentially distributed, ms). */
  lifetimeMs?: number
  slots: number
  /** The job counts as not finished past this (simulated ms). */
  deadlineMs: number
  scheduler?: Partial<SchedulerConfig>
  /** Copies of each map output (`--intermediate-replicas`); unset: a second copy while the mesh churns (the default). */
  replicas?: number
}

export interface ChurnReport {
  finished: boolean
  /** When the job succeeded (or the deadline). */
  endMs: number
  deaths: number
  mapRuns: number
  mapOutputs: { lostDown: number, lostFetch: number, kept: number, copied: number }
}

interface SimNode {
  peer: string
  alive: boolean
  mapCalls: number
  outputs: Set<number>
  /** Running attempts by key `kind index#attempt`. */
  running: Map<string, Assignment>
  pulls: Map<string, { pulled: Set<number>, known: Map<number, string>, fresh: number[] }>
}

type Ev =
  | { type: 'tick' }
  | { type: 'arrive' }
  | { type: 'finish', peer: string, key: string }
  | { type: 'pull', peer: string, key: string }
  | { type: 'detect', peer: string }
  | { type: 'expire', peer: string }
  | { type: 'copied', from: string, to: string, mapIndex: number }

const COORDINATOR = 'C'
const TICK_MS = 500
const PULL_EVERY_MS = 200

const keyOf = (t: Assignment): string => `${t.kind}${t.index}#${t.attempt}`

export function runChurn (o: ChurnOptions): ChurnReport {
  const r = new Prng(o.seed)
  const sched = new Scheduler({ self: COORDINATOR, config: { ...DEFAULT_SCHEDULER_CONFIG, ...o.scheduler } })
  const q = new EventQueue<Ev>()
  const nodes = new Map<string, SimNode>()
  let now = 0
  let born = 0
  let deaths = 0
  let mapRuns = 0
  let succeeded = false
  const jobId = 'churn'

  const send = (event: SchedulerEvent): void => {
    for (const e of sched.handle(event)) apply(e)
  }
  const apply = (e: SchedulerEffect): void => {
    if (e.type === 'job-succeeded') succeeded = true
    if (e.type === 'abandon') {
      const n = nodes.get(e.peer)
      const key = `${e.ref.kind}${e.ref.index}#${e.attempt}`
      n?.running.delete(key)
      n?.pulls.delete(key)
    }
    if (e.type === 'replicate') {
      q.push(now + r.int(50, 300), { type: 'copied', from: e.from, to: e.peer, mapIndex: e.mapIndex })
      return
    }
    if (e.type !== 'dispatch') return
    const n = nodes.get(e.peer)
    if (n === undefined || !n.alive) return
    const t = e.task
    const key = keyOf(t)
    if (t.kind === 'map') {
      mapRuns++
      if (++n.mapCalls >= (o.lifetimeMaps ?? Infinity)) {
        die(n)
        return
      }
      n.running.set(key, t)
      q.push(now + r.int(200, 900), { type: 'finish', peer: n.peer, key })
      return
    }
    n.running.set(key, t)
    n.pulls.set(key, { pulled: new Set(), known: new Map(t.sources.map((s) => [s.mapIndex, s.peer])), fresh: [] })
    q.push(now + r.int(10, 100), { type: 'pull', peer: n.peer, key })
  }
  const die = (n: SimNode): void => {
    if (!n.alive) return
    n.alive = false
    n.outputs.clear()
    n.running.clear()
    n.pulls.clear()
    deaths++
    q.push(now + r.int(1000, 1500), { type: 'detect', peer: n.peer })
  }

  const spec: JobSpec = {
    jobId,
    jobName: 'churn',
    codeHash: 'h',
    splits: Array.from({ length: o.maps }, (_, i) => ({ document: `in-${i}`, index: i, offset: 0, length: 1000, firstLine: 1 })),
    reduces: o.reduces,
    params: {},
    submitter: { peer: 'S', addrs: [] },
    maxAttempts: 3,
    seal: UNCHECKED_SEAL,
    intermediateReplicas: o.replicas
  }
  send({ type: 'worker-up', peer: COORDINATOR, slots: 0, self: true, now })
  q.push(0, { type: 'arrive' })
  q.push(TICK_MS, { type: 'tick' })
  q.push(1_000, { type: 'tick' })
  let submitted = false

  while (!succeeded) {
    const next = q.pop()
    if (next === undefined || next.at > o.deadlineMs) break
    now = next.at
    const ev = next.item
    switch (ev.type) {
      case 'tick':
        if (!submitted && now >= 1_000) {
          submitted = true
          send({ type: 'submit', job: spec, now })
        }
        send({ type: 'tick', now })
        q.push(now + TICK_MS, { type: 'tick' })
        break
      case 'arrive': {
        let live = 0
        for (const n of nodes.values()) if (n.alive) live++
        if (live < o.alive) {
          const n: SimNode = { peer: `w${born++}`, alive: true, mapCalls: 0, outputs: new Set(), running: new Map(), pulls: new Map() }
          nodes.set(n.peer, n)
          send({ type: 'worker-up', peer: n.peer, slots: o.slots, now })
          if (o.lifetimeMs !== undefined) q.push(now + Math.round(-Math.log(1 - r.next()) * o.lifetimeMs), { type: 'expire', peer: n.peer })
        }
        // The starting mesh forms at once; later arrivals come one per interval.
        q.push(now + (born < o.alive && now < 1_000 ? 1 : o.arrivalMs), { type: 'arrive' })
        break
      }
      case 'copied': {
        const from = nodes.get(ev.from)
        const to = nodes.get(ev.to) as SimNode
        // A copy to a node that died is answered by its worker-down; one from a dead mapper fails.
        if (!to.alive) break
        const ok = from?.alive === true && from.outputs.has(ev.mapIndex)
        if (ok) to.outputs.add(ev.mapIndex)
        send({ type: 'map-replicated', jobId, mapIndex: ev.mapIndex, peer: ev.to, ok, now })
        break
      }
      case 'expire':
        die(nodes.get(ev.peer) as SimNode)
        break
      case 'detect':
        send({ type: 'worker-down', peer: ev.peer, now })
        break
      case 'finish': {
        const n = nodes.get(ev.peer) as SimNode
        const t = n.running.get(ev.key)
        if (!n.alive || t === undefined) break
        n.running.delete(ev.key)
        if (t.kind === 'map') n.outputs.add(t.index)
        n.pulls.delete(ev.key)
        send({ type: 'task-done', ref: { jobId, kind: t.kind, index: t.index }, attempt: t.attempt, peer: n.peer, now })
        break
      }
      case 'pull': {
        const n = nodes.get(ev.peer) as SimNode
        const t = n.running.get(ev.key)
        const p = n.pulls.get(ev.key)
        if (!n.alive || t === undefined || t.kind !== 'reduce' || p === undefined) break
        let failed: { mapIndex: number, peer: string } | undefined
        for (const [mapIndex, peer] of p.known) {
          if (p.pulled.has(mapIndex)) continue
          const holder = nodes.get(peer)
          if (holder?.alive === true && holder.outputs.has(mapIndex)) {
            p.pulled.add(mapIndex)
            p.fresh.push(mapIndex)
          } else {
            p.known.delete(mapIndex)
            failed ??= { mapIndex, peer }
          }
        }
        const ref = { jobId, kind: 'reduce' as const, index: t.index }
        if (p.fresh.length > 0 || failed !== undefined) {
          send({ type: 'reduce-pulled', ref, attempt: t.attempt, peer: n.peer, maps: p.fresh, failed, now })
          p.fresh = []
        }
        if (!n.running.has(ev.key)) break
        if (p.pulled.size === t.maps) {
          q.push(now + r.int(100, 600), { type: 'finish', peer: n.peer, key: ev.key })
          break
        }
        const answer = sched.reduceSources(ref, t.attempt, n.peer)
        if (answer.stop) {
          n.running.delete(ev.key)
          n.pulls.delete(ev.key)
          break
        }
        for (const s of answer.sources) p.known.set(s.mapIndex, s.peer)
        q.push(now + PULL_EVERY_MS, { type: 'pull', peer: n.peer, key: ev.key })
        break
      }
    }
  }
  const progress = sched.progress(jobId)
  return {
    finished: succeeded,
    endMs: succeeded ? now : o.deadlineMs,
    deaths,
    mapRuns,
    mapOutputs: progress?.mapOutputs ?? { lostDown: 0, lostFetch: 0, kept: 0, copied: 0 }
  }
}
