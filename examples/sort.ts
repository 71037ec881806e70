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
import { compareKeys, defineJob, rangePartition } from 'mrp2p'

function keyOf (line: string): string {
  const space = line.indexOf(' ')
  return space < 0 ? line : line.slice(0, space)
}

export default defineJob({
  sample (lines, ctx) {
    const keys = lines.map(keyOf).sort(compareKeys)
    const cuts: string[] = []
    for (let r = 1; r < ctx.reduces; r++) cuts.push(keys[Math.floor((r * keys.length) / ctx.reduces)] ?? '')
    return { cuts: JSON.stringify(cuts) }
  },
  // No map: each line is a record as it is, its key before the first space (Hadoop's KeyValueTextInputFormat under
  // the identity mapper), read as bytes by the engine and never decoded.
  keyValueSeparator: ' ',
  // Each key to the range of cuts it falls in; the engine compares key bytes with the cuts without decoding keys.
  partition: rangePartition('cuts')
})
