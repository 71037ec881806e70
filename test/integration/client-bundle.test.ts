import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../support/run-cli.js'

/*
 * bin/mrp2p.js runs the mesh-only commands from one bundled file while it is newer than every compiled file it was
 * made from, and everything else from the compiled modules (scripts/bundle-client.mjs, docs/performance.md).
 */
describe('the bundled client', () => {
  it('is built by npm run build, newer than what it was made from, and runs', () => {
    const bundle = join(REPO_ROOT, 'dist', 'mrp2p-client.mjs')
    const inputs = JSON.parse(readFileSync(join(REPO_ROOT, 'dist', 'mrp2p-client.inputs.json'), 'utf8')) as string[]
    expect(inputs).toContain('dist/src/cli/main.js')
    expect(inputs).toContain('dist/src/submitter/submit-job.js')
    const built = statSync(bundle).mtimeMs
    for (const f of inputs) expect(statSync(join(REPO_ROOT, f)).mtimeMs, f).toBeLessThanOrEqual(built)
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
    expect(execFileSync(process.execPath, [bundle, '--version'], { encoding: 'utf8' }).trim()).toBe(pkg.version)
    expect(execFileSync(process.execPath, [bundle, 'submit', '--help'], { encoding: 'utf8' })).toMatch(/^Usage: mrp2p submit/)
  })

  it('is chosen for mesh-only commands while current; a stale or missing one, and every other command, use the modules', () => {
    const root = mkdtempSync(join(tmpdir(), 'mrp2p-bin-'))
    mkdirSync(join(root, 'bin'))
    mkdirSync(join(root, 'dist', 'src', 'cli'), { recursive: true })
    copyFileSync(join(REPO_ROOT, 'bin', 'mrp2p.js'), join(root, 'bin', 'mrp2p.js'))
    const modules = join(root, 'dist', 'src', 'cli', 'main.js')
    writeFileSync(modules, "process.stdout.write('modules')\n")
    const bundle = join(root, 'dist', 'mrp2p-client.mjs')
    writeFileSync(bundle, "process.stdout.write('bundle')\n")
    const inputsFile = join(root, 'dist', 'mrp2p-client.inputs.json')
    writeFileSync(inputsFile, JSON.stringify(['dist/src/cli/main.js']))
    const past = new Date(Date.now() - 60_000)
    utimesSync(modules, past, past)
    const run = (...args: string[]): string => execFileSync(process.execPath, [join(root, 'bin', 'mrp2p.js'), ...args], { encoding: 'utf8' })
    try {
      for (const cmd of ['submit', 'status', 'jobs', 'job', 'logs', 'cancel', 'keygen', 'put', 'ls', 'cat', 'get', 'rm', 'fsck', 'wait']) expect(run(cmd), cmd).toBe('bundle')
      for (const cmd of ['join', 'run', 'cluster', 'demo', '--version', '--help']) expect(run(cmd), cmd).toBe('modules')
      // A compiled file changed after the bundle was made (tsc without npm run build): the modules, not stale code.
      const later = new Date(Date.now() + 60_000)
      utimesSync(modules, later, later)
      expect(run('submit')).toBe('modules')
      utimesSync(modules, past, past)
      expect(run('submit')).toBe('bundle')
      rmSync(inputsFile)
      expect(run('submit')).toBe('modules')
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})
