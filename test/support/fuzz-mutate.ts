import type { Prng } from './prng.js'

/**
 * Mutation engine of the protocol fuzzer (test/cluster/fuzz.test.ts): values
 * and byte strings derived from valid messages, seeded so that a failing run
 * replays from its seed. Three layers, as in AFL-style fuzzers: structure-aware
 * (a field of a valid message gets a hostile value), byte-level (flips, cuts,
 * splices of the encoded message), and framing (length prefixes that lie).
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

const enc = new TextEncoder()

/** Numbers at and around every bound our schemas draw (indexes, epochs, slots, attempts, byte counts). */
export const EDGE_NUMBERS: readonly number[] = [
  0, -0, 1, -1, 0.5, -0.5, 2, 3, 63, 64, 65, 100, 255, 256, 1023, 1024, 1025, 65_535, 65_536,
  99_999, 100_000, 100_001, 999_999, 1_000_000, 1_000_001, 9_999_999, 10_000_000, 10_000_001,
  2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 32 + 1, 2 ** 52, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53),
  Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE,
  1e21, 1e300, 3_600_000, 3_600_001, 604_800_000, 604_800_001, 7 * 24 * 3600_000 + 1
]

/** Strings that have broken parsers, file systems and log lines elsewhere. */
export const EDGE_STRINGS: readonly string[] = [
  '', ' ', '.', '..', '/', '\\', '../../etc/passwd', '..\\..\\windows', '/etc/passwd', 'a/../../b', '%2e%2e%2f', '....//',
  'job/../../x', '~', '~root', 'CON', 'NUL', 'aux.txt', '\u0000', 'a\u0000b', '\n', '\r\n', '\t', '\u001b[2J', '\uFEFF',
  '\u202E', '\uFFFF', '\uD800', '\uDFFF', '😀', 'é', 'ß'.repeat(3), '__proto__', 'constructor', 'prototype', 'toString',
  'hasOwnProperty', 'valueOf', '${jndi:ldap://x}', '{{7*7}}', '<script>', "'; DROP TABLE", '%s%s%s%n', 'null', 'undefined',
  'NaN', 'Infinity', '-1', '1e999', 'true', '[]', '{}', '0x10', '12D3KooW', '12D3KooWQFwGmycWgsvqUikrPUkdRiTJgihm9cejC3eucpRpYHRD',
  'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N', '/ip4/127.0.0.1/tcp/1', '/ip4/0.0.0.0/tcp/0', '/dns4/localhost/tcp/22',
  '/ip6/::1/tcp/65535/p2p/12D3KooWQFwGmycWgsvqUikrPUkdRiTJgihm9cejC3eucpRpYHRD', '/unix/%2Ftmp%2Fsock', '/p2p-circuit', 'wc', 'indexer',
  'map', 'reduce', 'user', 'worker', 'fetch', 'coordinator', 'candidate', 'follower', 'heartbeat', 'lease', 'claim', 'grant',
  'release', 'leave', 'f'.repeat(64), 'F'.repeat(64), '0'.repeat(63), '0'.repeat(65), 'g'.repeat(64)
]

/** A string of `n` characters from a small hostile alphabet (ASCII, controls, surrogates, wide chars). */
export function randomString (rng: Prng, n: number): string {
  const alphabets = [
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_',
    '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz',
    './\\%:@!$&\'()*+,;=?#[]{}<>"`~|^',
    '\u0000\u0001\u001f\u007f\u0085\u00a0\u2028\u2029\ufeff\ufffe\uffff',
    'éüßжç中文字😀\u0301\u200b'
  ]
  const alphabet = rng.pick(alphabets)
  let out = ''
  for (let i = 0; i < n; i++) out += alphabet[rng.int(0, alphabet.length - 1)]
  if (rng.chance(0.05)) out += '\uD800' // a lone surrogate: valid JSON escape, invalid UTF-8 when encoded by some writers
  return out
}

/** A length skewed towards the edges: mostly short, sometimes around a limit, rarely huge. */
export function edgyLength (rng: Prng, max = 200_000): number {
  const r = rng.next()
  if (r < 0.5) return rng.int(0, 16)
  if (r < 0.75) return rng.int(17, 300)
  if (r < 0.9) return rng.pick([63, 64, 65, 127, 128, 199, 200, 201, 255, 256, 499, 500, 501, 511, 512, 513, 4000, 4001, 4096, 4097, 16_384, 16_385])
  return Math.min(max, rng.pick([65_536, 65_537, 70_000, 100_000, 200_000]))
}

