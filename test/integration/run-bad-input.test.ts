import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, type CliResult } from '../support/run-cli.js'

const dir = mkdtempSync(join(tmpdir(), 'mrp2p-bad-input-'))
writeFileSync(join(dir, 'in.txt'), 'alpha beta\ngamma alpha\n')
mkdirSync(join(dir, 'folder'))
execFileSync('mkfifo', [join(dir, 'fifo')])
writeFileSync(join(dir, 'syntax.ts'), 'export function map (\n')
writeFileSync(join(dir, 'no-map.ts'), 'export const reduce = () => "x"\n')
writeFileSync(join(dir, 'map-and-separator.ts'), 'export const map = () => {}\nexport const keyValueSeparator = " "\n')
writeFileSync(join(dir, 'long-separator.ts'), 'export const keyValueSeparator = "::"\n')
writeFileSync(join(dir, 'newline-separator.ts'), 'export const keyValueSeparator = "\\n"\n')
writeFileSync(join(dir, 'combine-no-reduce.ts'), 'export const map = () => {}\nexport const combine = () => "x"\n')
writeFileSync(join(dir, 'imports-missing.ts'), 'import x from "./nowhere.js"\nexport const map = x\nexport const reduce = x\n')
writeFileSync(join(dir, 'throws-at-load.ts'), 'throw new Error("top-level boom")\n')
writeFileSync(join(dir, 'map-throws.ts'), [
  "import { defineJob } from 'mrp2p'",
  'function explode (word: string): never {',
  '  throw new Error(`cannot map ${word}`)',
  '}',
  'export default defineJob({',
  '  map (doc, text, emit) { for (const w of text.split(/\\s+/)) { if (w === "gamma") explode(w); emit(w, "1") } },',
  '  reduce: (k, vs) => String(vs.length)',
  '})'
].join('\n'))
writeFileSync(join(dir, 'reduce-throws.ts'), [
  'export const map = (doc: string, text: string, emit: (k: string, v: string) => void) => { for (const w of text.split(/\\s+/)) if (w !== "") emit(w, "1") }',
  'export const reduce = (k: string) => { if (k === "beta") throw new RangeError("no beta allowed"); return "1" }'
].join('\n'))

let n = 0
const out = (): string => join(dir, `out-${n++}`)

/** A user mistake: one line on stderr, naming the problem, no stack trace, the given exit code, and no output written. */
function expectOneLineError (res: CliResult, code: number, pattern: RegExp, output?: string): void {
  expect(res.code).toBe(code)
  expect(res.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1)
  expect(res.stderr).toMatch(/^mrp2p: /)
  expect(res.stderr).toMatch(pattern)
  expect(res.stderr).not.toMatch(/\n\s+at /)
  if (output !== undefined) expect(existsSync(output)).toBe(false)
}

describe('mrp2p run refuses bad input with one clear line', () => {
  it('missing input', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', 'wc', '--input', 'in.txt', 'nope.txt', '-o', o], { cwd: dir }), 2, /input nope\.txt does not exist/, o)
  })

  it('a folder as input', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', 'wc', '--input', 'folder', '-o', o], { cwd: dir }), 2, /input folder is a directory/, o)
  })

  it('an input that cannot be read as a file (a FIFO)', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', 'wc', '--input', 'fifo', '-o', o], { cwd: dir }), 2, /input fifo is not a regular file/, o)
  })

  it('no input at all', async () => {
    expectOneLineError(await runCli(['run', 'wc'], { cwd: dir }), 2, /--input/)
  })

  it('unknown built-in job', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', 'wordcount', '--input', 'in.txt', '-o', o], { cwd: dir }), 2, /unknown job 'wordcount' \(built-in jobs: wc, indexer, grep/, o)
  })

  it('job module not found', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', './missing.ts', '--input', 'in.txt', '-o', o], { cwd: dir }), 2, /job module \.\/missing\.ts not found/, o)
  })

  it('job module with a syntax error names file, line and column', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', './syntax.ts', '--input', 'in.txt', '-o', o], { cwd: dir }), 2, /job module \.\/syntax\.ts does not build: .*syntax\.ts:2:\d+: /, o)
  })

  it('job module importing a file that does not exist', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', './imports-missing.ts', '--input', 'in.txt', '-o', o], { cwd: dir }), 2, /does not build: .*Could not resolve "\.\/nowhere\.js"/, o)
  })

  it('job module that throws while loading', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', './throws-at-load.ts', '--input', 'in.txt', '-o', o], { cwd: dir }), 2, /job module throws-at-load failed to load: top-level boom/, o)
  })

  it('job module without map', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', './no-map.ts', '--input', 'in.txt', '-o', o], { cwd: dir }), 2, /job module no-map does not export a map function/, o)
  })

  it('job module with both a map and a keyValueSeparator', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', './map-and-separator.ts', '--input', 'in.txt', '-o', o], { cwd: dir }), 2, /job module map-and-separator exports both map and keyValueSeparator: give one/, o)
  })

  for (const [file, shown] of [['long-separator', '"::"'], ['newline-separator', '"\\n"']]) {
    it(`job module whose keyValueSeparator is ${shown}`, async () => {
      const o = out()
      expectOneLineError(await runCli(['run', `./${file}.ts`, '--input', 'in.txt', '-o', o], { cwd: dir }), 2, new RegExp(`job module ${file}: keyValueSeparator must be one ASCII character other than a newline, got ${shown.replace(/\\/g, '\\\\')}`), o)
    })
  }

  it('job module with a combiner and no reduce', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', './combine-no-reduce.ts', '--input', 'in.txt', '-o', o], { cwd: dir }), 2, /job module combine-no-reduce exports combine but no reduce/, o)
  })

  for (const bad of ['0', '-1', '1.5', 'three', '']) {
    it(`--reduces '${bad}'`, async () => {
      const o = out()
      expectOneLineError(await runCli(['run', 'wc', '--input', 'in.txt', '-r', bad, '-o', o], { cwd: dir }), 2, /--reduces must be a positive integer/, o)
    })
  }

  it('--split-size that is not a size', async () => {
    expectOneLineError(await runCli(['run', 'wc', '--input', 'in.txt', '--split-size', '12parsecs', '-o', out()], { cwd: dir }), 2, /--split-size must be a size in bytes/)
  })

  it('--param without =', async () => {
    expectOneLineError(await runCli(['run', 'grep', '--input', 'in.txt', '--param', 'pattern', '-o', out()], { cwd: dir }), 2, /--param takes key=value, got 'pattern'/)
  })

  it('a log level that does not exist, and a blank one taken as unset', async () => {
    const o = out()
    expectOneLineError(await runCli(['run', 'wc', '--input', 'in.txt', '-o', o], { cwd: dir, env: { MRP2P_LOG_LEVEL: 'loud' } }), 2, /MRP2P_LOG_LEVEL must be one of .*info.*, got "loud"/, o)
    const ok = await runCli(['run', 'wc', '--input', 'in.txt', '-o', out(), '-q'], { cwd: dir, env: { MRP2P_LOG_LEVEL: '' } })
    expect(ok.stderr).toBe('')
    expect(ok.code).toBe(0)
  })

  it('an output folder that already holds files, left untouched', async () => {
    const o = out()
    mkdirSync(o)
    writeFileSync(join(o, 'keep.txt'), 'mine')
    expectOneLineError(await runCli(['run', 'wc', '--input', 'in.txt', '-o', o], { cwd: dir }), 2, /output folder .* already holds files/)
    expect(readdirSync(o)).toEqual(['keep.txt'])
  })
})

