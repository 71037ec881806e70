import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import { generateSwarmKey } from '../node/private-network.js'
import { InvalidArgumentError } from '../util/errors.js'

/**
 * `mrp2p keygen --swarm-key FILE`: a new key for a private mesh. Written
 * owner-only and never over an existing file: overwriting a mesh's key by
 * mistake would lock every node that uses it out.
 */
export function registerKeygenCommand (program: Command): void {
  program
    .command('keygen')
    .description('make a key for a private mesh: only nodes and clients started with it can connect')
    .requiredOption('--swarm-key <file>', 'where to write the key (must not exist yet)')
    .action((flags: { swarmKey: string }) => {
      try {
        writeFileSync(flags.swarmKey, generateSwarmKey(), { flag: 'wx', mode: 0o600 })
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        throw new InvalidArgumentError(code === 'EEXIST'
          ? `--swarm-key ${flags.swarmKey} already exists; not overwriting a key (remove it first if you mean to)`
          : `cannot write --swarm-key ${flags.swarmKey}: ${code ?? (err as Error).message}`)
      }
      process.stdout.write(`wrote a new swarm key to ${flags.swarmKey}; give it to every node (join/submit/status --swarm-key ${flags.swarmKey})\n`)
    })
}