/** One hostile JSON value; `depth` bounds the nesting of what it builds. */
export function hostileValue (rng: Prng, depth = 2): Json {
  switch (rng.int(0, 11)) {
    case 0: return null
    case 1: return rng.chance(0.5)
    case 2:
    case 3: return rng.pick(EDGE_NUMBERS)
    case 4: return rng.int(-1000, 1000) + (rng.chance(0.2) ? rng.next() : 0)
    case 5:
    case 6: return rng.pick(EDGE_STRINGS)
    case 7: return randomString(rng, edgyLength(rng))
    case 8: return depth <= 0 ? [] : Array.from({ length: rng.int(0, 4) }, () => hostileValue(rng, depth - 1))
    case 9: {
      if (depth <= 0) return {}
      const o: Record<string, Json> = {}
      for (let i = rng.int(0, 4); i > 0; i--) o[rng.chance(0.5) ? rng.pick(EDGE_STRINGS) : randomString(rng, rng.int(1, 8))] = hostileValue(rng, depth - 1)
      return o
    }
    case 10: return nested(rng.int(10, 2_000), rng.chance(0.5))
    default: return rng.pick(EDGE_STRINGS).repeat(rng.int(2, 2_000))
  }
}

/** `[[[…]]]` or `{"a":{"a":…}}`: deep nesting that recursive parsers and validators may choke on. */
function nested (depth: number, arrays: boolean): Json {
  let v: Json = arrays ? [] : {}
  for (let i = 0; i < depth; i++) v = arrays ? [v] : { a: v }
  return v
}

function clone<T extends Json> (v: T): T {
  return JSON.parse(JSON.stringify(v)) as T
}

/**
 * Paths to values inside `v` (the root is the empty path): all of them for a
 * message, a bounded sample (the first 512, at most 24 deep) for a mutant that
 * has grown huge arrays or deep nesting, so that mutating it stays cheap.
 */
function paths (v: Json, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (out.length >= 512) return out
  out.push(prefix)
  if (prefix.length >= 24) return out
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length && out.length < 512; i++) paths(v[i], [...prefix, i], out)
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      if (out.length >= 512) break
      paths(v[k], [...prefix, k], out)
    }
  }
  return out
}

function getAt (v: Json, path: Array<string | number>): Json {
  let cur: Json = v
  for (const p of path) cur = (cur as Record<string | number, Json>)[p]
  return cur
}

function setAt (root: Json, path: Array<string | number>, value: Json): Json {
  if (path.length === 0) return value
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, Json>
  parent[path[path.length - 1]] = value
  return root
}

/** How many copies to make: mostly a few, now and then many, rarely `max` (big mutants cost both sides time). */
function bigCount (rng: Prng, max: number): number {
  const r = rng.next()
  if (r < 0.6) return rng.int(2, 10)
  if (r < 0.9) return rng.pick([100, 255, 256, 1_000])
  return max
}

/** A value of the same kind nudged to its edge: numbers ±1, × huge, negated; strings stretched or emptied. */
function nudge (rng: Prng, v: Json): Json {
  if (typeof v === 'number') {
    return rng.pick([v + 1, v - 1, -v, v * 1_000_000, v + 0.5, v + 2 ** 32, Number.MAX_SAFE_INTEGER - rng.int(0, 2), 2 ** 53, -1, 0, String(v) as unknown as number])
  }
  if (typeof v === 'string') {
    // Chosen first, then built: building every candidate would stretch strings to a megabyte for nothing.
    switch (rng.int(0, 11)) {
      case 0: return ''
      case 1: return v + v
      case 2: return v.repeat(Math.min(bigCount(rng, 3_000), Math.floor(MAX_MUTANT_BYTES / Math.max(1, v.length))))
      case 3: return v.slice(0, -1)
      case 4: return `${v}x`
      case 5: return `../${v}`
      case 6: return `${v}/../../..`
      case 7: return v.toUpperCase()
      case 8: return `${v}\u0000`
      case 9: return ` ${v}`
      case 10: return randomString(rng, v.length)
      default: return v.length > 0 ? v.slice(1) : 'x'
    }
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return rng.chance(0.5) ? [hostileValue(rng, 1)] : null
    const one = JSON.stringify(v[0] ?? null)
    const n = Math.min(bigCount(rng, 40_000), Math.floor(MAX_MUTANT_BYTES / (one.length + 1)))
    // Copies, never shared references: a later edit inside one shared element would multiply through all of them.
    // (One parse of the repeated text is much cheaper than n clones.)
    const copies = (): Json => JSON.parse(`[${new Array<string>(n).fill(one).join(',')}]`) as Json
    switch (rng.int(0, 4)) {
      case 0: return []
      case 1: return v.concat(clone(v))
      case 2: return copies()
      case 3: return v.slice(1)
      default: return [null, ...v]
    }
  }
  if (typeof v === 'boolean') return rng.pick([!v, 0, 1, 'true', null])
  return hostileValue(rng)
}

