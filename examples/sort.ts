// Distributed sort in the spirit of TeraSort: each input line is a record
// `key payload` (the key is everything before the first space). A sample of the
// input gives R−1 cut points; `partition` sends each key to the range it falls
// in, so part-00000 … part-(R−1), concatenated, are one sorted file.
//
//   mrp2p submit sort --input records.txt --reduces 8 --output sorted
//   cat sorted/part-* > sorted.txt        # sorted by key bytes (LC_ALL=C sort order)
//
// There is no map and no reduce: every record comes out as it went in, a `key payload` line, and the engine
// copies records as bytes instead of decoding them.
// Records with equal keys keep all their lines; their order among themselves
// follows the map order (input order), as the engine's merge is stable.
import { compareKeys, defineJob } from 'mrp2p'

function keyOf (line: string): string {
  const space = line.indexOf(' ')
  return space < 0 ? line : line.slice(0, space)
}

// The cuts of the task's parameters, parsed once: partition runs once per record, and a task has one set of params.
let cutsFor: Readonly<Record<string, string>> | undefined
let parsedCuts: string[] = []
function cutsOf (params: Readonly<Record<string, string>>): string[] {
  if (params !== cutsFor) {
    parsedCuts = JSON.parse(params.cuts ?? '[]') as string[]
    cutsFor = params
  }
  return parsedCuts
}

export default defineJob({
  sample (lines, ctx) {
    const keys = lines.map(keyOf).sort(compareKeys)
    const cuts: string[] = []
    for (let r = 1; r < ctx.reduces; r++) cuts.push(keys[Math.floor((r * keys.length) / ctx.reduces)] ?? '')
    return { cuts: JSON.stringify(cuts) }
  },
  // No map: each line is a record as it is, its key before the first space (Hadoop's KeyValueTextInputFormat under
  // the identity mapper), read as bytes by the engine and never decoded but for the partitioner's key.
  keyValueSeparator: ' ',
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
