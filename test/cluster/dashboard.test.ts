import '../../src/util/polyfills.js'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type Cluster } from '../../src/harness/cluster.js'
import { NodeProcess } from '../../src/harness/node-process.js'
import { waitFor } from '../../src/harness/wait-for.js'
import { JobRecordSchema, type JobRecord } from '../../src/protocol/history-messages.js'
import { launchBrowser } from '../support/browser.js'
import { TEST_ELECTION_ENV, waitForAgreement } from '../support/cluster-views.js'
import { BOOKS, REFERENCE_CWD, REPO_ROOT, runCli, startCli } from '../support/run-cli.js'

/*
 * The dashboard in a real headless Chromium (issue #14): a 3-node mesh, a job submitted while node 1's
 * dashboard is open, seen to appear, progress and finish; its page with one timeline bar per attempt; the
 * mesh page; /metrics; then the coordinator SIGKILLed and another node's dashboard still showing the job.
 * Screenshots go to test-output/dashboard/ (look at them). And the token rules, on a node of their own.
 */

const TIMING = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'timing.ts')
const CHATTY = join(REPO_ROOT, 'test', 'fixtures', 'jobs', 'chatty.ts')
const SHOTS = join(REPO_ROOT, 'test-output', 'dashboard')
const ENV = { ...TEST_ELECTION_ENV, MRP2P_LOG_LEVEL: process.env.MRP2P_LOG_LEVEL ?? 'warn' }

let cluster: Cluster
let browser: Browser
let scratch: string

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true })
  scratch = mkdtempSync(join(tmpdir(), 'mrp2p-dashboard-'))
  const [c, b] = await Promise.all([startCluster({ nodes: 3, env: ENV, args: () => ['--slots', '2'] }), launchBrowser()])
  cluster = c
  browser = b
  await waitForAgreement(cluster, [0, 1, 2], 30_000)
}, 90_000)

afterAll(async () => {
  await browser?.close()
  await cluster?.stop()
})

function dashboardOf (i: number): string {
  const url = cluster.nodes[i].dashboard
  if (url === undefined) throw new Error(`node ${i} printed no dashboard line`)
  return url
}

async function recordOf (i: number, id: string): Promise<JobRecord> {
  const res = await fetch(`${dashboardOf(i)}api/jobs/${id}`)
  expect(res.status).toBe(200)
  return JobRecordSchema.parse(await res.json())
}

