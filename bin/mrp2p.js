#!/usr/bin/env node
// The published entry point runs the compiled CLI (npm ci runs `prepare`, which builds it). The commands that only
// talk to a mesh run from one bundled file (scripts/bundle-client.mjs) while it is current: it starts in a third of
// the time. Every other command, and these when the bundle is missing or older than what it was made from (a `tsc`
// without `npm run build`), run from the compiled modules.
import { readFileSync, statSync } from 'node:fs'

const CLIENT_COMMANDS = new Set(['submit', 'status', 'jobs', 'job', 'logs', 'cancel', 'keygen', 'put', 'ls', 'cat', 'get', 'rm', 'fsck', 'wait'])

function currentBundle () {
  try {
    const root = new URL('../', import.meta.url)
    const bundle = new URL('dist/mrp2p-client.mjs', root)
    const built = statSync(bundle).mtimeMs
    const inputs = JSON.parse(readFileSync(new URL('dist/mrp2p-client.inputs.json', root), 'utf8'))
    if (!Array.isArray(inputs) || inputs.length === 0) return undefined
    for (const f of inputs) if (statSync(new URL(f, root)).mtimeMs > built) return undefined
    return bundle.href
  } catch {
    return undefined
  }
}

await import((CLIENT_COMMANDS.has(process.argv[2]) ? currentBundle() : undefined) ?? '../dist/src/cli/main.js')
