// Runs one sequential job in a fresh process and reports its time and peak RSS,
// so that the benchmark measures the engine alone, with nothing of the parent's heap.
import { rmSync } from 'node:fs'
import { loadJob } from '../src/mapreduce/job-loader.js'
import { runSequential } from '../src/mapreduce/sequential.js'

const [jobSpec, input, output] = process.argv.slice(2)
rmSync(output, { recursive: true, force: true })
const job = await loadJob(jobSpec)
const t0 = performance.now()
const result = await runSequential({ job: job.job, jobName: job.name, inputs: [input], output, reduces: 1 })
const seconds = (performance.now() - t0) / 1000
process.stdout.write(JSON.stringify({ seconds, inputBytes: result.inputBytes, keys: result.keys, maxRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n')
rmSync(output, { recursive: true, force: true })
