import '../util/polyfills.js'
import { Command, CommanderError } from 'commander'
import { errorMessage, isUserFacingError, UserCodeError } from '../util/errors.js'
import { logLevelFromEnv } from '../util/logger.js'
import { registerCommands } from './commands.js'

const program = new Command()
program
  .name('mrp2p')
  .description('Peer-to-peer MapReduce over libp2p')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str.replace(/^error: /, 'mrp2p: ')) })

registerCommands(program)

try {
  logLevelFromEnv()
  await program.parseAsync(process.argv)
} catch (err) {
  process.exitCode = exitCodeFor(err)
}
// Every command has finished here (`join` and `cluster` end the process themselves). What libp2p leaves behind after
// stop() (a one-second debounce of the address book, measured as a second idle at the end of every `submit`) must
// not keep the user waiting; but what the command wrote must all be out first: a pipe takes it at the reader's
// pace (an exit right away cut `mrp2p logs` short in CI).
await Promise.all([process.stdout, process.stderr].map(async (out) => { await new Promise<void>((resolve) => { out.write('', () => { resolve() }) }) }))
process.exit()

function exitCodeFor (err: unknown): number {
  if (err instanceof CommanderError) {
    // commander already printed its one line; --help and --version exit 0
    return err.exitCode === 0 ? 0 : 2
  }
  if (isUserFacingError(err)) {
    process.stderr.write(`mrp2p: ${err.message}\n`)
    if (err instanceof UserCodeError && err.userStack !== undefined) process.stderr.write(`${err.userStack}\n`)
    return err.exitCode
  }
  // A bug of ours, not a user mistake: keep the stack, it is what we need to fix it.
  process.stderr.write(`mrp2p: internal error: ${errorMessage(err)}\n`)
  if (err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`)
  return 70
}
