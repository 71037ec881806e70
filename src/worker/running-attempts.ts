import { sameAttempt, type AttemptName } from './attempt.js'

interface Running {
  name: AttemptName
  controller: AbortController
}

/**
 * The attempts running on this worker, by job: each slot holds one, and each can be stopped on its own (an
 * end order for one attempt that lost to another) or with its job (the job ended).
 */
export class RunningAttempts {
  private readonly byJob = new Map<string, Running[]>()
  private count = 0
  private readonly counts = { map: 0, reduce: 0 }

  get size (): number {
    return this.count
  }

  /** Running attempts of one kind: maps and reduces have a node's slots each (a reduce started early waits on its inputs). */
  sizeOf (kind: AttemptName['kind']): number {
    return this.counts[kind]
  }

  has (name: AttemptName): boolean {
    return this.find(name) !== undefined
  }

  /** Takes a slot for `name`; its signal aborts when the attempt is stopped. */
  add (name: AttemptName): AbortSignal {
    const controller = new AbortController()
    const list = this.byJob.get(name.jobId) ?? []
    list.push({ name, controller })
    this.byJob.set(name.jobId, list)
    this.count++
    this.counts[name.kind]++
    return controller.signal
  }

  delete (name: AttemptName): void {
    const list = this.byJob.get(name.jobId)
    const i = list?.findIndex((r) => sameAttempt(r.name, name)) ?? -1
    if (list === undefined || i < 0) return
    list.splice(i, 1)
    this.count--
    this.counts[name.kind]--
    if (list.length === 0) this.byJob.delete(name.jobId)
  }

  abort (name: AttemptName): void {
    this.find(name)?.controller.abort()
  }

  abortJob (jobId: string): void {
    for (const r of this.byJob.get(jobId) ?? []) r.controller.abort()
  }

  abortAll (): void {
    for (const list of this.byJob.values()) for (const r of list) r.controller.abort()
  }

  hasJob (jobId: string): boolean {
    return this.byJob.has(jobId)
  }

  jobs (): string[] {
    return [...this.byJob.keys()]
  }

  private find (name: AttemptName): Running | undefined {
    return this.byJob.get(name.jobId)?.find((r) => sameAttempt(r.name, name))
  }
}
