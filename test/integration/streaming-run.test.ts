import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runStreamingCommand } from '../../src/mapreduce/streaming-command.js'
import { BOOKS, REFERENCE_CWD, REPO_ROOT, runCli, SHARED_DATA, type CliResult } from '../support/run-cli.js'

/**
 * Streaming jobs (Hadoop Streaming's contract) through `mrp2p run`, a real process running real scripts. The cases
 * are named after hadoop-tools/hadoop-streaming's own tests; each output is checked against a shell pipeline that
 * computes the same thing (`cat | mapper | sort | reducer`, Hadoop Streaming's own way to test a job locally).
 */
const EXAMPLES = join(REPO_ROOT, 'examples', 'streaming')
const dir = mkdtempSync(join(tmpdir(), 'mrp2p-streaming-'))
let n = 0
const fresh = (name: string): string => join(dir, `${name}-${n++}`)
const BOOK_PATHS = BOOKS.map((b) => join(REFERENCE_CWD, b))

/** `sh -c script` with bytes out; LC_ALL=C so that sort compares bytes, as the engine does. */
function sh (script: string, env: Record<string, string> = {}): Buffer {
  return execFileSync('/bin/sh', ['-c', script], { env: { ...process.env, LC_ALL: 'C', ...env }, maxBuffer: 1 << 30 })
}

/** Every part file's lines, sorted by bytes (`cat part-* | LC_ALL=C sort`). */
function sortedParts (out: string): Buffer {
  return sh(`cat ${JSON.stringify(out)}/part-* | sort`)
}

function parts (out: string): string[] {
  return readdirSync(out).filter((f) => f.startsWith('part-')).sort()
}

async function run (args: string[], cwd = dir): Promise<CliResult> {
  return await runCli(['run', ...args, '-q'], { cwd, timeoutMs: 120_000 })
}

function expectOk (res: CliResult): void {
  if (res.code !== 0) throw new Error(`run failed (${String(res.code)}): ${res.stderr}`)
}

/** The refusal of a user's mistake: one line, a non-zero code, and no output folder. */
function expectRefused (res: CliResult, pattern: RegExp, out: string, code = 2): void {
  expect(res.code).toBe(code)
  expect(res.stderr.trim().split('\n')).toHaveLength(1)
  expect(res.stderr).toMatch(pattern)
  expect(() => statSync(out)).toThrow(/ENOENT/)
}

const q = (s: string): string => JSON.stringify(s)
const files = (...names: string[]): string[] => names.flatMap((f) => ['--file', join(EXAMPLES, f)])
const books = BOOK_PATHS.map(q).join(' ')

describe('TestStreaming: the examples equal their shell pipelines', () => {
  it('word count in Python (mapper.py / reducer.py), 3 reduces, 4 splits a book', async () => {
    const out = fresh('py-wc')
    expectOk(await run(['--mapper', 'python3 mapper.py', '--reducer', 'python3 reducer.py', ...files('mapper.py', 'reducer.py'), '--input', ...BOOK_PATHS, '--reduces', '3', '--split-size', '200000', '--output', out]))
    expect(parts(out)).toHaveLength(3)
    const pipeline = sh(`cat ${books} | python3 ${EXAMPLES}/mapper.py | sort -s -t "$(printf '\\t')" -k1,1 | python3 ${EXAMPLES}/reducer.py | sort`)
    expect(pipeline.length).toBeGreaterThan(100_000)
    expect(sortedParts(out).equals(pipeline)).toBe(true)
  })

  it('word count in awk, and the same with the reducer as combiner (TestStreamingCombiner)', async () => {
    const pipeline = sh(`cat ${books} | awk -f ${EXAMPLES}/wc-mapper.awk | sort -s -t "$(printf '\\t')" -k1,1 | awk -f ${EXAMPLES}/wc-reducer.awk | sort`)
    for (const combiner of [[], ['--combiner', 'awk -f wc-reducer.awk']]) {
      const out = fresh('awk-wc')
      expectOk(await run(['--mapper', 'awk -f wc-mapper.awk', '--reducer', 'awk -f wc-reducer.awk', ...combiner, ...files('wc-mapper.awk', 'wc-reducer.awk'), '--input', ...BOOK_PATHS, '--reduces', '2', '--output', out]))
      expect(sortedParts(out).equals(pipeline)).toBe(true)
    }
  })

  it('inverted index in Python reads mapreduce_map_input_file: the document as given on the command line', async () => {
    const out = fresh('py-index')
    expectOk(await run(['--mapper', 'python3 index-mapper.py', '--reducer', 'python3 index-reducer.py', ...files('index-mapper.py', 'index-reducer.py'), '--input', ...BOOKS, '--reduces', '2', '--split-size', '300000', '--output', out], REFERENCE_CWD))
    const perDoc = BOOKS.map((b) => `mapreduce_map_input_file=${q(b)} python3 ${EXAMPLES}/index-mapper.py < ${q(b)}`).join('; ')
    const pipeline = execFileSync('/bin/sh', ['-c', `(${perDoc}) | sort -s -t "$(printf '\\t')" -k1,1 | python3 ${EXAMPLES}/index-reducer.py | sort`], { cwd: REFERENCE_CWD, env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 1 << 30 })
    expect(sortedParts(out).equals(pipeline)).toBe(true)
    expect(sortedParts(out).toString()).toMatch(/^Gutenberg\t8 \.\.\/pg-being_ernest\.txt,/m)
  })

  it('--cmdenv reaches every command, with Hadoop\'s and mrp2p\'s task variables', async () => {
    const out = fresh('env')
    const input = join(dir, 'two-lines.txt')
    writeFileSync(input, 'x\ny\n')
    expectOk(await run(['--mapper', 'echo "$GREETING|$map_input_file|$mapreduce_task_partition|$MRP2P_TASK|$mapreduce_job_reduces"', '--reducer', 'cat; echo "$GREETING|$MRP2P_TASK|$mapreduce_task_partition"', '--cmdenv', 'GREETING=hi there', '--input', input, '--output', out]))
    expect(readFileSync(join(out, 'part-00000'), 'utf8')).toBe(`hi there|${input}|0|map-0|1\t\nhi there|reduce-0|0\n`)
  })
})

