import { UserError } from '../errors.js';
import type { ManifestResult, RegistryClient } from '../oci/client.js';
import { ImageConfigSchema, ImageManifestSchema, IndexSchema, isIndexType } from '../oci/media.js';

/** OCI label the build hop writes (build/plan.ts); preferred over the config's own `created`. */
export const CREATED_LABEL = 'org.opencontainers.image.created';

/** Config blobs are small JSON; a larger one is refused rather than read into memory. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export interface ImageFacts {
  /** The single-image manifest the facts come from (an index's linux/amd64 or first child). */
  manifestDigest: string;
  labels: Record<string, string>;
  /** When the image was built: the created label, else the config's `created`; undefined if neither parses. */
  created?: Date;
  createdFrom?: 'label' | 'config';
}

/**
 * Labels and build time of a registry image, from its config blob (layers are never read).
 * `manifest` is the already fetched (digest-checked) manifest or index.
 */
export async function readImageFacts(
  client: RegistryClient,
  repo: string,
  manifest: ManifestResult,
): Promise<ImageFacts> {
  let m = manifest;
  if (isIndexType(m.mediaType)) {
    const idx = IndexSchema.parse(JSON.parse(m.body.toString()));
    const child =
      idx.manifests.find((d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64') ?? idx.manifests[0];
    if (!child) throw new UserError(`${repo}@${m.digest} is an empty index`);
    m = await client.getManifest(repo, child.digest);
  }
  const parsed = ImageManifestSchema.safeParse(JSON.parse(m.body.toString()));
  if (!parsed.success) return { manifestDigest: m.digest, labels: {} };
  const cfgDesc = parsed.data.config;
  if (cfgDesc.size > MAX_CONFIG_BYTES) {
    throw new UserError(`${repo}@${m.digest}: config blob of ${cfgDesc.size} bytes is not an image config`);
  }
  const cfg = ImageConfigSchema.safeParse(JSON.parse((await client.getBlob(repo, cfgDesc.digest)).toString()));
  if (!cfg.success) return { manifestDigest: m.digest, labels: {} };
  const labels = { ...(cfg.data.config?.Labels ?? {}) };
  const fromLabel = parseTime(labels[CREATED_LABEL]);
  const fromConfig = parseTime(cfg.data.created);
  return {
    manifestDigest: m.digest,
    labels,
    ...(fromLabel
      ? { created: fromLabel, createdFrom: 'label' as const }
      : fromConfig
        ? { created: fromConfig, createdFrom: 'config' as const }
        : {}),
  };
}

/**
 * An RFC 3339 timestamp, or undefined: hostile or missing values never become a date, and neither
 * does one before 2000 (reproducible builds stamp the epoch, which says nothing about age).
 */
function parseTime(v: string | undefined): Date | undefined {
  const s = v?.trim() ?? '';
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s)) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) || d.getUTCFullYear() < 2000 ? undefined : d;
}
