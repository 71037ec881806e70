// The n most frequent words of a word count's output (`wc`'s lines, `word count`), most frequent first: chains
// after wc, e.g. wc → --output mesh:counts, then top --input mesh:counts --param n=10 (docs/datasets.md).
// Ties go as `LC_ALL=C sort -k2 -nr` orders them: the later word (in byte order) first.
import { defineJob } from 'mrp2p'

interface Counted { word: string, count: number }

function topOf (entries: Counted[], n: number): Counted[] {
  return entries.sort((a, b) => b.count - a.count || (a.word < b.word ? 1 : a.word > b.word ? -1 : 0)).slice(0, n)
}

function limit (params: Readonly<Record<string, string>>): number {
  const n = Number(params.n ?? '10')
  if (!Number.isInteger(n) || n < 1) throw new Error(`top needs --param n=<a positive integer>, got ${params.n}`)
  return n
}

export default defineJob({
  map (_document, contents, emit, ctx) {
    const n = limit(ctx.params)
    const entries: Counted[] = []
    for (const line of contents.split('\n')) {
      if (line === '') continue
      const space = line.lastIndexOf(' ')
      const count = Number(line.slice(space + 1))
      if (space < 1 || !Number.isInteger(count)) throw new Error(`not a word count line: ${JSON.stringify(line.slice(0, 80))}`)
      entries.push({ word: line.slice(0, space), count })
    }
    // Each split's own top n: the whole input's top n is among them.
    for (const e of topOf(entries, n)) emit('', `${e.word} ${e.count}`)
  },
  reduce (_key, values, ctx) {
    const entries = values.map((v) => {
      const space = v.lastIndexOf(' ')
      return { word: v.slice(0, space), count: Number(v.slice(space + 1)) }
    })
    return topOf(entries, limit(ctx.params)).map((e) => `${e.word} ${e.count}`).join('\n')
  },
  valuesOnly: true
})