describe('TestStreamingBadRecords and TestRawBytesStreaming: any bytes come through', () => {
  it('invalid UTF-8, a 10 MiB line, lines without tabs, an empty file: identity job equals sort of the input', async () => {
    const input = join(dir, 'bad.txt')
    const big = 'k'.repeat(10 * 1024 * 1024)
    writeFileSync(input, Buffer.concat([
      Buffer.from('b\t2\nno tab here\n'),
      Buffer.from([0xff, 0xfe, 0x09, 0xc3, 0x28, 0x0a, 0x80, 0x0a]),
      Buffer.from(`${big}\tbig\na\t1\n\tempty key\nlast line without newline`)
    ]))
    const empty = join(dir, 'empty.txt')
    writeFileSync(empty, '')
    const out = fresh('bytes')
    expectOk(await run(['--mapper', 'cat', '--reducer', 'cat', '--input', input, empty, '--output', out]))
    // A line without a tab is a key with an empty value: the reducer reads it back as `line<TAB>`, as in Hadoop.
    const expected = sh(`{ cat ${q(input)}; echo; } | sed '/\t/!s/$/\t/' | sort -s -t "$(printf '\\t')" -k1,1`)
    expect(readFileSync(join(out, 'part-00000')).equals(expected)).toBe(true)
  })

  it('an empty input: the reducer still runs (its output is the part), as Hadoop runs every reduce', async () => {
    const empty = join(dir, 'empty-only.txt')
    writeFileSync(empty, '')
    const out = fresh('empty')
    expectOk(await run(['--mapper', 'cat', '--reducer', 'echo "reducer ran"', '--input', empty, '--reduces', '2', '--output', out]))
    expect(parts(out).map((p) => readFileSync(join(out, p), 'utf8'))).toEqual(['reducer ran\n', 'reducer ran\n'])
  })
})

describe('TestUnconsumedInput: a mapper may stop reading early', () => {
  it('a mapper that reads one line of a 24 MiB split and exits 0 succeeds', async () => {
    const input = join(dir, 'many-lines.txt')
    writeFileSync(input, 'line of text that nobody reads\n'.repeat(800_000))
    const out = fresh('unconsumed')
    expectOk(await run(['--mapper', 'head -n 1', '--reducer', 'cat', '--input', input, '--split-size', '32MiB', '--output', out]))
    expect(readFileSync(join(out, 'part-00000'), 'utf8')).toBe('line of text that nobody reads\t\n')
  })
})

