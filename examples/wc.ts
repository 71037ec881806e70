// Word count, as in MIT 6.824 Lab 1: a word is a maximal run of letters
// (Go's unicode.IsLetter is Unicode category L), counted case-sensitively.
import { defineJob } from 'mrp2p'

const sum = (values: string[]): string => {
  let n = 0
  for (const v of values) n += Number(v)
  return String(n)
}

export default defineJob({
  map (_document, contents, emit) {
    const words = contents.match(/\p{L}+/gu)
    if (words === null) return
    for (const w of words) emit(w, '1')
  },
  combine: (_key, values) => sum(values),
  reduce: (_key, values) => sum(values)
})
