// A small SVG line chart for the bench results: throughput and parallel
// efficiency against node count. Hand-made because it is 60 lines and the
// charting libraries that render SVG in Node weigh megabytes.

export interface Series { name: string, color: string, points: Array<[number, number]>, axis: 'left' | 'right' }

export function lineChart (opts: { title: string, xLabel: string, leftLabel: string, rightLabel: string, series: Series[] }): string {
  const W = 640
  const H = 400
  const m = { l: 70, r: 70, t: 40, b: 50 }
  const xs = opts.series.flatMap((s) => s.points.map(([x]) => x))
  const xMax = Math.max(...xs)
  const xMin = Math.min(...xs)
  const maxOf = (axis: 'left' | 'right'): number => Math.max(1e-9, ...opts.series.filter((s) => s.axis === axis).flatMap((s) => s.points.map(([, y]) => y))) * 1.15
  const yMax = { left: maxOf('left'), right: maxOf('right') }
  const px = (x: number): number => m.l + ((x - xMin) / Math.max(1, xMax - xMin)) * (W - m.l - m.r)
  const py = (y: number, axis: 'left' | 'right'): number => H - m.b - (y / yMax[axis]) * (H - m.t - m.b)
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`]
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`)
  out.push(`<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`)
  out.push(`<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`)
  out.push(`<line x1="${W - m.r}" y1="${m.t}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`)
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(`<text x="${px(x)}" y="${H - m.b + 18}" text-anchor="middle">${x}</text>`)
  }
  for (let i = 0; i <= 4; i++) {
    const f = i / 4
    const y = H - m.b - f * (H - m.t - m.b)
    out.push(`<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#ddd"/>`)
    out.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end">${(f * yMax.left).toFixed(0)}</text>`)
    out.push(`<text x="${W - m.r + 6}" y="${y + 4}">${(f * yMax.right).toFixed(2)}</text>`)
  }
  out.push(`<text x="${W / 2}" y="${H - 12}" text-anchor="middle">${esc(opts.xLabel)}</text>`)
  out.push(`<text transform="translate(18 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(opts.leftLabel)}</text>`)
  out.push(`<text transform="translate(${W - 14} ${H / 2}) rotate(90)" text-anchor="middle">${esc(opts.rightLabel)}</text>`)
  opts.series.forEach((s, i) => {
    const pts = s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y, s.axis).toFixed(1)}`).join(' ')
    out.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${s.axis === 'right' ? ' stroke-dasharray="6 4"' : ''}/>`)
    for (const [x, y] of s.points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y, s.axis).toFixed(1)}" r="3.5" fill="${s.color}"/>`)
    out.push(`<text x="${m.l + 10}" y="${m.t + 16 + i * 16}" fill="${s.color}">${esc(s.name)}</text>`)
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
