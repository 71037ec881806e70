import type { AttemptRecord, JobRecord, JobSummary } from '../protocol/history-messages.js'
import type { JobProgress } from '../protocol/job-messages.js'

/** `12 s`, `3 min`, `2 h`, `4 d`. */
export function formatSpan (ms: number): string {
  const s = Math.max(0, ms) / 1000
  if (s < 10) return `${s.toFixed(1)} s`
  if (s < 120) return `${Math.round(s)} s`
  if (s < 7_200) return `${Math.round(s / 60)} min`
  if (s < 172_800) return `${Math.round(s / 3_600)} h`
  return `${Math.round(s / 86_400)} d`
}

export function formatBytes (n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

/** A PeerId cut to its last 6 characters, as tables show it. */
export function shortPeer (peer: string): string {
  return peer.length > 8 ? `…${peer.slice(-6)}` : peer
}

export function jobDuration (j: Pick<JobSummary, 'submittedAt' | 'endedAt'>, now: number): number {
  return (j.endedAt ?? now) - j.submittedAt
}

/** Columns padded to their widest cell, two spaces apart. */
export function table (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  ')).join('\n')
}

export function formatJobs (jobs: JobSummary[], now: number): string {
  if (jobs.length === 0) return 'no jobs\n'
  const rows = [['ID', 'NAME', 'STATE', 'SUBMITTER', 'AGE', 'DURATION', 'MAPS', 'REDUCES']]
  for (const j of jobs) {
    rows.push([
      j.jobId, j.jobName, j.state, shortPeer(j.identity ?? j.submitter), formatSpan(now - j.submittedAt), formatSpan(jobDuration(j, now)),
      `${j.progress.maps.done}/${j.progress.maps.total}`, `${j.progress.reduces.done}/${j.progress.reduces.total}`
    ])
  }
  return `${table(rows)}\n`
}

function attemptLine (a: AttemptRecord): string {
  const span = a.endedAt === undefined ? 'running' : formatSpan(a.endedAt - a.startedAt)
  return `${a.epoch}.${a.attempt} ${a.outcome} on ${shortPeer(a.node)} (${span}${a.bytes === undefined ? '' : `, ${formatBytes(a.bytes)}`})${a.error === undefined ? '' : `: ${a.error}`}`
}

/**
 * Map outputs lost with their node (and so run again), and why, and those not run again because every reduce
 * still running had pulled them: `lost 12 (10 node down, 2 fetch failed), kept by reducers 30`. Undefined while none.
 */
export function mapOutputsText (p: JobProgress): string | undefined {
  const o = p.mapOutputs
  if (o === undefined) return undefined
  const lost = o.lostDown + o.lostFetch
  const why = [o.lostDown > 0 ? `${o.lostDown} node down` : '', o.lostFetch > 0 ? `${o.lostFetch} fetch failed` : ''].filter((x) => x !== '').join(', ')
  const copied = o.copied > 0 ? `, copied to a second node ${o.copied}` : ''
  return `lost ${lost}${why === '' ? '' : ` (${why})`}, kept by reducers ${o.kept}${copied}`
}

export function formatJob (r: JobRecord, now: number): string {
  const lines: string[] = []
  const when = (t: number | undefined): string => t === undefined ? '-' : `${new Date(t).toISOString()} (${formatSpan(now - t)} ago)`
  lines.push(`job         ${r.jobId}`)
  lines.push(`name        ${r.jobName}`)
  lines.push(`state       ${r.state}`)
  if (r.identity !== undefined) lines.push(`identity    ${r.identity}`)
  lines.push(`submitter   ${r.submitter}`)
  if (r.codeHash !== undefined) lines.push(`code hash   ${r.codeHash}`)
  lines.push(`inputs      ${r.inputs.count} files, ${formatBytes(r.inputs.bytes)} in ${r.maps} splits; R = ${r.reduces}`)
  if (Object.keys(r.params).length > 0) lines.push(`params      ${Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(' ')}`)
  if (r.streaming !== undefined) {
    const s = r.streaming
    lines.push(`mapper      ${s.mapper}`)
    if (s.combiner !== undefined) lines.push(`combiner    ${s.combiner}`)
    lines.push(`reducer     ${s.reducer}`)
    if (s.files.length > 0) lines.push(`files       ${s.files.map((f) => f.name).join(' ')}`)
  }
  lines.push(`submitted   ${when(r.submittedAt)}`)
  lines.push(`started     ${when(r.startedAt)}`)
  lines.push(`ended       ${when(r.endedAt)}`)
  lines.push(`duration    ${formatSpan(jobDuration(r, now))}`)
  lines.push(`progress    maps ${r.progress.maps.done}/${r.progress.maps.total}, reduces ${r.progress.reduces.done}/${r.progress.reduces.total}, failed attempts ${r.progress.failedAttempts}`)
  const outputs = mapOutputsText(r.progress)
  if (outputs !== undefined) lines.push(`map outputs ${outputs}`)
  lines.push(`coordinator ${r.coordinator} (epoch ${r.epoch})`)
  if (r.detached !== undefined) lines.push(`detached    output dataset ${r.detached.output}; ${r.detached.parts.length} of ${r.reduces} parts stored${r.detached.spec === undefined ? '; its spec not yet in the mesh' : ''}`)
  const c = r.counters
  lines.push(`map         ${c.mapRecordsIn} records, ${formatBytes(c.mapBytesIn)} in; ${c.mapRecordsOut} records, ${formatBytes(c.mapBytesOut)} out`)
  lines.push(`input       ${formatBytes(Math.max(0, c.mapBytesIn - c.inputFetchedBytes - c.blockFetchedBytes))} read in place, ${formatBytes(c.inputFetchedBytes)} sent by the submitter${c.blockFetchedBytes > 0 ? `, ${formatBytes(c.blockFetchedBytes)} of blocks pulled from other nodes` : ''}`)
  lines.push(`shuffle     ${formatBytes(c.shuffleRawBytes)} raw, ${formatBytes(c.shuffleBytes)} sent${c.shuffleLinkedBytes > 0 ? `; ${formatBytes(c.shuffleLinkedBytes)} linked in place on its host` : ''}`)
  lines.push(`reduce      ${c.reduceRecordsIn} records in; ${c.reduceRecordsOut} records, ${formatBytes(c.reduceBytesOut)} out${r.detached === undefined ? `, ${formatBytes(c.outputSentBytes)} of it sent to the submitter` : ''}`)
  if (r.failure !== undefined) lines.push(`failure     ${r.failure.task}: ${r.failure.message}`)
  lines.push('')
  const rows = [['TASK', 'ATTEMPTS']]
  for (const t of r.tasks) {
    t.attempts.forEach((a, i) => { rows.push([i === 0 ? `${t.kind}-${t.index}` : '', attemptLine(a)]) })
  }
  lines.push(table(rows))
  if (r.attemptsOmitted > 0) lines.push(`(${r.attemptsOmitted} more attempts not recorded)`)
  return `${lines.join('\n')}\n`
}
