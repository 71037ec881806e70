import type { z } from 'zod'
import type { DoJobRequest, FailureCause, MapAssignment, ReduceAssignment, Report } from '../protocol/job-messages.js'

export type { FailureCause, MapAssignment, ReduceAssignment }

/** A DoJob order as the worker runs it: one attempt of one task of one job, under the epoch that gave it. */
export type WorkOrder = z.output<typeof DoJobRequest>

/** What a worker tells the coordinator about a finished attempt. */
export type AttemptReport = Report

/**
 * How a worker names an attempt: attempt numbers restart under every new coordinator, so an attempt is
 * (job, task, epoch, attempt), the fields a report names it by.
 */
export type AttemptName = Pick<AttemptReport, 'jobId' | 'kind' | 'index' | 'epoch' | 'attempt'>

/** How an attempt ended: its report less the name. */
export type AttemptOutcome = Omit<AttemptReport, keyof AttemptName>

export function attemptName (order: WorkOrder): AttemptName {
  return { jobId: order.job.jobId, kind: order.task.kind, index: order.task.index, epoch: order.epoch, attempt: order.task.attempt }
}

export function sameAttempt (a: AttemptName, b: AttemptName): boolean {
  return a.jobId === b.jobId && a.kind === b.kind && a.index === b.index && a.epoch === b.epoch && a.attempt === b.attempt
}

/** The attempt's part of its scratch folder's name and of its map output's meta (`epoch.attempt`), never read back. */
export function attemptLabel (name: Pick<AttemptName, 'epoch' | 'attempt'>): string {
  return `${name.epoch}.${name.attempt}`
}
