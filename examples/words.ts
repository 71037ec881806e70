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
  count: (start: number, end: number, heap: number) => number
  table: () => number
  capacity: () => number
}

const PAGE_BYTES = 65536
/** One bit per BMP code point, at address 0 of the module's memory. */
const LETTER_BITS_BYTES = 0x10000 / 8
/** Where the text starts: after the bits and the ASCII table that count() makes. */
const TEXT_START = LETTER_BITS_BYTES + 128
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

/**
 * Each distinct word of `text` and how many times it occurs.
 *
 * Each call gets its own memory, sized to the text, which is garbage once the
 * counts are read: a task thread keeps nothing between splits.
 */
export function countWords (text: string): Map<string, number> {
  const start = TEXT_START
  // One byte per UTF-16 unit fits ASCII; wider text gets the rest below.
  const memory = new wasm.Memory({ initial: pagesFor(start + text.length + 16) })
  new Uint8Array(memory.buffer).set(LETTER_BITS, 0)
  const first = encoder.encodeInto(text, new Uint8Array(memory.buffer, start, text.length))
  let written = first.written
  if (first.read < text.length) {
    const rest = text.length - first.read
    memory.grow(Math.max(0, pagesFor(start + written + rest * 3) - memory.buffer.byteLength / PAGE_BYTES))
    written += encoder.encodeInto(text.slice(first.read), new Uint8Array(memory.buffer, start + written, rest * 3)).written
  }
  const end = start + written
  const words = new wasm.Instance(WORDS_MODULE, { env: { memory, astral_letter: astralLetter } }).exports as unknown as WordsExports
  words.count(start, end, Math.ceil(end / 16) * 16)
  // The count may have grown the memory: views are taken only now.
  const bytes = new Uint8Array(memory.buffer)
  const capacity = words.capacity()
  const slots = new Uint32Array(memory.buffer, words.table(), capacity * (SLOT_BYTES + 4) / 4)
  const counts = new Map<string, number>()
  for (let s = 0; s < capacity; s++) {
    const at = slots[s * 4 + 2]
    const len = slots[s * 4 + 3]
    if (len !== 0) counts.set(decoder.decode(bytes.subarray(at, at + len)), slots[capacity * 4 + s])
  }
  return counts
}