describe('TestStreamingExitStatus and TestStreamingStderr: a failed command says why', () => {
  const input = join(dir, 'words.txt')
  writeFileSync(input, 'alpha beta\ngamma\n')

  it('a mapper that exits non-zero fails the run with the task, the command, the code and its stderr tail', async () => {
    const out = fresh('exit')
    const res = await run(['--mapper', 'echo "first problem" >&2; echo "bad record 7" >&2; exit 3', '--reducer', 'cat', '--input', input, '--output', out])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/map 0: mapper "echo \\"first problem\\" >&2; echo \\"bad record 7\\" >&2; exit 3" exited with code 3; the last lines of its stderr:\n {2}first problem\n {2}bad record 7/)
    expect(res.stderr).not.toMatch(/at .*\.js:\d+/)
    expect(() => statSync(out)).toThrow(/ENOENT/)
  })

  it('a reducer that dies half-way through its partition fails the run and leaves no output', async () => {
    const input2 = join(dir, 'numbers.txt')
    writeFileSync(input2, Array.from({ length: 5000 }, (_, i) => `${i}\n`).join(''))
    const out = fresh('reducer-dies')
    const res = await run(['--mapper', 'cat', '--reducer', 'head -n 100; kill -9 $$', '--input', input2, '--output', out])
    expect(res.code).toBe(1)
    expect(res.stderr).toMatch(/reduce 0: reducer "head -n 100; kill -9 \$\$" was killed by SIGKILL/)
    expect(() => statSync(out)).toThrow(/ENOENT/)
  })

  it('what a command writes to stderr passes through, all of it, and the run succeeds', async () => {
    const out = fresh('stderr')
    const res = await run(['--mapper', 'i=0; while [ $i -lt 20000 ]; do echo "progress $i" >&2; i=$((i+1)); done; cat', '--reducer', 'cat', '--input', input, '--output', out])
    expectOk(res)
    expect(res.stderr.split('\n').filter((l) => l.startsWith('progress '))).toHaveLength(20000)
    expect(readFileSync(join(out, 'part-00000'), 'utf8')).toBe('alpha beta\t\ngamma\t\n')
  })

  // `run` passes the command's own stderr through (here the shell's complaint); mrp2p's error is one line after it.
  function expectCommandRefused (res: CliResult, pattern: RegExp, out: string): void {
    expect(res.code).toBe(1)
    const ours = res.stderr.trim().split('\n').filter((l) => l.startsWith('mrp2p: '))
    expect(ours).toHaveLength(1)
    expect(ours[0]).toMatch(pattern)
    expect(() => statSync(out)).toThrow(/ENOENT/)
  }

  it('a command not found says so in one line', async () => {
    const out = fresh('not-found')
    expectCommandRefused(await run(['--mapper', 'no-such-mapper-command --x', '--reducer', 'cat', '--input', input, '--output', out]), /^mrp2p: .*mapper command not found: .*no-such-mapper-command: not found$/, out)
  })

  it('a script that is not executable', async () => {
    const script = join(dir, 'plain.sh')
    writeFileSync(script, 'echo hi\n')
    const out = fresh('not-exec')
    expectCommandRefused(await run(['--mapper', `${script}`, '--reducer', 'cat', '--input', input, '--output', out]), /mapper command cannot be run \(not executable\): .*Permission denied/, out)
  })
})

describe('streaming flags refuse mistakes in one line, before anything runs', () => {
  const input = join(dir, 'flags.txt')
  writeFileSync(input, 'x\n')
  it('a mapper without a reducer, both a job and --mapper, neither', async () => {
    const out = fresh('flags')
    expectRefused(await run(['--mapper', 'cat', '--input', input, '--output', out]), /a streaming job needs --reducer/, out)
    expectRefused(await run(['wc', '--mapper', 'cat', '--reducer', 'cat', '--input', input, '--output', out]), /either a job module \('wc'\) or --mapper\/--reducer/, out)
    expectRefused(await run(['--input', input, '--output', out]), /name a job/, out)
  })

  it('a missing --file, two files of one name, a bad --cmdenv', async () => {
    const out = fresh('flags')
    expectRefused(await run(['--mapper', 'cat', '--reducer', 'cat', '--file', join(dir, 'gone.py'), '--input', input, '--output', out]), /--file .*gone\.py does not exist/, out)
    expectRefused(await run(['--mapper', 'cat', '--reducer', 'cat', '--file', input, '--file', input, '--input', input, '--output', out]), /another --file is also named flags\.txt/, out)
    expectRefused(await run(['--mapper', 'cat', '--reducer', 'cat', '--cmdenv', '1BAD=x', '--input', input, '--output', out]), /--cmdenv takes NAME=value/, out)
  })
})

describe('back-pressure: a command that does not read is not fed past its pipe', () => {
  it('while the command sleeps before reading, the feed waits instead of buffering', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61)
    const acceptedAt: number[] = []
    let started = 0
    const cwd = mkdtempSync(join(tmpdir(), 'mrp2p-bp-'))
    await runStreamingCommand({ role: 'mapper', task: 'map 0', command: 'sleep 1; cat >/dev/null', cwd, env: {} }, async (stdin) => {
      started = performance.now()
      for (let i = 0; i < 256; i++) {
        if (!await stdin.write(chunk)) break
        acceptedAt.push(performance.now() - started)
      }
    }, () => {})
    // Every write that returned within 0.5 s of the start went in while the command slept (it reads after 1 s):
    // a pipe holds 64 KiB and Node one pending write, where without pacing all 16 MiB would have been taken at once.
    expect(acceptedAt).toHaveLength(256)
    expect(acceptedAt.filter((ms) => ms < 500).length).toBeLessThanOrEqual(4)
  })
})

// Guard against a silent skip of the data this file depends on.
it('has the books', () => {
  expect(readdirSync(SHARED_DATA).filter((f) => f.startsWith('pg-'))).toHaveLength(8)
})
