// Words as MIT 6.824 Lab 1 defines them: maximal runs of Unicode letters
// (\p{L}, Go's unicode.IsLetter), case-sensitive. Shared by wc and indexer.
//
// Why not `/\p{L}+/gu` and a Map: on the Gutenberg corpus that loop spends
// its time making one string per occurrence and hashing it twice (get, set).
// This scanner hashes each word's UTF-16 units as it reads them (FNV-1a) and
// looks the word up in an open-addressing table by comparing it in place, so
// a string is made once per distinct word: 2× the regex loop (measured in
// docs/mapreduce.md), which is most of wc's time.

/** 1 where a UTF-16 unit is a BMP letter. Surrogate pairs are decided one at a time (rare in text). */
const BMP_LETTER = new Uint8Array(65536)
{
  const letter = /^\p{L}$/u
  for (let c = 0; c < 65536; c++) {
    if (c < 0xd800 || c > 0xdfff) BMP_LETTER[c] = letter.test(String.fromCharCode(c)) ? 1 : 0
  }
}
const ASTRAL_LETTER = /^\p{L}$/u

/** How many UTF-16 units the letter at `i` takes (high surrogate `c` there), 0 if it is not a letter. */
function astralLetter (text: string, i: number): number {
  const low = text.charCodeAt(i + 1)
  return low >= 0xdc00 && low <= 0xdfff && ASTRAL_LETTER.test(text.slice(i, i + 2)) ? 2 : 0
}

const FNV_OFFSET = 0x811c9dc5 | 0
const FNV_PRIME = 16777619

/** Counts of distinct words, in an open-addressing table keyed by the word's units in place. */
class WordTable {
  private keys: Array<string | undefined> = new Array<string | undefined>(1 << 12).fill(undefined)
  private hashes = new Int32Array(1 << 12)
  private counts = new Float64Array(1 << 12)
  private size = 0

  add (text: string, start: number, end: number, hash: number): void {
    const mask = this.keys.length - 1
    const len = end - start
    let p = hash & mask
    for (let k = this.keys[p]; k !== undefined; k = this.keys[p]) {
      if (this.hashes[p] === hash && k.length === len && sameUnits(k, text, start, len)) {
        this.counts[p]++
        return
      }
      p = (p + 1) & mask
    }
    this.keys[p] = text.slice(start, end)
    this.hashes[p] = hash
    this.counts[p] = 1
    if (++this.size * 2 > this.keys.length) this.grow()
  }

  toMap (): Map<string, number> {
    const out = new Map<string, number>()
    for (let p = 0; p < this.keys.length; p++) {
      const k = this.keys[p]
      if (k !== undefined) out.set(k, this.counts[p])
    }
    return out
  }

  private grow (): void {
    const { keys, hashes, counts } = this
    const cap = keys.length * 2
    this.keys = new Array<string | undefined>(cap).fill(undefined)
    this.hashes = new Int32Array(cap)
    this.counts = new Float64Array(cap)
    const mask = cap - 1
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === undefined) continue
      let p = hashes[i] & mask
      while (this.keys[p] !== undefined) p = (p + 1) & mask
      this.keys[p] = keys[i]
      this.hashes[p] = hashes[i]
      this.counts[p] = counts[i]
    }
  }
}

function sameUnits (key: string, text: string, start: number, len: number): boolean {
  for (let j = 0; j < len; j++) if (key.charCodeAt(j) !== text.charCodeAt(start + j)) return false
  return true
}

/** Each distinct word of `text` and how many times it occurs. */
export function countWords (text: string): Map<string, number> {
  const table = new WordTable()
  const n = text.length
  let i = 0
  while (i < n) {
    let c = text.charCodeAt(i)
    let units = c < 0xd800 || c > 0xdbff ? BMP_LETTER[c] : astralLetter(text, i)
    if (units === 0) {
      i++
      continue
    }
    const start = i
    let hash = FNV_OFFSET
    while (units !== 0) {
      // Both units of a pair go into the hash, so that astral letters sharing a high surrogate spread out.
      hash = Math.imul(hash ^ c, FNV_PRIME)
      if (units === 2) hash = Math.imul(hash ^ text.charCodeAt(i + 1), FNV_PRIME)
      i += units
      if (i >= n) break
      c = text.charCodeAt(i)
      units = c < 0xd800 || c > 0xdbff ? BMP_LETTER[c] : astralLetter(text, i)
    }
    table.add(text, start, i, hash)
  }
  return table.toMap()
}
