// The dashboard in the browser: three views (jobs, mesh, one job) drawn from the node's JSON API and kept
// live by its event stream. Plain DOM and SVG, bundled by esbuild into dist/dashboard/app.js.
import type { AttemptRecord, JobRecord, JobSummary } from '../../protocol/history-messages.js'
import type { InfoResponse } from '../../protocol/info.js'

interface Mesh { self: InfoResponse, nodes: Record<string, InfoResponse | undefined> }

const token = new URLSearchParams(location.search).get('token')
const withToken = (path: string): string => token === null ? path : `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`
const view = document.getElementById('view') as HTMLElement
const live = document.getElementById('live') as HTMLElement

let jobs: JobSummary[] = []
let mesh: Mesh | undefined
let record: JobRecord | undefined
let stateFilter = ''
let textFilter = ''

const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const short = (peer: string): string => peer.length > 8 ? `…${peer.slice(-6)}` : peer
function span (ms: number): string {
  const s = Math.max(0, ms) / 1000
  return s < 10 ? `${s.toFixed(1)} s` : s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`
}
function bytes (n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(2)} GiB`
}
function bar (done: number, total: number): string {
  const pct = total === 0 ? 0 : Math.round(100 * done / total)
  return `<span class="bar" title="${done}/${total}"><span style="width:${pct}%"></span></span> ${done}/${total}`
}

async function getJson<T> (path: string): Promise<T> {
  const res = await fetch(withToken(path))
  if (!res.ok) throw new Error(`${path}: ${res.status}`)
  return await res.json() as T
}

