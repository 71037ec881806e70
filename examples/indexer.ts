// Inverted index, as in MIT 6.824 Lab 1: for each word, how many documents
// hold it and which, sorted and joined with commas.
import { defineJob } from 'mrp2p'
import { countWords } from './words.js'

export default defineJob({
  map (document, contents, emit) {
    for (const w of countWords(contents).keys()) emit(w, document)
  },
  reduce (_key, values) {
    // A large document is cut into several splits, each emitting its name once.
    const docs = [...new Set(values)].sort()
    return `${docs.length} ${docs.join(',')}`
  }
})
