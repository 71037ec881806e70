// The CLI's commands that only talk to a mesh (submit, status, jobs...) bundled into one file, which bin/mrp2p.js
// runs while it is newer than every compiled file it was made from. Loading some 450 modules one at a time cost a
// `submit` 0.3 s of its 1.07 s (docs/performance.md, "Latency of a small job"). Run from the package root, after tsc.
import { writeFileSync } from 'node:fs'
import { build } from 'esbuild'

const result = await build({
  entryPoints: ['dist/src/cli/main.js'],
  outfile: 'dist/mrp2p-client.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // esbuild runs its own binary: it stays a package (job-loader.ts bundles jobs with it).
  external: ['esbuild'],
  // A few CommonJS dependencies call require(); in an ES module it must be made.
  banner: { js: "import { createRequire as __mrp2pRequire } from 'node:module'; const require = __mrp2pRequire(import.meta.url);" },
  metafile: true,
  logLevel: 'warning'
})
// What bin/mrp2p.js checks the bundle against: the compiled files in it (node_modules changes only with npm ci, which builds).
const inputs = Object.keys(result.metafile.inputs).filter((p) => p.startsWith('dist/'))
writeFileSync('dist/mrp2p-client.inputs.json', JSON.stringify(inputs) + '\n')
