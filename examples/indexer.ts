// Inverted index, as in MIT 6.824 Lab 1: for each word, how many documents
// hold it and which, sorted and joined with commas.
import { defineJob } from 'mrp2p'

export default defineJob({
  map (document, contents, emit) {
    const seen = new Set<string>()
    const word = /\p{L}+/gu
    for (let m = word.exec(contents); m !== null; m = word.exec(contents)) seen.add(m[0])
    for (const w of seen) emit(w, document)
  },
  reduce (_key, values) {
    // A large document is cut into several splits, each emitting its name once.
    const docs = [...new Set(values)].sort()
    return `${docs.length} ${docs.join(',')}`
  }
})
