// The identity job of Hadoop Streaming (`cat` as mapper and reducer) written as a module, for the streaming
// benchmark: each line is cut at its first tab into key and value, and the reduce writes every value back.
import { defineJob } from 'mrp2p'

export default defineJob({
  map (_document, contents, emit) {
    let start = 0
    while (start < contents.length) {
      let end = contents.indexOf('\n', start)
      if (end === -1) end = contents.length
      const line = contents.slice(start, end)
      const tab = line.indexOf('\t')
      if (tab === -1) emit(line, '')
      else emit(line.slice(0, tab), line.slice(tab + 1))
      start = end + 1
    }
  },
  reduce (key, values) {
    return values.join(`\n${key} `)
  }
})
