import { HISTORY_PROTOCOLS, HistoryGetResponse, type JobRecord } from '../protocol/history-messages.js'
import { UserFacingError } from '../util/errors.js'
import type { MeshClient } from './mesh-client.js'

/** No record of that id (or prefix) on the node asked: no member has heard of such a job. */
export class UnknownJobError extends UserFacingError {
  static readonly NAME = 'UnknownJobError'
  override readonly name = UnknownJobError.NAME
  readonly exitCode = 1
}

/** A prefix that more than one job id starts with. */
export class AmbiguousJobIdError extends UserFacingError {
  static readonly NAME = 'AmbiguousJobIdError'
  override readonly name = AmbiguousJobIdError.NAME
  readonly exitCode = 1
}

const ID_OR_PREFIX = /^[A-Za-z0-9_-]{1,64}$/

/** The record of job `id`, or of the one job whose id starts with it (as git takes a unique prefix of a hash). */
export async function findJob (client: MeshClient, id: string): Promise<JobRecord> {
  if (!ID_OR_PREFIX.test(id)) throw new UnknownJobError(`no job ${JSON.stringify(id)} in this mesh (a job id is 1-64 letters, digits, - and _)`)
  const res = await client.call(HISTORY_PROTOCOLS.get, { prefix: id }, HistoryGetResponse)
  if (res.ambiguous !== undefined) throw new AmbiguousJobIdError(`job id ${id} is ambiguous: it starts ${res.ambiguous.length >= 20 ? '20 or more' : res.ambiguous.length} ids (${res.ambiguous.slice(0, 5).join(', ')}${res.ambiguous.length > 5 ? ', ...' : ''})`)
  const record = res.records[0]
  if (record === undefined) throw new UnknownJobError(`no job ${id} in this mesh`)
  return record
}
