/** Where the records go: a map output kept in place (map-output-bytes.ts), or one that decodes them. */
export interface KeyValueSink {
  addRange: (keyStart: number, keyEnd: number, valueStart: number, valueEnd: number, partition: number) => void
}

/** A job's `keyValueSeparator` as the byte it is; undefined for a job with a `map`. */
export function separatorByte (separator: string | undefined): number | undefined {
  return separator === undefined ? undefined : separator.charCodeAt(0)
}

/** What a split held: its lines, as Hadoop's text input counts them, and its records (the lines not empty). */
export interface KeyValueLines { lines: number, records: number }

/**
 * The map of a job without a map function (`keyValueSeparator`, Hadoop's `KeyValueTextInputFormat` under the
 * identity mapper): every non-empty line of `split` goes into `records` as a range of the split itself, its key
 * before the first `separator` byte and its value after it (or the whole line, and an empty value). Nothing is
 * decoded and nothing is copied until the runs are written. `afterEach` is called after every record: where the
 * map task spills.
 */
export function addKeyValueLines (
  split: Buffer,
  separator: number,
  partitionOf: (buf: Buffer, start: number, end: number) => number,
  records: KeyValueSink,
  afterEach: () => void
): KeyValueLines {
  let lines = 0
  let added = 0
  for (let start = 0; start < split.length;) {
    let end = split.indexOf(0x0a, start)
    if (end < 0) end = split.length
    lines++
    if (end > start) {
      // Keys are short: a loop finds the separator sooner than a native call per line would.
      let keyEnd = start
      while (keyEnd < end && split[keyEnd] !== separator) keyEnd++
      const valueStart = keyEnd < end ? keyEnd + 1 : end
      records.addRange(start, keyEnd, valueStart, end, partitionOf(split, start, keyEnd))
      added++
      afterEach()
    }
    start = end + 1
  }
  return { lines, records: added }
}
