// Distributed grep (Dean & Ghemawat §2.3): the lines that match a pattern,
// keyed by document and line number.
//   mrp2p run grep --input *.txt --param pattern='whale|Ahab' [--param flags=i]
import { defineJob } from 'mrp2p'

export default defineJob({
  map (document, contents, emit, ctx) {
    const pattern = ctx.params.pattern
    if (pattern === undefined || pattern === '') throw new Error('grep needs --param pattern=REGEX')
    const re = new RegExp(pattern, ctx.params.flags ?? '')
    const lines = contents.split('\n')
    if (lines[lines.length - 1] === '') lines.pop()
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i]
      re.lastIndex = 0
      // Zero-padded so that byte order is line order.
      if (re.test(line)) emit(`${document}:${String(ctx.split.firstLine + i).padStart(9, '0')}`, line)
    }
  },
  reduce: (_key, values) => values.join('\n')
})
