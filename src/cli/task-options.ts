import { DEFAULT_TASK_MEMORY_MB } from '../worker/task-defaults.js'
import { envValue, flagOrEnv, type Env } from '../util/env.js'
import { parseIntArg } from './arg-parsers.js'

/** `mrp2p join` flags about how this node runs tasks, as commander parses them. */
export interface TaskFlags {
  sandbox?: boolean
  taskMemory?: string
  /** `--no-exec`: false when given. */
  exec?: boolean
  /** `--no-local-reads`: false when given. */
  localReads?: boolean
  /** `--no-local-shuffle`: false when given. */
  localShuffle?: boolean
}

export interface TaskOptions {
  sandbox: boolean
  taskMemoryMb: number
  /** false: run no streaming job's commands on this node. */
  exec: boolean
  /** false: fetch every split from its submitter, even one on this host. */
  localReads: boolean
  /** false: fetch every map output over the network, even from a mapper on this host. */
  localShuffle: boolean
}

export const TASK_FLAG_HELP = {
  sandbox: 'run each task attempt in a child process under Node\'s permission model: it reads only its job\'s code and input, writes only its work folder, starts no process; streaming commands run under bubblewrap, without network (env MRP2P_SANDBOX=1)',
  localReads: 'never read a map\'s input in place from a submitter on this host; fetch it over the network as from any other (env MRP2P_LOCAL_READS=0)',
  localShuffle: 'never link a map output in place from a node on this host, nor offer this node\'s; fetch it over the network as from any other (env MRP2P_LOCAL_SHUFFLE=0)',
  exec: 'run no streaming job\'s commands (--mapper/--reducer) on this node: the coordinator sends them to other nodes (env MRP2P_NO_EXEC=1)',
  taskMemory: `heap cap of one task attempt, MiB; a job that allocates past it fails that attempt, not the node (env MRP2P_TASK_MEMORY_MB; default ${DEFAULT_TASK_MEMORY_MB})`
} as const

/** A flag wins over its environment variable; errors name the one that was wrong. */
export function resolveTaskOptions (flags: TaskFlags, env: Env = process.env): TaskOptions {
  const sandbox = flags.sandbox === true || envValue(env, 'MRP2P_SANDBOX') === '1'
  const memory = flagOrEnv(flags.taskMemory, '--task-memory', env, 'MRP2P_TASK_MEMORY_MB')
  // Below 16 MiB not even the engine's own buffers fit; the upper bound is V8's.
  const taskMemoryMb = memory === undefined ? DEFAULT_TASK_MEMORY_MB : parseIntArg(memory.raw, memory.source, 16, 1024 * 1024)
  const exec = flags.exec !== false && envValue(env, 'MRP2P_NO_EXEC') !== '1'
  const localReads = flags.localReads !== false && envValue(env, 'MRP2P_LOCAL_READS') !== '0'
  const localShuffle = flags.localShuffle !== false && envValue(env, 'MRP2P_LOCAL_SHUFFLE') !== '0'
  return { sandbox, taskMemoryMb, exec, localReads, localShuffle }
}