describe('a job whose own code throws', () => {
  it('map: names the job and the document, shows the user\'s stack, leaves no output', async () => {
    const o = out()
    const res = await runCli(['run', './map-throws.ts', '--input', 'in.txt', '-o', o], { cwd: dir })
    expect(res.code).toBe(1)
    const [first, ...stack] = res.stderr.trimEnd().split('\n')
    expect(first).toBe('mrp2p: job map-throws: map failed on document in.txt: cannot map gamma')
    expect(stack[0]).toBe('Error: cannot map gamma')
    // the user's own frames, mapped back to their .ts lines; none of the engine's
    expect(stack.join('\n')).toContain(`at explode (${join(dir, 'map-throws.ts')}:3:`)
    expect(stack.join('\n')).not.toMatch(/mapreduce|node_modules|node:internal/)
    expect(existsSync(o)).toBe(false)
  })

  it('reduce: names the key, and no part file or _SUCCESS is left', async () => {
    const o = out()
    const res = await runCli(['run', './reduce-throws.ts', '--input', 'in.txt', '-r', '1', '-o', o], { cwd: dir })
    expect(res.code).toBe(1)
    expect(res.stderr.split('\n')[0]).toBe('mrp2p: job reduce-throws: reduce failed on key "beta": no beta allowed')
    expect(res.stderr).toMatch(/^RangeError: no beta allowed\n\s+at (Module\.)?reduce \((.*)\)$/m)
    expect(/at (Module\.)?reduce \((.*):2:\d+\)/.exec(res.stderr)?.[2]).toBe(join(dir, 'reduce-throws.ts'))
    expect(existsSync(o)).toBe(false)
  })

  it('grep without its pattern says what to pass', async () => {
    const res = await runCli(['run', 'grep', '--input', 'in.txt', '-o', out()], { cwd: dir })
    expect(res.code).toBe(1)
    expect(res.stderr.split('\n')[0]).toBe('mrp2p: job grep: map failed on document in.txt: grep needs --param pattern=REGEX')
  })
})

describe('built-in grep', () => {
  it('outputs the matching lines keyed by document and line number', async () => {
    const o = out()
    const res = await runCli(['run', 'grep', '--input', 'in.txt', '--param', 'pattern=alpha', '--split-size', '4', '-o', o, '-q'], { cwd: dir })
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    const { readFileSync } = await import('node:fs')
    expect(readFileSync(join(o, 'part-00000'), 'utf8')).toBe('in.txt:000000001 alpha beta\nin.txt:000000002 gamma alpha\n')
  })
})

describe('mrp2p submit refuses bad churn options before it looks for a mesh', () => {
  // A bootstrap nobody listens on: a refusal must come before any dial.
  const nowhere = ['--bootstrap', '/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGRUVh8nTbrhGPvmvdmw6TKGaH3vFsT8mYEpodajhLv8K', '--timeout', '2']

  it('--intermediate-replicas past 2', async () => {
    const o = out()
    expectOneLineError(await runCli(['submit', 'wc', '--input', 'in.txt', '--intermediate-replicas', '3', '-o', o, ...nowhere], { cwd: dir }), 2, /--intermediate-replicas must be 1 or 2, got 3/, o)
  })

  it('--reduce-slow-start that is not a fraction', async () => {
    const o = out()
    expectOneLineError(await runCli(['submit', 'wc', '--input', 'in.txt', '--reduce-slow-start', '1.5', '-o', o, ...nowhere], { cwd: dir }), 2, /--reduce-slow-start must be a fraction from 0 to 1, got '1.5'/, o)
  })
})
