import { mkdirSync, readdirSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { OutputExistsError } from '../util/errors.js'

export const SUCCESS_FILE = '_SUCCESS'
const TEMPORARY = '_temporary'

export function partFileName (partition: number): string {
  return `part-${String(partition).padStart(5, '0')}`
}

/**
 * The output folder, committed the way Hadoop's FileOutputCommitter does it:
 * parts are written under DIR/_temporary, renamed into place only once all of
 * them exist, then _SUCCESS is written. A failed job leaves no part file and no
 * _SUCCESS, and removes a folder it created.
 */
export class OutputDir {
  readonly temporary: string
  private constructor (readonly dir: string, private readonly created: boolean) {
    this.temporary = join(dir, TEMPORARY)
  }

  /** Refuses a folder that already holds files: a job never mixes its parts with others'. */
  static prepare (dir: string): OutputDir {
    let created = false
    try {
      const st = statSync(dir)
      if (!st.isDirectory()) throw new OutputExistsError(`output ${dir} exists and is not a folder`)
      if (readdirSync(dir).length > 0) throw new OutputExistsError(`output folder ${dir} already holds files (remove it or choose another --output)`)
    } catch (err) {
      if (err instanceof OutputExistsError) throw err
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new OutputExistsError(`output folder ${dir} cannot be used: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
      mkdirSync(dir, { recursive: true })
      created = true
    }
    mkdirSync(join(dir, TEMPORARY))
    return new OutputDir(dir, created)
  }

  tempPart (partition: number): string {
    return join(this.temporary, partFileName(partition))
  }

  commit (reduces: number): void {
    for (let r = 0; r < reduces; r++) renameSync(this.tempPart(r), join(this.dir, partFileName(r)))
    rmSync(this.temporary, { recursive: true, force: true })
    writeFileSync(join(this.dir, SUCCESS_FILE), '')
  }

  /** Undoes everything this job wrote. */
  abort (): void {
    rmSync(this.temporary, { recursive: true, force: true })
    if (this.created) {
      try {
        rmdirSync(this.dir)
      } catch {
        // not empty: someone else wrote there meanwhile; leave their files alone
      }
    }
  }
}
