import { chmodSync, constants, copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

/** One `--file` of a streaming job: its base name in the folder, and where its bytes are now. */
export interface CommandFile { name: string, path: string }

/**
 * Makes a streaming command's working folder: every `--file` copied in under its base name (a clone where the file
 * system can), executable, as Hadoop Streaming makes its shipped files, so `./mapper.py` runs by its shebang. A copy
 * per attempt, not a link: a script that writes to its own files cannot spoil the node's cached copy.
 */
export function prepareCommandFolder (dir: string, files: readonly CommandFile[]): void {
  mkdirSync(dir, { recursive: true })
  for (const f of files) {
    const to = join(dir, f.name)
    copyFileSync(f.path, to, constants.COPYFILE_FICLONE)
    chmodSync(to, 0o755)
  }
}
