import { errorMessage } from '../../lib/errors.js';
import type { ImageLocation } from '../../lib/image/open.js';
import type { Logger } from '../../lib/log.js';
import { OciLayout } from '../../lib/oci/layout.js';
import { ImageManifestSchema, IndexSchema, isIndexType, manifestMediaType } from '../../lib/oci/media.js';
import { planFromAnnotations, type Plan } from '../../lib/rechunk/plan.js';
import { connect, type RegistryAccess } from '../../lib/registry.js';

/**
 * The previous published image: only its manifest is read (its layer plan from the layer
 * annotations, and its layer digests to tell which new layers a client already has).
 * A previous image that does not exist yet (first release) is not an error.
 */
export async function readPrevious(
  loc: ImageLocation,
  access: RegistryAccess,
  log: Logger,
): Promise<{ plan?: Plan; layerDigests: Set<string>; source: string } | undefined> {
  try {
    let body: Buffer;
    let source: string;
    if (loc.kind === 'oci') {
      const layout = OciLayout.open(loc.dir);
      const d = layout.resolve(loc.tag);
      body = layout.readBlob(d.digest);
      if (isIndexType(d.mediaType || manifestMediaType(body))) {
        const idx = IndexSchema.parse(JSON.parse(body.toString()));
        body = layout.readBlob(idx.manifests.find((m) => m.platform?.architecture === 'amd64')?.digest ?? idx.manifests[0]!.digest);
      }
      source = `oci:${loc.dir}`;
    } else if (loc.kind === 'registry') {
      const client = connect(loc.ref, access, log);
      const head = await client.headManifest(loc.ref.repository, loc.ref.reference);
      if (!head) {
        log.warning(`previous image ${loc.ref.toString()} does not exist (first release?): using a fresh layer plan`);
        return undefined;
      }
      let m = await client.getManifest(loc.ref.repository, loc.ref.reference);
      if (isIndexType(m.mediaType)) {
        const idx = IndexSchema.parse(JSON.parse(m.body.toString()));
        m = await client.getManifest(loc.ref.repository, idx.manifests.find((x) => x.platform?.architecture === 'amd64')?.digest ?? idx.manifests[0]!.digest);
      }
      body = m.body;
      source = `${loc.ref.toString()} (${m.digest})`;
    } else {
      log.warning('previous-image in containers-storage is not supported (push it, or give an oci: layout): using a fresh plan');
      return undefined;
    }
    const manifest = ImageManifestSchema.parse(JSON.parse(body.toString()));
    return { plan: planFromAnnotations(manifest.layers), layerDigests: new Set(manifest.layers.map((l) => l.digest)), source };
  } catch (e) {
    log.warning(`could not read the previous image (${errorMessage(e)}): using a fresh layer plan`);
    return undefined;
  }
}
