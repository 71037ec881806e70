import '../../src/util/polyfills.js'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, expect, it } from 'vitest'
import { waitFor } from '../../src/harness/wait-for.js'
import { startNode } from '../../src/node/node.js'
import { startRoles } from '../../src/node/roles.js'
import { submitJob } from '../../src/submitter/submit-job.js'
import { createLogger } from '../../src/util/logger.js'
import { trackTimers } from '../support/live-timers.js'

/** What keeps this process busy, by kind (TCP sockets, servers, timers, message ports…), counted. */
function resources (): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1
  return out
}

const SRC = fileURLToPath(new URL('../../src/', import.meta.url))
/** A timer set by mrp2p's own code (not libp2p's, and not this test's polls). */
const isOurs = (stack: string): boolean => stack.split(' < ')[0]?.includes(SRC) === true && !stack.includes('wait-for.ts')

let root: string | undefined
afterAll(async () => { if (root !== undefined) await rm(root, { recursive: true, force: true }) })

it('a node that ran a job and was stopped leaves nothing running: no timer of ours, and the process\'s handles as before start', async () => {
  root = await mkdtemp(join(tmpdir(), 'mrp2p-lifecycle-'))
  const input = join(root, 'in.txt')
  await writeFile(input, 'a b c\nb c d\n'.repeat(2_000))
  const before = resources()
  const timers = trackTimers()
  try {
    const node = await startNode({ dataDir: join(root, 'node'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], slots: 2, worker: true, election: { leaseMs: 1_000, heartbeatMs: 200 }, version: 'test' })
    const roles = await startRoles(node, { worker: true, slots: 2, version: 'test' })
    await waitFor(() => node.isCoordinator(), { timeoutMs: 10_000, description: 'the node leads its mesh of one' })
    const result = await submitJob({
      job: 'wc', input: [input], bootstrap: node.addrs().map((a) => multiaddr(a)), listen: ['/ip4/127.0.0.1/tcp/0'], reduces: 2, output: join(root, 'out'),
      splitSize: 8_192, params: {}, coordinatorTimeoutMs: 10_000, maxAttempts: 2, log: createLogger('test')
    })
    expect(result.maps).toBeGreaterThan(1)
    expect(await readFile(join(root, 'out', 'part-00000'), 'utf8')).toMatch(/^[a-d] \d+$/m)
    // The job is done, but the node still runs: its heartbeat, ticks and loops are live.
    expect(timers.stacks().some(isOurs)).toBe(true)

    await roles.stop()
    await node.stop()

    // A timer our code set and did not clear by the end of stop() is a loop or a wait that outlives its service.
    // Async hooks hear of a timer's end a moment after it was cleared, hence the poll.
    const ours = (): string[] => timers.stacks().filter(isOurs)
    await waitFor(() => ours().length === 0, { timeoutMs: 1_000, intervalMs: 10, description: 'no timer of ours left after stop' }).catch(() => {
      throw new Error(`timers of ours still live after stop:\n${ours().join('\n')}`)
    })
    // libp2p's own timers and sockets wind down on their own, bounded by its close timeouts.
    // (The test runner's own transient handles may come and go: no kind may be above its count before start.)
    const extra = (): string[] => Object.entries(resources()).filter(([kind, n]) => n > (before[kind] ?? 0)).map(([kind, n]) => `${kind} ${n - (before[kind] ?? 0)}`)
    await waitFor(() => extra().length === 0, { timeoutMs: 5_000, intervalMs: 50, description: 'the process back to its handles before start' }).catch(() => {
      throw new Error(`more than before start, after stop: ${extra().join(', ')}`)
    })
  } finally {
    timers.disable()
  }
})
