// Words as MIT 6.824 Lab 1 defines them: maximal runs of Unicode letters
// (\p{L}, Go's unicode.IsLetter), case-sensitive. Shared by wc and indexer.
//
// Why WebAssembly (words.wat): counting words is most of wc's time. The
// obvious `/\p{L}+/gu` and a Map makes and hashes a string per occurrence; a
// hand-tuned JavaScript scanner that hashed in place was 2× that, and still
// 60 % of `mrp2p run wc` (about 5 ns a character and 40 ns a word on the
// bench machine). The module scans the text's UTF-8 bytes and counts in its
// own table, so a string is made once per distinct word, here, at the end.
// Measured in docs/performance.md. `npm run build:wasm` regenerates
// words-wasm.ts from words.wat.
import { WORDS_WASM_BASE64 } from './words-wasm.js'

/** The part of the WebAssembly JS API used here: Node has it, but ES2023's lib and @types/node 20 do not declare it. */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: { env: { memory: WasmMemory, astral_letter: (cp: number) => number } }) => { exports: unknown }
  Memory: new (descriptor: { initial: number }) => WasmMemory
}
interface WasmMemory {
  readonly buffer: ArrayBuffer
  grow: (pages: number) => number
}
const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly

/** What words.wat exports. */
interface WordsExports {
  begin: (heap: number) => void
  scan: (start: number, end: number) => number
  table: () => number
  capacity: () => number
}

const PAGE_BYTES = 65536
/** One bit per BMP code point, at address 0 of the module's memory. */
const LETTER_BITS_BYTES = 0x10000 / 8
/** Where the buffer for the text starts: after the bits and the ASCII table that begin() makes. */
const BUFFER_START = LETTER_BITS_BYTES + 128
/** UTF-16 units of text per scan; up to 3 bytes each in UTF-8, so the buffer is 768 KiB. */
const PIECE_UNITS = 1 << 18
/** A table slot (the word's first 8 bytes, where it is, its length); the table's counts follow its slots, 4 bytes each. */
const SLOT_BYTES = 16

/** Bit `c` set where BMP code point `c` is a letter, as this runtime's `\p{L}` says. */
function letterBits (): Uint8Array {
  const bits = new Uint8Array(LETTER_BITS_BYTES)
  // Every BMP unit once, so that a match's index is its code point. Surrogates alone are not letters; a space stands in for them.
  const units: number[] = []
  for (let c = 0; c < 0x10000; c++) units.push(c >= 0xd800 && c <= 0xdfff ? 0x20 : c)
  let bmp = ''
  for (let c = 0; c < 0x10000; c += 8192) bmp += String.fromCharCode(...units.slice(c, c + 8192))
  for (const run of bmp.matchAll(/\p{L}+/gu)) {
    for (let c = run.index; c < run.index + run[0].length; c++) bits[c >> 3] |= 1 << (c & 7)
  }
  return bits
}

const ASTRAL_LETTER = /^\p{L}$/u
const astralLetter = (cp: number): number => ASTRAL_LETTER.test(String.fromCodePoint(cp)) ? 1 : 0

const LETTER_BITS = letterBits()
const WORDS_MODULE = new wasm.Module(Uint8Array.from(atob(WORDS_WASM_BASE64), (c) => c.charCodeAt(0)))
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const pagesFor = (bytes: number): number => Math.ceil(bytes / PAGE_BYTES)

const isLetterUnit = (c: number): boolean => (LETTER_BITS[c >> 3] >> (c & 7) & 1) === 1

/**
 * Where to end a piece of `text` that starts at `from` and may reach `to`: before a unit that is neither a
 * letter nor half of a surrogate pair, so that no word (and no pair) is cut. -1 when there is none.
 */
function cutBefore (text: string, from: number, to: number): number {
  for (let i = to; i > from; i--) {
    const c = text.charCodeAt(i)
    if ((c < 0xd800 || c > 0xdfff) && !isLetterUnit(c)) return i
  }
  return -1
}

/** Each distinct word of `text` and how many times it occurs. */
export function countWords (text: string): Map<string, number> {
  return countWordsInPieces(text, PIECE_UNITS)
}

/**
 * {@link countWords}, sending the text through the module `pieceUnits` UTF-16 units at a time (tests use small
 * pieces). The module's memory holds one piece and the distinct words, not the whole text, and is garbage once the
 * counts are read: a task thread keeps nothing between splits.
 */
export function countWordsInPieces (text: string, pieceUnits: number): Map<string, number> {
  // No piece is longer than the text: a short text gets a short buffer.
  const bufferBytes = Math.min(pieceUnits, text.length) * 3
  const heap = Math.ceil((BUFFER_START + bufferBytes + 16) / 16) * 16
  const memory = new wasm.Memory({ initial: pagesFor(heap + 4096 * (SLOT_BYTES + 4) + 16) })
  new Uint8Array(memory.buffer).set(LETTER_BITS, 0)
  const words = new wasm.Instance(WORDS_MODULE, { env: { memory, astral_letter: astralLetter } }).exports as unknown as WordsExports
  words.begin(heap)
  // Runs of letters longer than a piece (no place to cut): counted on their own, added at the end.
  const apart: Array<Map<string, number>> = []
  for (let from = 0; from < text.length;) {
    let to = Math.min(text.length, from + pieceUnits)
    if (to < text.length) {
      const cut = cutBefore(text, from, to)
      if (cut < 0) {
        let end = to
        while (end < text.length && cutBefore(text, end - 1, end) < 0) end++
        apart.push(countWordsInPieces(text.slice(from, end), end - from))
        from = end
        continue
      }
      to = cut
    }
    // The memory may have grown since the last piece: a fresh view each time.
    const { written } = encoder.encodeInto(text.slice(from, to), new Uint8Array(memory.buffer, BUFFER_START, bufferBytes))
    words.scan(BUFFER_START, BUFFER_START + written)
    from = to
  }
  const bytes = new Uint8Array(memory.buffer)
  const capacity = words.capacity()
  const slots = new Uint32Array(memory.buffer, words.table(), capacity * (SLOT_BYTES + 4) / 4)
  const counts = new Map<string, number>()
  for (let s = 0; s < capacity; s++) {
    const at = slots[s * 4 + 2]
    const len = slots[s * 4 + 3]
    if (len !== 0) counts.set(decoder.decode(bytes.subarray(at, at + len)), slots[capacity * 4 + s])
  }
  for (const part of apart) for (const [w, n] of part) counts.set(w, (counts.get(w) ?? 0) + n)
  return counts
}
