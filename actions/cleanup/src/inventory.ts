import { UserError } from '../../lib/errors.js';
import { readImageFacts } from '../../lib/image/created.js';
import type { ManifestResult, RegistryClient } from '../../lib/oci/client.js';
import { IndexSchema, isIndexType } from '../../lib/oci/media.js';
import { mapLimit } from '../../lib/pool.js';
import { parseTag, type TagWords } from '../../lib/tags.js';
import type { Backend } from './backends.js';
import type { Inventory } from './plan.js';

/**
 * Reads what the plan needs through the one OCI client: the tags (from the backend), every
 * manifest they reach (an index's children, followed to the end), the build time of each pr-<N>
 * image and, for the digests about to go, their referrers. Manifests are content-addressed, so
 * `cache` keeps them across the two snapshots a run takes. Anything unreadable other than a
 * manifest that is gone fails the run: an unknown index could hide a released child.
 */
export class Snapshotter {
  private readonly manifests = new Map<string, ManifestResult | null>();

  constructor(
    private readonly backend: Backend,
    private readonly client: RegistryClient,
    private readonly repo: string,
    private readonly words: TagWords,
  ) {}

  async take(): Promise<Inventory> {
    const tags = await this.backend.listTags();
    const children = new Map<string, string[]>();
    let frontier = [...new Set(tags.values())];
    while (frontier.length) {
      const found = await mapLimit(frontier, 8, (d) => this.childrenOf(d));
      frontier.forEach((d, i) => children.set(d, found[i]!));
      frontier = [...new Set(found.flat())].filter((d) => !children.has(d));
    }
    const prDigests = [...new Set([...tags].filter(([t]) => parseTag(t, this.words).kind === 'pr').map(([, d]) => d))];
    const dates = await mapLimit(prDigests, 4, (d) => this.createdOf(d));
    return {
      tags,
      children,
      referrers: new Map(),
      created: new Map(prDigests.map((d, i) => [d, dates[i]])),
    };
  }

  /** Adds the referrers (OCI referrers API) of `digests` to the inventory. */
  async addReferrers(inv: Inventory, digests: string[]): Promise<void> {
    const found = await mapLimit(digests, 8, async (d) => {
      const body = await this.client.referrers(this.repo, d);
      if (!body) return [];
      const idx = IndexSchema.safeParse(JSON.parse(body.toString()));
      if (!idx.success) throw new UserError(`the referrers of ${this.repo}@${d} are not an OCI index`);
      return idx.data.manifests.map((m) => m.digest);
    });
    digests.forEach((d, i) => inv.referrers.set(d, found[i]!));
  }

  private async manifest(digest: string): Promise<ManifestResult | null> {
    if (!this.manifests.has(digest))
      this.manifests.set(digest, (await this.client.findManifest(this.repo, digest)) ?? null);
    return this.manifests.get(digest)!;
  }

  private async childrenOf(digest: string): Promise<string[]> {
    const m = await this.manifest(digest);
    if (!m || !isIndexType(m.mediaType)) return [];
    const idx = IndexSchema.safeParse(JSON.parse(m.body.toString()));
    if (!idx.success) throw new UserError(`${this.repo}@${digest} claims to be an index but does not parse as one`);
    return idx.data.manifests.map((c) => c.digest);
  }

  private async createdOf(digest: string): Promise<Date | undefined> {
    const m = await this.manifest(digest);
    return m ? (await readImageFacts(this.client, this.repo, m)).created : undefined;
  }
}
