// Inverted index, as in MIT 6.824 Lab 1: for each word, how many documents
// hold it and which, sorted and joined with commas.
import { defineJob } from 'mrp2p'

export default defineJob({
  map (document, contents, emit) {
    const words = contents.match(/\p{L}+/gu)
    if (words === null) return
    for (const w of new Set(words)) emit(w, document)
  },
  reduce (_key, values) {
    // A large document is cut into several splits, each emitting its name once.
    const docs = [...new Set(values)].sort()
    return `${docs.length} ${docs.join(',')}`
  }
})
