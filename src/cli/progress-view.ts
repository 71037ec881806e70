import cliProgress from 'cli-progress'
import { NO_COUNTS, sumCounts, withCounts, type ProgressCounts } from '../coordinator/progress-counts.js'
import type { JobProgress } from '../protocol/job-messages.js'
import type { SubmissionEvent } from '../submitter/submission.js'
import { mapOutputsText } from './job-format.js'

/**
 * Live progress of a submitted job on stderr: a bar on a terminal, plain
 * lines (at most one a second, and on every change of phase or coordinator)
 * when piped, so logs of CI runs stay readable.
 */
export class ProgressView {
  private bar: cliProgress.SingleBar | undefined
  private lastLine = 0
  private lastPhase = ''
  private readonly started = performance.now()
  /**
   * A new coordinator rebuilds the job from inventories and counts failed attempts and lost outputs from 0: what
   * the ones before it counted is added, so the line tells the whole job's story.
   */
  private carried: ProgressCounts = NO_COUNTS
  private latest: JobProgress | undefined

  /** `inputBytes`: the job's whole input, for the rate (with --shared no input passes through the submitter). */
  constructor (private readonly jobName: string, private readonly inputBytes: number, private readonly tty = process.stderr.isTTY === true) {}

  private elapsed (): string {
    return `${((performance.now() - this.started) / 1000).toFixed(1)}s`
  }

  private say (line: string): void {
    if (this.bar !== undefined) this.bar.stop()
    this.bar = undefined
    process.stderr.write(`${line}\n`)
  }

  onEvent (e: SubmissionEvent): void {
    if (e.type === 'coordinator') {
      // The first submission is said on stdout (`job ID submitted to …`, see submit.ts); changes are progress.
      if (e.previous !== undefined) {
        this.say(`${this.jobName}: coordinator changed ${e.previous.slice(-8)} → ${e.peer.slice(-8)} (epoch ${e.epoch}); job re-sent, finished work kept`)
        if (this.latest !== undefined) this.carried = sumCounts(this.latest, this.carried)
        this.latest = undefined
      }
      return
    }
    if (e.type !== 'progress') return
    this.latest = e.progress
    const p = withCounts(e.progress, this.carried)
    const total = p.maps.total + p.reduces.total
    const done = p.maps.done + p.reduces.done
    // Input mapped so far, at the job's mean split size: the rate a user compares with `run` or a pipeline.
    const mapped = p.maps.total === 0 ? 0 : this.inputBytes * p.maps.done / p.maps.total
    const mbps = mapped / 1e6 / Math.max(0.001, (performance.now() - this.started) / 1000)
    const outputs = mapOutputsText(p)
    const fields = { maps: `${p.maps.done}/${p.maps.total}`, reduces: `${p.reduces.done}/${p.reduces.total}`, running: p.running, failed: p.failedAttempts, mbps: mbps.toFixed(1), elapsed: this.elapsed(), outputs: outputs === undefined ? '' : ` | map outputs ${outputs}` }
    if (this.tty) {
      if (this.bar === undefined) {
        this.bar = new cliProgress.SingleBar({
          format: `${this.jobName} [{bar}] maps {maps} reduces {reduces} | running {running} failed {failed} | {mbps} MB/s | {elapsed}{outputs}`,
          stream: process.stderr,
          hideCursor: true
        }, cliProgress.Presets.shades_classic)
        this.bar.start(total, done, fields)
      }
      this.bar.setTotal(total)
      this.bar.update(done, fields)
      return
    }
    const now = performance.now()
    if (p.phase !== this.lastPhase || now - this.lastLine >= 1000) {
      this.lastPhase = p.phase
      this.lastLine = now
      process.stderr.write(`${this.jobName}: ${p.phase} maps ${fields.maps} reduces ${fields.reduces} running ${p.running} failed ${p.failedAttempts}${outputs === undefined ? '' : `; map outputs ${outputs}`} ${fields.mbps} MB/s ${fields.elapsed}\n`)
    }
  }

  stop (): void {
    this.bar?.stop()
    this.bar = undefined
  }
}
