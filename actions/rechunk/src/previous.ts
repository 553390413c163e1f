import fs from 'node:fs';
import path from 'node:path';
import { errorMessage, InputError, UserError } from '../../lib/errors.js';
import type { ImageLocation } from '../../lib/image/open.js';
import type { Logger } from '../../lib/log.js';
import { OciLayout, REF_ANNOTATION } from '../../lib/oci/layout.js';
import { ImageManifestSchema, IndexSchema, isIndexType, manifestMediaType } from '../../lib/oci/media.js';
import { planFromAnnotations, type Plan } from '../../lib/rechunk/plan.js';
import { connect, type RegistryAccess } from '../../lib/registry.js';

export interface Previous {
  plan?: Plan;
  layerDigests: Set<string>;
  source: string;
}

/** The linux/amd64 child of an index (the platform Keel rechunks); its absence is an error. */
function amd64Child(body: Buffer, source: string): string {
  const idx = IndexSchema.parse(JSON.parse(body.toString()));
  const m = idx.manifests.find((x) => x.platform?.architecture === 'amd64' && (x.platform.os ?? 'linux') === 'linux');
  if (!m) {
    const have = idx.manifests.map((x) => `${x.platform?.os ?? '?'}/${x.platform?.architecture ?? '?'}`).join(', ');
    throw new UserError(`previous image ${source} is an index without a linux/amd64 image (has: ${have || 'nothing'})`);
  }
  return m.digest;
}

/**
 * The previous published image: only its manifest is read (its layer plan from the layer
 * annotations, and its layer digests to tell which new layers a client already has).
 * Only a previous image that does not exist yet (first release) gives a fresh plan with a
 * warning; one that exists but cannot be read (auth, 5xx after retries, a corrupt manifest, no
 * amd64 child) fails the step, since silently re-planning would make every client re-download
 * the whole OS.
 */
export async function readPrevious(
  loc: ImageLocation,
  access: RegistryAccess,
  log: Logger,
): Promise<Previous | undefined> {
  const firstRelease = (what: string) => {
    log.warning(`previous image ${what} does not exist (first release?): using a fresh layer plan`);
    return undefined;
  };
  let body: Buffer;
  let source: string;
  if (loc.kind === 'oci') {
    source = `oci:${loc.dir}${loc.tag ? `:${loc.tag}` : ''}`;
    if (!fs.existsSync(path.join(loc.dir, 'index.json'))) return firstRelease(source);
    const layout = OciLayout.open(loc.dir);
    if (loc.tag && !layout.index().manifests.some((d) => d.annotations?.[REF_ANNOTATION] === loc.tag))
      return firstRelease(source);
    const d = layout.resolve(loc.tag);
    body = layout.readBlob(d.digest);
    if (isIndexType(d.mediaType || manifestMediaType(body))) body = layout.readBlob(amd64Child(body, source));
  } else if (loc.kind === 'registry') {
    const client = connect(loc.ref, access, log);
    const head = await client.headManifest(loc.ref.repository, loc.ref.reference);
    if (!head) return firstRelease(loc.ref.toString());
    let m = await client.getManifest(loc.ref.repository, loc.ref.reference);
    if (isIndexType(m.mediaType))
      m = await client.getManifest(loc.ref.repository, amd64Child(m.body, loc.ref.toString()));
    body = m.body;
    source = `${loc.ref.toString()} (${m.digest})`;
  } else {
    throw new InputError(
      'previous-image',
      `containers-storage:${loc.ref}`,
      'expected the published image (REGISTRY/REPO:TAG) or an oci:DIR[:TAG] layout; containers-storage holds no layer plan',
    );
  }
  let manifest;
  try {
    manifest = ImageManifestSchema.parse(JSON.parse(body.toString()));
  } catch (e) {
    throw new UserError(
      `previous image ${source}: its manifest is not a valid OCI image manifest (${errorMessage(e)})`,
    );
  }
  return {
    plan: planFromAnnotations(manifest.layers),
    layerDigests: new Set(manifest.layers.map((l) => l.digest)),
    source,
  };
}
