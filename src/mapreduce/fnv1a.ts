const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193

/**
 * FNV-1a 32-bit over the UTF-8 bytes of `key`, encoded on the fly so that the
 * hot path allocates nothing. Same value as Go's hash/fnv New32a on the string.
 */
export function fnv1a32 (key: string): number {
  let h = FNV_OFFSET
  for (let i = 0; i < key.length; i++) {
    let c = key.charCodeAt(i)
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME)
      continue
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < key.length) {
      const lo = key.charCodeAt(i + 1)
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00)
        i++
      } else {
        c = 0xfffd
      }
    } else if (c >= 0xd800 && c <= 0xdfff) {
      c = 0xfffd // lone surrogate: Buffer.from(key) writes U+FFFD too
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME)
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME)
    } else if (c < 0x10000) {
      h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME)
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME)
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME)
    } else {
      h = Math.imul(h ^ (0xf0 | (c >> 18)), FNV_PRIME)
      h = Math.imul(h ^ (0x80 | ((c >> 12) & 0x3f)), FNV_PRIME)
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME)
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME)
    }
  }
  return h >>> 0
}

/** The default partitioner of the design: `(fnv1a32(key) & 0x7fffffff) % reduces`, as in MIT 6.824. */
export function defaultPartition (key: string, reduces: number): number {
  return (fnv1a32(key) & 0x7fffffff) % reduces
}

/** {@link fnv1a32} of bytes `buf[start, end)`: the same value for a key's UTF-8 bytes as for the key. */
export function fnv1a32Bytes (buf: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], FNV_PRIME)
  return h >>> 0
}
