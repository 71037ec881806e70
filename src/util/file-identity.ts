import { z } from 'zod'

const Decimal = z.string().regex(/^\d{1,20}$/)

/**
 * A file as `stat` names it on one host: device, inode, size and modification time (in nanoseconds). Equal
 * values on the same host mean the same file, unchanged since they were taken. On another host they mean
 * nothing: the same numbers can name another file (two machines made from one image), which is why a worker
 * first proves that it shares the submitter's host (docs/jobs.md, "Where a map reads its input").
 * Taken and compared in same-file.ts, which task processes load without zod.
 */
export const FileIdentitySchema = z.object({ dev: Decimal, ino: Decimal, size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), mtimeNs: Decimal })
export type FileIdentity = z.output<typeof FileIdentitySchema>
