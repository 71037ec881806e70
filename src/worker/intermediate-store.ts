import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, isAbsolute, join } from 'node:path'
// Job ids become folder names: the protocol's pattern admits no character that could name a path outside the store.
import { JOB_ID_PATTERN } from '../protocol/job-messages.js'

export interface MapOutputMeta {
  jobId: string
  mapIndex: number
  /** `epoch.attempt` of the attempt that made it. */
  attempt: string
  /** Bytes of each partition's run file. */
  partitionBytes: number[]
  /** Bytes of each partition's records before compression (absent in outputs of older versions). */
  partitionRawBytes?: number[]
}

const META_FILE = 'meta.json'

/**
 * Whether `path` names the run of partition `partition` of map `mapIndex` of job `jobId` in some node's store (the
 * layout below): all a reducer links in place for a mapper on its host (shuffle-client.ts).
 */
export function isRunPath (path: string, jobId: string, mapIndex: number, partition: number): boolean {
  const mapDir = dirname(path)
  const jobDir = dirname(mapDir)
  return isAbsolute(path) && basename(path) === `run-${partition}` && basename(mapDir) === `map-${mapIndex}` &&
    basename(jobDir) === jobId && basename(dirname(jobDir)) === 'intermediate'
}

function checkJobId (jobId: string): void {
  if (!JOB_ID_PATTERN.test(jobId)) throw new Error(`bad job id ${JSON.stringify(jobId)}`)
}

/**
 * A worker's intermediate data, under DATA/intermediate/<jobId>/. A map
 * output is written into a scratch folder and renamed into place whole, so
 * what `inventory()` reports and what reducers fetch is always complete; the
 * first attempt to finish wins and later ones are discarded.
 *
 *   <jobId>/map-<m>/run-<r>     finished map outputs (+ meta.json)
 *   <jobId>/work-<kind>-<i>-<a>/ one attempt's scratch space (split bytes, spills, fetched runs, the part)
 */
export class IntermediateStore {
  readonly root: string

  constructor (dataDir: string) {
    this.root = join(dataDir, 'intermediate')
    mkdirSync(this.root, { recursive: true })
  }

  private jobDir (jobId: string): string {
    checkJobId(jobId)
    return join(this.root, jobId)
  }

  /** A fresh scratch folder for one attempt of one task. */
  workDir (jobId: string, kind: 'map' | 'reduce', index: number, attempt: string): string {
    const dir = join(this.jobDir(jobId), `work-${kind}-${index}-${attempt}`)
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    return dir
  }

  /**
   * Removes an attempt's scratch folder, and its job's folder if that is left empty: an order that crossed its
   * job's end order on the wire recreates the job's folder, and a node that kept it would list the job for good.
   */
  removeWorkDir (dir: string): void {
    rmSync(dir, { recursive: true, force: true })
    try {
      rmdirSync(dirname(dir))
    } catch {
      // not empty (other attempts, finished map outputs) or already gone: kept as it is
    }
  }

  runPaths (workDir: string, reduces: number): string[] {
    mkdirSync(join(workDir, 'out'), { recursive: true })
    return Array.from({ length: reduces }, (_, r) => join(workDir, 'out', `run-${r}`))
  }

  /** Publishes an attempt's runs as the map output; false when another attempt already did. */
  commitMapOutput (workDir: string, meta: MapOutputMeta): boolean {
    const final = this.mapDir(meta.jobId, meta.mapIndex)
    const staged = join(workDir, 'out')
    writeFileSync(join(staged, META_FILE), JSON.stringify(meta))
    if (existsSync(final)) return false
    renameSync(staged, final)
    return true
  }

  private mapDir (jobId: string, mapIndex: number): string {
    return join(this.jobDir(jobId), `map-${mapIndex}`)
  }

  /** A finished map output's meta; undefined for a folder without readable meta, which is no finished output. */
  private readMeta (mapDir: string): MapOutputMeta | undefined {
    try {
      return JSON.parse(readFileSync(join(mapDir, META_FILE), 'utf8')) as MapOutputMeta
    } catch {
      return undefined
    }
  }

  /** The finished run of one partition of one map output, or undefined when this node does not hold it. */
  runFile (jobId: string, mapIndex: number, partition: number): { path: string, bytes: number } | undefined {
    const path = join(this.mapDir(jobId, mapIndex), `run-${partition}`)
    try {
      return { path, bytes: statSync(path).size }
    } catch {
      return undefined
    }
  }

  /** The records' bytes before compression in that run, when its map output says so. */
  runRawBytes (jobId: string, mapIndex: number, partition: number): number | undefined {
    const raw = this.readMeta(this.mapDir(jobId, mapIndex))?.partitionRawBytes?.[partition]
    return typeof raw === 'number' && Number.isSafeInteger(raw) && raw >= 0 ? raw : undefined
  }

  /** Every finished map output held here: what a new coordinator rebuilds from. */
  inventory (jobId?: string): MapOutputMeta[] {
    const jobs = jobId === undefined ? readdirSync(this.root) : [jobId]
    const out: MapOutputMeta[] = []
    for (const job of jobs) {
      if (!JOB_ID_PATTERN.test(job)) continue
      let entries: string[]
      try {
        entries = readdirSync(join(this.root, job))
      } catch {
        continue
      }
      for (const e of entries) {
        if (!/^map-\d+$/.test(e)) continue
        const meta = this.readMeta(join(this.root, job, e))
        if (meta !== undefined) out.push(meta)
      }
    }
    return out
  }

  jobs (): string[] {
    return readdirSync(this.root).filter((j) => JOB_ID_PATTERN.test(j))
  }

  removeJob (jobId: string): void {
    rmSync(this.jobDir(jobId), { recursive: true, force: true })
  }
}
