// The public API of the `mrp2p` package: what a job module imports.
export * from './mapreduce/job-api.js'
