import { z } from 'zod'

/**
 * The addresses a member announces (heartbeats) and a node passes on (`/mrp2p/info`): one schema, so that what the
 * election takes from a member always fits the answers that carry it on. With two, a member announcing a 512-character
 * address made every node's info answer invalid, and every `submit` through it failed (found by
 * test/cluster/fuzz.test.ts).
 */
export const MemberAddrsSchema = z.array(z.string().max(500)).max(64)
