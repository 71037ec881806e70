import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { countWords, countWordsInPieces } from '../../examples/words.js'
// @ts-expect-error: a build script in plain JavaScript, with no types
import { wordsWasmSource } from '../../scripts/build-words-wasm.mjs'

/** The definition itself: what wc counted before the scanner, and what Lab 1's Go code does. */
function byRegex (text: string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const [w] of text.matchAll(/\p{L}+/gu)) counts.set(w, (counts.get(w) ?? 0) + 1)
  return counts
}

const sorted = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))

/** Letters, non-letters and the awkward cases: astral letters and symbols, lone surrogates, combining marks. */
const pieces = fc.constantFrom(
  'a', 'Z', 'é', 'ß', 'ǅ', 'Ω', '日', 'ｶ', '𝒜', '𐐷', '𠀀', // letters, BMP and astral
  ' ', '\n', '1', '_', "'", '-', 'Ⅻ', '\u0301', '😀', '𝟘', // not letters (Ⅻ is Nl, U+0301 is Mn, 𝟘 is Nd)
  '\ud835', '\udc9c', '\ud801\ud801' // lone and doubled high surrogates
)

describe('countWords (examples/words.ts)', () => {
  it('equals the \\p{L}+ regex on random text of letters, non-letters and surrogates', () => {
    fc.assert(fc.property(fc.array(fc.oneof(pieces, fc.string({ unit: 'binary', maxLength: 8 })), { maxLength: 200 }), (parts) => {
      const text = parts.join('')
      expect(sorted(countWords(text))).toEqual(sorted(byRegex(text)))
    }), { numRuns: 2_000 })
  })

  it('counts many distinct words across table growth, and repeats of each', () => {
    // i written in base 26 with the digits a…z: 50,000 distinct words of letters only.
    const words = Array.from({ length: 50_000 }, (_, i) => [...i.toString(26)].map((d) => String.fromCharCode(97 + parseInt(d, 26))).join(''))
    // The same again behind one 8-byte prefix: the table then tells them apart by their later bytes.
    const prefixed = words.map((w) => 'Prefixed' + w)
    const text = [...words, ...words.slice(0, 1000), ...prefixed, ...prefixed.slice(0, 1000)].join(' ')
    const counts = countWords(text)
    expect(counts.size).toBe(100_000)
    expect(sorted(counts)).toEqual(sorted(byRegex(text)))
  })

  it('equals the regex when the text goes through in small pieces: cut between words, and runs of letters longer than a piece', () => {
    fc.assert(fc.property(fc.array(fc.oneof(pieces, fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom('abcdefghijklmnopqrstuvwxyz', '𝒜𝒜𝒜𝒜𝒜𝒜')), { maxLength: 120 }), fc.integer({ min: 1, max: 40 }), (parts, pieceUnits) => {
      const text = parts.join('')
      expect(sorted(countWordsInPieces(text, pieceUnits))).toEqual(sorted(byRegex(text)))
    }), { numRuns: 1_000 })
  })

  it('equals the regex on long texts: 64-byte ASCII runs, words past 8 bytes sharing a prefix, non-ASCII now and then', () => {
    // Long enough that the module's 64-byte SIMD steps and its byte-by-byte steps take turns mid-word.
    const piece = fc.oneof(
      { arbitrary: fc.constantFrom('abcdefgh', 'abcdefghi', 'abcdefghij', 'abcdefgh' + 'x'.repeat(20), 'Abcdefghij', 'a', 'ab'), weight: 6 },
      { arbitrary: fc.constantFrom(' ', '  ', '.\n', ', ', '0'), weight: 6 },
      { arbitrary: fc.constantFrom('é', 'Ωmega', 'naïve', '𝒜', '日本', '😀', '\u0301'), weight: 1 },
      { arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 70 }), weight: 2 }
    )
    fc.assert(fc.property(fc.array(piece, { minLength: 50, maxLength: 600 }), (parts) => {
      const text = parts.join('')
      expect(sorted(countWords(text))).toEqual(sorted(byRegex(text)))
    }), { numRuns: 300 })
  })

  it('takes every BMP code point for a letter exactly when \\p{L} does', () => {
    const all: string[] = []
    for (let c = 0; c < 0x10000; c++) if (c < 0xd800 || c > 0xdfff) all.push(String.fromCharCode(c))
    const text = all.join(' ')
    expect(sorted(countWords(text))).toEqual(sorted(byRegex(text)))
  })

  it('assumes what this runtime says: the ASCII letters are A-Z and a-z, nothing else', () => {
    // words.wat tests ASCII letters arithmetically, 64 bytes at a time.
    const ascii = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c)).filter((ch) => /\p{L}/u.test(ch)).join('')
    expect(ascii).toBe('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz')
  })

  it('has words-wasm.ts compiled from words.wat as it is now (npm run build:wasm)', async () => {
    const wat = fileURLToPath(new URL('../../examples/words.wat', import.meta.url))
    const committed = readFileSync(fileURLToPath(new URL('../../examples/words-wasm.ts', import.meta.url)), 'utf8')
    expect(committed).toBe(await (wordsWasmSource as (path: string) => Promise<string>)(wat))
  })

  it('splits at the edges: text that starts or ends inside a word, and an astral letter at the very end', () => {
    expect(sorted(countWords('ab cd ab'))).toEqual([['ab', 2], ['cd', 1]])
    expect(sorted(countWords('x𝒜'))).toEqual([['x𝒜', 1]])
    expect(sorted(countWords('x\ud835'))).toEqual([['x', 1]])
    expect(countWords('').size).toBe(0)
  })
})
