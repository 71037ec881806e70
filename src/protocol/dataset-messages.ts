import { z } from 'zod'
import { protocolId } from './ids.js'

/**
 * Datasets in the mesh (docs/datasets.md): blocks named by their content, the manifests that list them, and the
 * catalog that binds a name to a manifest. Every message is validated with these schemas before use.
 */
export const DATASET_PROTOCOLS = {
  /** anyone → holder (bulk upload): store this block; the holder checks it against its CID before keeping it */
  putBlock: protocolId('data/put-block'),
  /** anyone → holder (bulk): a block's bytes, checked against its CID by the holder as it reads them */
  getBlock: protocolId('data/get-block'),
  /** anyone → member: which of these blocks do you hold (and, with `verify`, are they intact), and your room */
  blocks: protocolId('data/blocks'),
  /** anyone → member: the catalog, or one name's entry */
  catalog: protocolId('data/catalog'),
  /** client → coordinator: bind a name to a manifest, or remove it */
  bind: protocolId('data/bind'),
  /** coordinator → members: catalog entries to merge */
  push: protocolId('data/push')
} as const

/** A CIDv1 in base32 (multibase prefix `b`), as `CID.toString()` writes it. */
export const CidText = z.string().regex(/^b[a-z2-7]{10,120}$/, 'not a base32 CIDv1')
/** A dataset's name: no `/` (`mesh:NAME/FILE` names one file of it), no leading dot. */
export const DATASET_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
export const DatasetName = z.string().regex(DATASET_NAME_PATTERN, 'a dataset name is 1-128 letters, digits, _ . and -, not starting with . or -')
const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const Text = (max: number): z.ZodString => z.string().max(max)

/** One block of a file: its bytes are the file's from `offset` on; `firstLine` numbers its first line in the file. */
export const BlockRefSchema = z.object({ cid: CidText, bytes: Count, offset: Count, firstLine: z.number().int().min(1) })
export type BlockRef = z.output<typeof BlockRefSchema>
/** A file of a dataset: `path` as `put` recorded it (relative, `/`-separated), its blocks in order. */
export const ManifestFileSchema = z.object({ path: Text(4096).min(1), size: Count, blocks: z.array(BlockRefSchema).max(1_000_000) })
export type ManifestFile = z.output<typeof ManifestFileSchema>
/** What a dataset is: its files, and how many copies of each block the mesh keeps. Its CID is that of its canonical JSON. */
export const ManifestSchema = z.object({
  files: z.array(ManifestFileSchema).max(100_000),
  replicas: z.number().int().min(1).max(16),
  blockSize: z.number().int().min(1).max(2 ** 31)
})
export type Manifest = z.output<typeof ManifestSchema>

/**
 * Catalog versions are ordered by the coordinator's fencing epoch, then a count within it: only the lease holder
 * binds names, so two bindings never share a version and a newer coordinator's always win.
 */
export const CatalogVersionSchema = z.object({ epoch: Count, seq: Count })
export type CatalogVersion = z.output<typeof CatalogVersionSchema>
/** A name's binding; without a manifest, the name was removed (a tombstone, kept so that a late copy does not revive it). */
export const CatalogEntrySchema = z.object({
  name: DatasetName,
  version: CatalogVersionSchema,
  /** When the coordinator bound it, ms since the epoch. */
  at: Count,
  manifestCid: CidText.optional(),
  manifest: ManifestSchema.optional()
})
export type CatalogEntry = z.output<typeof CatalogEntrySchema>

export const PutBlockRequest = z.object({ cid: CidText, bytes: Count })
export const PutBlockResponse = z.union([z.object({ ok: z.literal(true) }), z.object({ ok: z.literal(false), error: Text(1000) })])
/**
 * `length`: only the block's first bytes (the submitter's sample of a sort): the holder checks the whole block first,
 * but the asker cannot check a prefix against the CID.
 */
export const GetBlockRequest = z.object({ cid: CidText, length: Count.optional() })

export const BlocksRequest = z.object({ cids: z.array(CidText).max(200_000), verify: z.boolean().optional() })
export const BlockStateSchema = z.enum(['held', 'missing', 'corrupt'])
export type BlockState = z.output<typeof BlockStateSchema>
/** `free`: bytes this node may still store (its `--store-max` less what it holds, or its free disk). */
export const BlocksResponse = z.object({ states: z.array(BlockStateSchema).max(200_000), storedBytes: Count, free: Count, worker: z.boolean() })

export const CatalogRequest = z.object({ name: DatasetName.optional() })
export const CatalogResponse = z.object({ entries: z.array(CatalogEntrySchema).max(100_000) })

/**
 * No manifest: remove the name. `replace`: bind even if the name is bound now. `seal`: who asks, signed over the name
 * and the manifest's CID (protocol/job-seal.ts); a coordinator with `--submitters` binds only for those it lists.
 */
export const BindRequest = z.object({
  name: DatasetName,
  manifest: ManifestSchema.optional(),
  replace: z.boolean().optional(),
  seal: z.object({ signer: z.string().min(8).max(128).regex(/^[1-9A-HJ-NP-Za-km-z]+$/), signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/) }).optional()
})
export const BindResponse = z.union([
  z.object({ ok: z.literal(true), entry: CatalogEntrySchema }),
  /** `notCoordinator`: ask the coordinator instead; otherwise the request itself was refused. */
  z.object({ ok: z.literal(false), error: Text(1000), notCoordinator: z.boolean().optional() })
])
export const PushRequest = z.object({ entries: z.array(CatalogEntrySchema).max(100_000) })
export const PushResponse = z.object({ ok: z.literal(true) })

/** Catalog answers carry whole manifests: a frame may be this large. */
export const CATALOG_MAX_FRAME_BYTES = 64 * 1024 * 1024
