// The identity job of Hadoop Streaming (`cat` as mapper and reducer) written as a module, for the streaming
// benchmark: each line is cut at its first tab into key and value, and the reduce writes every value back.
import { defineJob } from 'mrp2p'

export default defineJob({
  map (_document, contents, emit) {
    let start = 0
    while (start < contents.length) {
      let end = contents.indexOf('\n', start)
      if (end === -1) end = contents.length
      const tab = contents.indexOf('\t', start)
      if (tab === -1 || tab > end) emit(contents.slice(start, end), '')
      else emit(contents.slice(start, tab), contents.slice(tab + 1, end))
      start = end + 1
    }
  },
  reduce (key, values) {
    return values.join(`\n${key} `)
  }
})