async function shot (page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

let jobId = ''

describe('dashboard', () => {
  it('shows a job appear, progress and finish live, with one timeline bar per attempt', async () => {
    const page = await browser.newPage()
    await page.goto(`${dashboardOf(1)}#/jobs`)
    await page.waitForFunction('document.getElementById("live")?.textContent === "live"', { timeout: 15_000 })
    const log = mkdtempSync(join(scratch, 'log-'))
    const submit = startCli(['submit', TIMING, '--input', ...BOOKS, '--reduces', '2', '--split-size', '150000', '--param', 'ms=300', '--param', `log=${log}`, '--output', join(scratch, 'out'), '--bootstrap', cluster.nodes[0].addr, '-q'], { cwd: REFERENCE_CWD, env: { MRP2P_LOG_LEVEL: 'warn' }, timeoutMs: 180_000 })
    // The page was loaded before the job existed: the row comes over the event stream, no reload.
    const appeared = await page.waitForSelector('#jobs tr[data-job^="timing-"]', { timeout: 30_000 })
    jobId = await appeared?.evaluate((el) => el.getAttribute('data-job')) ?? ''
    expect(jobId).toMatch(/^timing-[0-9a-f]{12}$/)
    await page.waitForFunction(`document.querySelector('tr[data-job="${jobId}"] .state-running') !== null`, { timeout: 30_000 })
    await shot(page, '1-jobs-running')
    const res = await submit.result
    expect(res.code).toBe(0)
    const record = await waitFor(async () => { const r = await recordOf(1, jobId); return r.state === 'succeeded' ? r : undefined }, { timeoutMs: 15_000, description: 'the succeeded record on node 1' })
    const row = `document.querySelector('tr[data-job="${jobId}"]')`
    await page.waitForFunction(`${row}?.querySelector('.state-succeeded') != null && ${row}.querySelector('.maps').textContent.includes('${record.maps}/${record.maps}') && ${row}.querySelector('.reduces').textContent.includes('2/2')`, { timeout: 15_000 })
    await shot(page, '2-jobs-succeeded')

    await page.goto(`${dashboardOf(1)}#/job/${jobId}`)
    const attempts = record.tasks.reduce((n, t) => n + t.attempts.length, 0)
    await page.waitForFunction(`document.querySelectorAll('#timeline rect.attempt').length === ${attempts}`, { timeout: 15_000 })
    const bars = await page.$$eval('#timeline rect.attempt', (rects) => rects.map((r) => [r.getAttribute('data-task'), r.getAttribute('data-outcome')]))
    expect(bars.filter(([t]) => t?.startsWith('map-') === true).length).toBeGreaterThanOrEqual(record.maps)
    expect(bars.filter(([, o]) => o === 'succeeded').length).toBe(record.maps + record.reduces)
    expect(await page.$eval('#job-state', (el) => el.textContent)).toBe('succeeded')
    await shot(page, '3-job')
    // Each bar links to its attempt's log, served from the node that ran it.
    const href = await page.$eval('#timeline a', (a) => a.getAttribute('href'))
    const logRes = await fetch(new URL(href ?? '', dashboardOf(1)))
    expect(logRes.status).toBe(200)

    await page.goto(`${dashboardOf(1)}#/mesh`)
    await page.waitForFunction(`document.querySelectorAll('#mesh tbody tr').length === 3 && [...document.querySelectorAll('#mesh tbody tr')].every((tr) => /\\d+(\\.\\d)? MiB/.test(tr.textContent))`, { timeout: 15_000 })
    await shot(page, '4-mesh')
    // Loopback nodes: each reaches the others directly, and none has a public address or relays.
    const cells = await page.$$eval('#mesh tbody tr', (trs) => trs.map((tr) => [tr.querySelector('.link')?.textContent, tr.querySelector('.reach')?.textContent]))
    expect(cells).toEqual([['-', 'private'], ['direct', 'private'], ['direct', 'private']])
    await page.close()
  }, 240_000)

  it('shows a failed job\'s failing attempts with the last lines of their logs', async () => {
    const r = await runCli(['submit', CHATTY, '--input', BOOKS[0], '--param', 'fail=1', '--max-attempts', '1', '--output', join(scratch, 'fails'), '--bootstrap', cluster.nodes[0].addr, '-q'], { cwd: REFERENCE_CWD, timeoutMs: 120_000 })
    expect(r.code).toBe(1)
    const failedId = /^job (\S+) submitted/m.exec(r.stdout)?.[1] ?? ''
    await waitFor(async () => (await recordOf(2, failedId)).state === 'failed', { timeoutMs: 15_000, description: 'the failed record on node 2' })
    const page = await browser.newPage()
    await page.goto(`${dashboardOf(2)}#/job/${failedId}`)
    await page.waitForFunction(`document.getElementById('job-state')?.textContent === 'failed' && [...document.querySelectorAll('#failures pre.tail')].some((p) => /about to fail on map \\d+/.test(p.textContent))`, { timeout: 15_000 })
    await shot(page, '6-failed-job')
    await page.close()
  }, 120_000)

  it('serves Prometheus metrics: mrp2p\'s, libp2p\'s and the process\'s', async () => {
    const texts = await Promise.all([0, 1, 2].map(async (i) => await (await fetch(`${dashboardOf(i)}metrics`)).text()))
    const all = texts.join('\n')
    expect(all).toMatch(/^mrp2p_task_attempts_total\{kind="map",outcome="succeeded"\} [1-9]\d*$/m)
    expect(all).toMatch(/^mrp2p_task_attempt_duration_seconds_count\{kind="reduce"\} [1-9]/m)
    expect(all).toMatch(/^mrp2p_bytes_total\{what="map_read"\} [1-9]/m)
    for (const t of texts) {
      expect(t).toMatch(/^mrp2p_jobs\{state="succeeded"\} 1$/m)
      expect(t).toMatch(/^mrp2p_jobs\{state="failed"\} 1$/m)
      expect(t).toMatch(/^mrp2p_members\{liveness="alive"\} 3$/m)
      expect(t).toMatch(/^mrp2p_election_epoch [1-9]/m)
      expect(t).toMatch(/^nodejs_eventloop_lag_seconds /m)
      expect(t).toMatch(/^process_resident_memory_bytes /m)
      expect(t).toMatch(/^libp2p_/m)
    }
    expect(texts.map((t) => /^mrp2p_is_coordinator 1$/m.test(t)).filter(Boolean).length).toBe(1)
  }, 60_000)

  it('still shows the job on another node after the coordinator is SIGKILLed', async () => {
    const { coordinator } = await waitForAgreement(cluster, [0, 1, 2], 20_000)
    await cluster.kill(coordinator)
    const other = [0, 1, 2].find((i) => i !== coordinator) ?? 0
    const page = await browser.newPage()
    await page.goto(`${dashboardOf(other)}#/job/${jobId}`)
    await page.waitForFunction(`document.getElementById('job-state')?.textContent === 'succeeded' && document.querySelectorAll('#timeline rect.attempt').length > 0`, { timeout: 15_000 })
    await page.goto(`${dashboardOf(other)}#/jobs`)
    await page.waitForFunction(`document.querySelector('tr[data-job="${jobId}"] .state-succeeded') !== null`, { timeout: 15_000 })
    await shot(page, '5-after-coordinator-kill')
    await page.close()
  }, 60_000)

  it('refuses a non-loopback --http without a token, and answers 401 to a request without it', async () => {
    const refused = await runCli(['join', '--data-dir', join(scratch, 'refused'), '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '0.0.0.0:0'], { timeoutMs: 30_000 })
    expect(refused).toMatchObject({ code: 2, stdout: '', stderr: 'mrp2p: --http 0.0.0.0:0 is reachable from other machines: it needs --http-token FILE (every request must then carry the token)\n' })
    const tokenFile = join(scratch, 'token')
    writeFileSync(tokenFile, 'a-long-enough-secret-token\n')
    const node = new NodeProcess({ dataDir: join(scratch, 'keyed'), listen: '/ip4/127.0.0.1/tcp/0', bootstrap: [], env: ENV, extraArgs: ['--http', '0.0.0.0:0', '--http-token', tokenFile] })
    node.start()
    try {
      const ready = await node.waitReady(30_000)
      const url = (ready.dashboard ?? '').replace('0.0.0.0', '127.0.0.1')
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
      for (const path of ['', 'api/jobs', 'metrics', 'api/events']) expect((await fetch(`${url}${path}`)).status, path).toBe(401)
      expect((await fetch(`${url}api/jobs`, { headers: { authorization: 'Bearer wrong-token-of-some-length' } })).status).toBe(401)
      expect((await fetch(`${url}api/jobs`, { headers: { authorization: 'Bearer a-long-enough-secret-token' } })).status).toBe(200)
      expect((await fetch(`${url}metrics?token=a-long-enough-secret-token`)).status).toBe(200)
      // Cancel also needs the token, and a header no cross-site form can send.
      expect((await fetch(`${url}api/jobs/x/cancel`, { method: 'POST' })).status).toBe(401)
      expect((await fetch(`${url}api/jobs/x/cancel`, { method: 'POST', headers: { authorization: 'Bearer a-long-enough-secret-token' } })).status).toBe(400)
    } finally {
      await node.stop()
    }
  }, 60_000)
})
