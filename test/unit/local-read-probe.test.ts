import { mkdirSync, mkdtempSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readProbe, writeProbe } from '../../src/protocol/local-read-probe.js'
import { fileIdentity, sameIdentity } from '../../src/util/same-file.js'

const root = mkdtempSync(join(tmpdir(), 'mrp2p-probe-test-'))
const NONCE = 'ab'.repeat(32)

describe('the local-read probe', () => {
  it('is a nonce only its own user can read, in a folder only that user can open; read back it gives the nonce', () => {
    const probe = writeProbe(root)
    expect(statSync(probe.path).mode & 0o777).toBe(0o600)
    expect(statSync(dirname(probe.path)).mode & 0o777).toBe(0o700)
    expect(probe.nonce).toMatch(/^[0-9a-f]{64}$/)
    expect(readProbe(probe.path)).toBe(probe.nonce)
    expect(writeProbe(root).nonce).not.toBe(probe.nonce)
    probe.remove()
    expect(readProbe(probe.path)).toBeUndefined()
  })

  it('is the only file a peer can make the submitter read: any other name, a link, a pipe, or other content reads as nothing', () => {
    const fake = join(root, 'mrp2p-probe-AbC123')
    mkdirSync(fake)
    writeFileSync(join(fake, 'other'), NONCE)
    expect(readProbe(join(fake, 'other'))).toBeUndefined()
    const elsewhere = join(root, 'not-a-probe')
    mkdirSync(elsewhere)
    writeFileSync(join(elsewhere, 'nonce'), NONCE)
    expect(readProbe(join(elsewhere, 'nonce'))).toBeUndefined()
    expect(readProbe('/etc/passwd')).toBeUndefined()
    expect(readProbe('mrp2p-probe-AbC123/nonce')).toBeUndefined()
    // A link named like a probe, to a file that holds a nonce: refused (O_NOFOLLOW).
    symlinkSync(join(elsewhere, 'nonce'), join(fake, 'nonce'))
    expect(readProbe(join(fake, 'nonce'))).toBeUndefined()
    const piped = join(root, 'mrp2p-probe-Pipe01')
    mkdirSync(piped)
    execFileSync('mkfifo', [join(piped, 'nonce')])
    expect(readProbe(join(piped, 'nonce'))).toBeUndefined()
    const long = join(root, 'mrp2p-probe-Long01')
    mkdirSync(long)
    writeFileSync(join(long, 'nonce'), `${NONCE}0`)
    expect(readProbe(join(long, 'nonce'))).toBeUndefined()
    const right = join(root, 'mrp2p-probe-Right1')
    mkdirSync(right)
    writeFileSync(join(right, 'nonce'), NONCE)
    expect(readProbe(join(right, 'nonce'))).toBe(NONCE)
  })
})

describe('file identity', () => {
  it('is equal for the same unchanged file and differs once its modification time or size changes', () => {
    const f = join(root, 'input.txt')
    writeFileSync(f, 'one\n')
    const first = fileIdentity(f)
    if (first === undefined) throw new Error('no identity')
    expect(sameIdentity(first, fileIdentity(f) ?? first)).toBe(true)
    utimesSync(f, new Date(2030, 0, 1), new Date(2030, 0, 1))
    const touched = fileIdentity(f)
    expect(touched !== undefined && sameIdentity(first, touched)).toBe(false)
    writeFileSync(f, 'one\ntwo\n')
    utimesSync(f, new Date(2030, 0, 1), new Date(2030, 0, 1))
    const grown = fileIdentity(f)
    expect(grown !== undefined && touched !== undefined && sameIdentity(touched, grown)).toBe(false)
    expect(fileIdentity(root)).toBeUndefined()
    expect(fileIdentity(join(root, 'missing'))).toBeUndefined()
  })
})
