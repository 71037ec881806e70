/**
 * Keys are ordered by their UTF-8 bytes (as Go compares strings). JavaScript's
 * `<` compares UTF-16 code units, which agrees with UTF-8 byte order except
 * when a surrogate (U+D800–DFFF, i.e. a character above U+FFFF) meets a
 * character in U+E000–FFFF. Only then is the code unit remapped.
 */
export function compareKeys (a: string, b: string): number {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000
    }
    return x - y
  }
  return a.length - b.length
}

/** True when `<` on this key may disagree with byte order (it holds a code unit ≥ U+D800). */
export function needsByteOrderCompare (key: string): boolean {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) >= 0xd800) return true
  return false
}

/** Sorts keys in place in UTF-8 byte order, with the native comparison when it is safe. */
export function sortKeys (keys: string[], anyHighCodeUnit: boolean): string[] {
  if (anyHighCodeUnit) return keys.sort(compareKeys)
  return keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}