/** A structure-aware mutation of a valid message: 1–3 edits of fields, keys, types and sizes. */
export function mutateJson (rng: Prng, seed: Json, maxBytes = MAX_MUTANT_BYTES): Json {
  let v: Json = clone(seed)
  for (let edits = rng.int(1, 3); edits > 0; edits--) {
    const previous = JSON.stringify(v)
    v = edit(rng, v)
    // An edit that blew the message up past the frame limit is undone: the framing tests cover that size.
    if (JSON.stringify(v).length > maxBytes) v = JSON.parse(previous) as Json
  }
  return v
}

/** Mutants are kept under this many characters of JSON (just past the 1 MiB frame limit). */
export const MAX_MUTANT_BYTES = 1_100_000

function edit (rng: Prng, input: Json): Json {
  let v = input
  {
    const all = paths(v)
    const path = rng.pick(all)
    const here = getAt(v, path)
    switch (rng.int(0, 6)) {
      case 0:
      case 1:
        v = setAt(v, path, nudge(rng, here))
        break
      case 2:
        v = setAt(v, path, hostileValue(rng))
        break
      case 3: {
        // drop a field or an element
        if (path.length === 0) break
        const parent = getAt(v, path.slice(0, -1))
        const key = path[path.length - 1]
        if (Array.isArray(parent)) parent.splice(key as number, 1)
        else if (parent !== null && typeof parent === 'object') delete (parent as Record<string, Json>)[key as string]
        break
      }
      case 4: {
        // an unknown field, maybe a prototype-polluting one
        const target = here !== null && typeof here === 'object' && !Array.isArray(here) ? here : v
        if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
          const key = rng.chance(0.3) ? rng.pick(['__proto__', 'constructor', 'prototype']) : randomString(rng, rng.int(1, 20))
          Object.defineProperty(target, key, { value: hostileValue(rng, 1), enumerable: true, writable: true, configurable: true })
        }
        break
      }
      case 5:
        // the right type but the wrong kind: swap with another field's value
        v = setAt(v, path, clone(getAt(v, rng.pick(all))))
        break
      default:
        v = setAt(v, path, typeof here === 'number' ? rng.pick(EDGE_NUMBERS) : typeof here === 'string' ? rng.pick(EDGE_STRINGS) : nudge(rng, here))
    }
  }
  return v
}

/** Byte-level mutations of an encoded message: flips, cuts, splices, repeats, invalid UTF-8. */
export function mutateBytes (rng: Prng, input: Uint8Array, maxLength = 1 << 20): Uint8Array {
  let b: Uint8Array = Uint8Array.from(input)
  for (let edits = rng.int(1, 4); edits > 0; edits--) {
    const at = b.length === 0 ? 0 : rng.int(0, b.length - 1)
    switch (rng.int(0, 8)) {
      case 0: if (b.length > 0) b[at] ^= 1 << rng.int(0, 7); break
      case 1: if (b.length > 0) b[at] = rng.int(0, 255); break
      case 2: b = b.slice(0, at); break // truncate
      case 3: b = concat(b, randomBytes(rng, rng.int(1, 64))); break // extend
      case 4: b = concat(b.slice(0, at), randomBytes(rng, rng.int(1, 16)), b.slice(at)); break // insert
      case 5: b = concat(b.slice(0, at), b.slice(Math.min(b.length, at + rng.int(1, 32)))); break // delete a run
      case 6: { // duplicate a run many times
        const len = rng.int(1, Math.max(1, Math.min(64, b.length - at)))
        const run = b.slice(at, at + len)
        const parts = [b.slice(0, at)]
        for (let i = rng.int(2, 2_000); i > 0; i--) parts.push(run)
        parts.push(b.slice(at))
        b = concat(...parts)
        break
      }
      case 7: if (b.length > 0) b[at] = rng.pick([0x00, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x80, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xfe, 0xff]); break
      default: b = concat(b.slice(0, at), enc.encode(rng.pick(['"', '\\', '\\u', '\\ud800', '{', '}', '[', ']', ',', ':', '1e999', '-', 'null', 'NaN'])), b.slice(at))
    }
    if (b.length > maxLength) b = b.slice(0, maxLength)
  }
  return b
}

export function randomBytes (rng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i += 4) {
    const x = Math.floor(rng.next() * 4294967296)
    out[i] = x & 0xff
    if (i + 1 < n) out[i + 1] = (x >>> 8) & 0xff
    if (i + 2 < n) out[i + 2] = (x >>> 16) & 0xff
    if (i + 3 < n) out[i + 3] = (x >>> 24) & 0xff
  }
  return out
}

export function concat (...parts: Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let off = 0
  for (const p of parts) { out.set(p, off); off += p.length }
  return out
}


export function encodeJsonBytes (v: Json): Uint8Array {
  return enc.encode(JSON.stringify(v))
}

export type { Json }
