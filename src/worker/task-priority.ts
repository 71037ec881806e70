import { setPriority } from 'node:os'

/**
 * Lowers the calling thread's priority to `nice`. On Linux the nice value belongs to a thread, not to its
 * process (setpriority(2), "BUGS"), so a task thread can step back behind the node's main thread; elsewhere it
 * would lower the whole node, so nothing is done. A raised nice value cannot be lowered again without
 * privileges: call it only in a thread that runs tasks for the rest of its life.
 */
export function lowerThreadPriority (nice: number): void {
  if (process.platform !== 'linux') return
  try {
    setPriority(0, nice)
  } catch {
    // A sandbox that forbids it leaves the task at the node's priority: slower pulls, nothing worse.
  }
}