function route (): { page: 'jobs' | 'mesh' | 'job', id?: string } {
  const h = location.hash.replace(/^#\/?/, '')
  if (h.startsWith('job/')) return { page: 'job', id: decodeURIComponent(h.slice(4)) }
  return { page: h === 'mesh' ? 'mesh' : 'jobs' }
}

function render (): void {
  const r = route()
  for (const a of document.querySelectorAll<HTMLAnchorElement>('header a[data-nav]')) a.classList.toggle('on', a.dataset.nav === r.page || (r.page === 'job' && a.dataset.nav === 'jobs'))
  if (r.page === 'mesh') renderMesh()
  else if (r.page === 'job') renderJob()
  else renderJobs()
}

function renderJobs (): void {
  const now = Date.now()
  const shown = jobs.filter((j) => (stateFilter === '' || j.state === stateFilter) && (textFilter === '' || `${j.jobId} ${j.jobName}`.includes(textFilter)))
  const rows = shown.map((j) => `<tr data-job="${esc(j.jobId)}">
    <td class="mono"><a href="#/job/${encodeURIComponent(j.jobId)}">${esc(j.jobId)}</a></td><td>${esc(j.jobName)}</td>
    <td class="state-${j.state}">${j.state}</td><td class="mono">${short(j.identity ?? j.submitter)}</td>
    <td>${span(now - j.submittedAt)} ago</td><td>${span((j.endedAt ?? now) - j.submittedAt)}</td>
    <td class="maps">${bar(j.progress.maps.done, j.progress.maps.total)}</td><td class="reduces">${bar(j.progress.reduces.done, j.progress.reduces.total)}</td></tr>`).join('')
  view.innerHTML = `<div class="filters">
      <select id="state"><option value="">every state</option>${['running', 'succeeded', 'failed', 'cancelled'].map((s) => `<option${s === stateFilter ? ' selected' : ''}>${s}</option>`).join('')}</select>
      <input id="text" placeholder="id or name" value="${esc(textFilter)}">
      <span class="muted" id="count">${shown.length} of ${jobs.length} jobs</span></div>
    <table id="jobs"><thead><tr><th>ID</th><th>NAME</th><th>STATE</th><th>SUBMITTER</th><th>SUBMITTED</th><th>DURATION</th><th>MAPS</th><th>REDUCES</th></tr></thead><tbody>${rows}</tbody></table>`
  const state = document.getElementById('state') as HTMLSelectElement
  state.onchange = () => { stateFilter = state.value; render() }
  const text = document.getElementById('text') as HTMLInputElement
  text.oninput = () => { textFilter = text.value; render(); (document.getElementById('text') as HTMLInputElement).focus() }
}

/** How others reach a node (docs/mesh.md, "Across NATs"): AutoNAT's verdict, whether it relays, its relay slots. */
function reach (info: InfoResponse | undefined): string {
  const r = info?.reachability
  if (r === undefined) return '-'
  return [r.nat, ...(r.relay ? ['relay'] : []), ...(r.relays.length > 0 ? [`via ${r.relays.length} relay${r.relays.length === 1 ? '' : 's'}`] : [])].join(', ')
}

function renderMesh (): void {
  if (mesh === undefined) { view.innerHTML = '<p class="muted">asking the mesh…</p>'; return }
  const s = mesh.self
  const nodes: Array<[string, InfoResponse | undefined, string]> = [[s.peerId, s, 'self'], ...s.members.map((m): [string, InfoResponse | undefined, string] => [m.peerId, mesh?.nodes[m.peerId], m.liveness])]
  const rows = nodes.map(([peer, info, liveness]) => {
    const m = s.members.find((x) => x.peerId === peer)
    const role = peer === s.coordinator ? 'coordinator' : (info?.worker ?? m?.worker) === true ? 'worker' : 'observer'
    const res = info?.resources
    const link = peer === s.peerId ? '-' : s.relayed?.includes(peer) === true ? 'relayed' : s.connections.includes(peer) ? 'direct' : '-'
    return `<tr data-peer="${esc(peer)}"><td class="mono">${esc(peer)}</td><td>${role}</td><td>${esc(liveness)}</td>
      <td>${info?.slots ?? m?.slots ?? '-'}</td><td>${info?.tasks?.running ?? m?.running ?? 0}</td><td>${esc(info?.version ?? m?.version ?? '-')}</td>
      <td>${res === undefined ? '-' : `${res.cpuPercent} %`}</td><td>${res === undefined ? '-' : bytes(res.rssBytes)}</td>
      <td class="link">${link}</td><td class="reach">${esc(reach(info))}</td></tr>`
  }).join('')
  const lease = s.leaseRemainingMs === null ? 'no valid lease' : `${(s.leaseRemainingMs / 1000).toFixed(1)} s left`
  view.innerHTML = `<div class="cards"><div class="card">coordinator<b class="mono">${s.coordinator === null ? '(none)' : short(s.coordinator)}</b></div>
    <div class="card">epoch<b>${s.epoch}</b></div><div class="card">lease<b>${lease}</b></div><div class="card">members<b>${nodes.length}</b></div></div>
    <table id="mesh"><thead><tr><th>PEER</th><th>ROLE</th><th>LIVENESS</th><th>SLOTS</th><th>RUNNING</th><th>VERSION</th><th>CPU</th><th>RSS</th><th>LINK</th><th>REACH</th></tr></thead><tbody>${rows}</tbody></table>`
}

const OUTCOME_COLOURS: Record<AttemptRecord['outcome'], string> = {
  running: 'var(--run)', succeeded: 'var(--ok)', failed: 'var(--fail)', killed: 'var(--gray)', lost: 'var(--warn)', refused: '#d0d5dd', 'backup-lost': '#a6f4c5'
}

function timeline (r: JobRecord): string {
  const attempts = r.tasks.flatMap((t) => t.attempts.map((a) => ({ t, a })))
  if (attempts.length === 0) return '<p class="muted">no attempt yet</p>'
  const now = Date.now()
  const t0 = Math.min(...attempts.map((x) => x.a.startedAt))
  const t1 = Math.max(...attempts.map((x) => x.a.endedAt ?? now), t0 + 1)
  const nodes = [...new Set(attempts.map((x) => x.a.node))].sort()
  const width = 900
  const left = 90
  const rowH = 22
  const x = (t: number): number => left + (width - left - 10) * (t - t0) / (t1 - t0)
  const bars = attempts.map(({ t, a }) => {
    const y = nodes.indexOf(a.node) * rowH + 4
    const w = Math.max(2, x(a.endedAt ?? now) - x(a.startedAt))
    const title = `${t.kind}-${t.index} attempt ${a.epoch}.${a.attempt} ${a.outcome} on ${a.node} (${span((a.endedAt ?? now) - a.startedAt)})${a.error === undefined ? '' : `: ${a.error}`}`
    const href = withToken(`/api/jobs/${encodeURIComponent(r.jobId)}/log?task=${t.kind}-${t.index}&epoch=${a.epoch}&attempt=${a.attempt}`)
    return `<a href="${esc(href)}" target="_blank"><rect class="attempt" data-outcome="${a.outcome}" data-task="${t.kind}-${t.index}" x="${x(a.startedAt).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 8}" rx="2" fill="${OUTCOME_COLOURS[a.outcome]}"${t.kind === 'reduce' ? ' stroke="#101828" stroke-width="1"' : ''}><title>${esc(title)}</title></rect></a>`
  }).join('')
  const labels = nodes.map((n, i) => `<text x="4" y="${i * rowH + 15}">${esc(short(n))}</text>`).join('')
  const legend = Object.entries(OUTCOME_COLOURS).map(([k, c]) => `<span><i style="background:${c}"></i>${k}</span>`).join('')
  return `<div class="legend">${legend}<span class="muted">(reduces outlined; ${span(t1 - t0)} shown)</span></div>
    <svg id="timeline" width="${width}" height="${nodes.length * rowH + 8}" role="img">${labels}${bars}</svg>`
}

const TAIL_LINES = 10
const tails = new Map<string, string>()
const logUrl = (r: JobRecord, kind: string, index: number, a: AttemptRecord): string => withToken(`/api/jobs/${encodeURIComponent(r.jobId)}/log?task=${kind}-${index}&epoch=${a.epoch}&attempt=${a.attempt}`)

function renderJob (): void {
  const id = route().id
  if (record === undefined || record.jobId !== id) { view.innerHTML = `<p class="muted">loading ${esc(id)}…</p>`; return }
  const r = record
  const c = r.counters
  const failed = r.tasks.flatMap((t) => t.attempts.filter((a) => a.outcome === 'failed').map((a) => ({ t, a })))
  view.innerHTML = `<h2 class="mono">${esc(r.jobId)} <span class="state-${r.state}" id="job-state">${r.state}</span>
      ${r.state === 'running' ? '<button id="cancel">cancel</button>' : ''}</h2>
    <div class="cards">
      <div class="card">maps<b id="maps">${bar(r.progress.maps.done, r.progress.maps.total)}</b></div>
      <div class="card">reduces<b id="reduces">${bar(r.progress.reduces.done, r.progress.reduces.total)}</b></div>
      <div class="card">duration<b>${span((r.endedAt ?? Date.now()) - r.submittedAt)}</b></div>
      <div class="card">inputs<b>${r.inputs.count} files, ${bytes(r.inputs.bytes)}</b></div>
      <div class="card">failed attempts<b>${r.progress.failedAttempts}</b></div></div>
    ${r.failure === undefined ? '' : `<p class="state-failed">failure in ${esc(r.failure.task)}: ${esc(r.failure.message)}</p>`}
    <h3>Timeline</h3>${timeline(r)}
    <h3>Counters</h3><table id="counters"><tbody>
      <tr><td>map input</td><td>${c.mapRecordsIn} records</td><td>${bytes(c.mapBytesIn)}</td></tr>
      <tr><td>input sent by the submitter</td><td></td><td>${bytes(c.inputFetchedBytes)}</td></tr>
      <tr><td>dataset blocks pulled from other nodes</td><td></td><td>${bytes(c.blockFetchedBytes)}</td></tr>
      <tr><td>map output</td><td>${c.mapRecordsOut} records</td><td>${bytes(c.mapBytesOut)}</td></tr>
      <tr><td>shuffle</td><td>${bytes(c.shuffleRawBytes)} raw</td><td>${bytes(c.shuffleBytes)} sent</td></tr>
      <tr><td>shuffle linked in place (mapper on the reducer's host)</td><td></td><td>${bytes(c.shuffleLinkedBytes ?? 0)}</td></tr>
      <tr><td>reduce</td><td>${c.reduceRecordsIn} in, ${c.reduceRecordsOut} out</td><td>${bytes(c.reduceBytesOut)}</td></tr>
      <tr><td>output sent to the submitter</td><td></td><td>${bytes(c.outputSentBytes)}</td></tr></tbody></table>
    ${failed.length === 0 ? '' : `<h3>Failures</h3><table id="failures"><tbody>${failed.map(({ t, a }) => `<tr><td>${t.kind}-${t.index}</td><td>${a.epoch}.${a.attempt}</td><td class="mono">${short(a.node)}</td><td>${esc(a.error ?? '')}</td>
      <td><a target="_blank" href="${esc(logUrl(r, t.kind, t.index, a))}">log</a></td></tr>
      <tr><td colspan="5"><pre class="tail" data-log="${esc(logUrl(r, t.kind, t.index, a))}">…</pre></td></tr>`).join('')}</tbody></table>`}
    <p class="muted">submitted by <span class="mono">${esc(r.identity ?? r.submitter)}</span>${r.codeHash === undefined ? '' : `, code <span class="mono">${esc(r.codeHash.slice(0, 16))}</span>`}, coordinator <span class="mono">${esc(r.coordinator)}</span> (epoch ${r.epoch}), R = ${r.reduces}</p>`
  // The last lines of each failed attempt's log, fetched from the node that ran it (the page draws first).
  for (const pre of document.querySelectorAll<HTMLElement>('pre.tail')) {
    const url = pre.dataset.log ?? ''
    const cached = tails.get(url)
    if (cached !== undefined) { pre.textContent = cached; continue }
    void fetch(url).then(async (res) => await res.text()).then((text) => {
      const tail = text.split('\n').filter((l) => l !== '').slice(-TAIL_LINES).join('\n') || '(it wrote nothing)'
      tails.set(url, tail)
      pre.textContent = tail
    }).catch(() => { pre.textContent = '(the log cannot be read)' })
  }
  const cancel = document.getElementById('cancel')
  if (cancel !== null) {
    cancel.onclick = () => {
      void fetch(withToken(`/api/jobs/${encodeURIComponent(r.jobId)}/cancel`), { method: 'POST', headers: { 'x-mrp2p-action': 'cancel' } })
    }
  }
}

async function refreshJob (): Promise<void> {
  const id = route().id
  if (id === undefined) return
  try {
    record = await getJson<JobRecord>(`/api/jobs/${encodeURIComponent(id)}`)
  } catch {
    view.innerHTML = `<p class="state-failed">no job ${esc(id)} on this node</p>`
    return
  }
  if (route().page === 'job') render()
}

function connect (): void {
  const events = new EventSource(withToken('/api/events'))
  events.addEventListener('open', () => { live.textContent = 'live' })
  events.addEventListener('error', () => { live.textContent = 'reconnecting…' })
  events.addEventListener('jobs', (e) => {
    jobs = JSON.parse((e as MessageEvent<string>).data) as JobSummary[]
    const r = route()
    if (r.page === 'jobs') render()
    else if (r.page === 'job') void refreshJob()
  })
  events.addEventListener('mesh', (e) => {
    mesh = JSON.parse((e as MessageEvent<string>).data) as Mesh
    if (route().page === 'mesh') render()
  })
}

window.addEventListener('hashchange', () => { render(); if (route().page === 'job') void refreshJob() })
render()
if (route().page === 'job') void refreshJob()
connect()
