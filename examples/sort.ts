// Distributed sort in the spirit of TeraSort: each input line is a record
// `key payload` (the key is everything before the first space). A sample of the
// input gives R−1 cut points; `partition` sends each key to the range it falls
// in, so part-00000 … part-(R−1), concatenated, are one sorted file.
//
//   mrp2p submit sort --input records.txt --reduces 8 --output sorted
//   cat sorted/part-* > sorted.txt        # sorted by key bytes (LC_ALL=C sort order)
//
// There is no reduce: every record comes out as it went in, a `key payload`
// line, and the engine copies records as bytes instead of decoding them.
// Records with equal keys keep all their lines; their order among themselves
// follows the map order (input order), as the engine's merge is stable.
import { compareKeys, defineJob } from 'mrp2p'

function keyOf (line: string): string {
  const space = line.indexOf(' ')
  return space < 0 ? line : line.slice(0, space)
}

const cache = new WeakMap<object, string[]>()
function cutsOf (params: Readonly<Record<string, string>>): string[] {
  let cuts = cache.get(params)
  if (cuts === undefined) {
    cuts = JSON.parse(params.cuts ?? '[]') as string[]
    cache.set(params, cuts)
  }
  return cuts
}

export default defineJob({
  sample (lines, ctx) {
    const keys = lines.map(keyOf).sort(compareKeys)
    const cuts: string[] = []
    for (let r = 1; r < ctx.reduces; r++) cuts.push(keys[Math.floor((r * keys.length) / ctx.reduces)] ?? '')
    return { cuts: JSON.stringify(cuts) }
  },
  map (_document, contents, emit) {
    // Line by line in place: split('\n') would hold an array of every line of the split at once. The next space is
    // looked for once and kept, so that lines without one do not each scan on to a later line's.
    let space = -1
    for (let start = 0; start < contents.length;) {
      let end = contents.indexOf('\n', start)
      if (end < 0) end = contents.length
      if (space < start) {
        space = contents.indexOf(' ', start)
        if (space < 0) space = contents.length
      }
      if (end > start) {
        if (space >= end) emit(contents.slice(start, end), '')
        else emit(contents.slice(start, space), contents.slice(space + 1, end))
      }
      start = end + 1
    }
  },
  partition (key, reduces, ctx) {
    // The first range whose upper cut is above the key: a binary search over R−1 cuts.
    const cuts = cutsOf(ctx.params)
    let lo = 0
    let hi = Math.min(cuts.length, reduces - 1)
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (compareKeys(key, cuts[mid]) < 0) hi = mid
      else lo = mid + 1
    }
    return lo
  }
})
