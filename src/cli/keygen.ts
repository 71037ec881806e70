import { writeFileSync } from 'node:fs'
import type { Command } from 'commander'
import { generateSwarmKey } from '../node/private-network.js'
import { InvalidArgumentError } from '../util/errors.js'
import { writeIdentityFile } from './identity-options.js'

/**
 * `mrp2p keygen --swarm-key FILE`: a new key for a private mesh; `--identity FILE`: a new submitter identity.
 * Written owner-only and never over an existing file: overwriting a mesh's key by mistake would lock every node
 * that uses it out, and overwriting an identity would lose the name the nodes' --submitters lists allow.
 */
export function registerKeygenCommand (program: Command): void {
  program
    .command('keygen')
    .description('make a key for a private mesh (--swarm-key), or a submitter identity that signs jobs (--identity)')
    .option('--swarm-key <file>', 'write a new mesh key here (must not exist yet): only nodes and clients started with it can connect')
    .option('--identity <file>', 'write a new submitter identity here (must not exist yet); prints its PeerId for the nodes\' --submitters file')
    .action(async (flags: { swarmKey?: string, identity?: string }) => {
      if ((flags.swarmKey === undefined) === (flags.identity === undefined)) throw new InvalidArgumentError('keygen needs exactly one of --swarm-key FILE and --identity FILE')
      if (flags.identity !== undefined) {
        const id = await writeIdentityFile(flags.identity)
        process.stdout.write(`${id}\nwrote a new submitter identity to ${flags.identity}; sign with it: submit/cancel --identity ${flags.identity}; allow it: add the line above to the nodes' --submitters file\n`)
        return
      }
      const path = flags.swarmKey ?? ''
      try {
        writeFileSync(path, generateSwarmKey(), { flag: 'wx', mode: 0o600 })
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        throw new InvalidArgumentError(code === 'EEXIST'
          ? `--swarm-key ${path} already exists; not overwriting a key (remove it first if you mean to)`
          : `cannot write --swarm-key ${path}: ${code ?? (err as Error).message}`)
      }
      process.stdout.write(`wrote a new swarm key to ${path}; give it to every node (join/submit/status --swarm-key ${path})\n`)
    })
}
