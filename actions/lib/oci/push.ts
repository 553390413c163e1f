import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import { mapLimit } from '../pool.js';
import type { RegistryClient } from './client.js';
import { sha256 } from './client.js';
import type { OciLayout } from './layout.js';
import { ImageManifestSchema, IndexSchema, isIndexType, manifestMediaType, type Descriptor } from './media.js';

/**
 * Pushing an image from an OCI layout: every blob once (HEAD first, optional cross-repo
 * mount, streamed upload), child manifests by digest, the root manifest once by digest, then
 * every tag as the identical bytes (a registry-side alias), then every tag read back and
 * required to resolve to the one digest.
 */
export interface ManifestNode {
  digest: string;
  mediaType: string;
  body: Buffer;
  blobs: Descriptor[];
}

export interface PushPlan {
  root: ManifestNode;
  /** Child manifests of an index (empty for a single image). */
  children: ManifestNode[];
}

export function planFromLayout(layout: OciLayout, tag?: string): PushPlan {
  const desc = layout.resolve(tag);
  const load = (d: Descriptor): ManifestNode => {
    const body = layout.readBlob(d.digest);
    const mediaType = d.mediaType || manifestMediaType(body);
    if (isIndexType(mediaType)) {
      IndexSchema.parse(JSON.parse(body.toString()));
      return { digest: d.digest, mediaType, body, blobs: [] };
    }
    const m = ImageManifestSchema.parse(JSON.parse(body.toString()));
    return { digest: d.digest, mediaType, body, blobs: [m.config, ...m.layers] };
  };
  const root = load(desc);
  const children: ManifestNode[] = [];
  if (isIndexType(root.mediaType)) {
    const idx = IndexSchema.parse(JSON.parse(root.body.toString()));
    for (const c of idx.manifests) {
      if (!layout.hasBlob(c.digest)) {
        throw new UserError(`the index ${root.digest} references ${c.digest}, which is missing from ${layout.dir}`);
      }
      const node = load(c);
      if (isIndexType(node.mediaType)) throw new UserError('nested indexes are not supported');
      children.push(node);
    }
  }
  for (const n of [root, ...children]) {
    for (const b of n.blobs) {
      if (!layout.hasBlob(b.digest)) throw new UserError(`blob ${b.digest} is missing from ${layout.dir}`);
    }
  }
  return { root, children };
}

export interface PushResult {
  digest: string;
  tags: string[];
  blobs: { uploaded: number; skipped: number; mounted: number; bytesUploaded: number };
}

export async function pushPlan(
  client: RegistryClient,
  repo: string,
  layout: OciLayout,
  plan: PushPlan,
  opts: { tags: string[]; log: Logger; concurrency?: number; mountFrom?: string[] },
): Promise<PushResult> {
  const blobs = new Map<string, Descriptor>();
  for (const n of [...plan.children, plan.root]) for (const b of n.blobs) blobs.set(b.digest, b);
  const before = { ...client.stats };
  opts.log.info(`pushing ${blobs.size} blob(s) to ${client.opts.registry}/${repo}`);
  await mapLimit([...blobs.values()], opts.concurrency ?? 4, async (b) => {
    const size = layout.blobSize(b.digest);
    if (size !== b.size) throw new UserError(`blob ${b.digest} is ${size} bytes on disk, the manifest says ${b.size}`);
    const how = await client.pushBlob(
      repo,
      { digest: b.digest, size },
      (start) => layout.openBlob(b.digest, start),
      opts.mountFrom,
    );
    opts.log.debug(`${b.digest.slice(0, 19)} ${how} (${size} bytes)`);
  });
  for (const c of plan.children) await client.putManifest(repo, c.digest, c.body, c.mediaType);
  const digest = await client.putManifest(repo, plan.root.digest, plan.root.body, plan.root.mediaType);
  if (digest !== sha256(plan.root.body)) throw new Error('internal: root digest mismatch');
  for (const t of opts.tags) await client.putManifest(repo, t, plan.root.body, plan.root.mediaType);
  await verifyTags(client, repo, opts.tags, digest);
  return {
    digest,
    tags: opts.tags,
    blobs: {
      uploaded: client.stats.blobsUploaded - before.blobsUploaded,
      skipped: client.stats.blobsSkipped - before.blobsSkipped,
      mounted: client.stats.blobsMounted - before.blobsMounted,
      bytesUploaded: client.stats.bytesUploaded - before.bytesUploaded,
    },
  };
}

/** Reads every tag back; throws unless all resolve to `digest`. */
export async function verifyTags(client: RegistryClient, repo: string, tags: string[], digest: string): Promise<void> {
  const wrong: string[] = [];
  for (const t of tags) {
    const h = await client.headManifest(repo, t);
    if (h?.digest !== digest) wrong.push(`${t} → ${h?.digest ?? 'missing'}`);
  }
  if (wrong.length) {
    throw new Error(`after writing, not every tag resolves to ${digest}: ${wrong.join(', ')}`);
  }
}
