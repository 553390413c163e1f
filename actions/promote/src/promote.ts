import { UserError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { RegistryClient } from '../../lib/oci/client.js';
import { verifyTags } from '../../lib/oci/push.js';

export interface PromoteRequest {
  repo: string;
  digest: string;
  /** Written in this order; callers put the moving tag (stable) last. */
  tags: string[];
  requireTag?: string;
}

export interface PromoteResult {
  written: string[];
  alreadyThere: string[];
  /** Each written tag with the digest it pointed at before (undefined: a new tag). */
  moved: { tag: string; from?: string }[];
}

/**
 * Digest-preserving promotion inside one repository: the manifest is fetched by digest (its
 * bytes checked) and PUT unchanged under each tag, so signatures and referrers keyed by the
 * digest stay valid. Tags already pointing at the digest are left alone (idempotent re-runs).
 */
export async function promote(client: RegistryClient, req: PromoteRequest, log: Logger): Promise<PromoteResult> {
  if (req.requireTag) {
    const cur = await client.headManifest(req.repo, req.requireTag);
    if (cur?.digest !== req.digest) {
      throw new UserError(
        `refusing to promote ${req.digest}: it is not currently tagged '${req.requireTag}' ` +
          `(${req.requireTag} → ${cur?.digest ?? 'no such tag'}); only the digest under test may be promoted`,
      );
    }
  }
  const m = await client.getManifest(req.repo, req.digest);
  const result: PromoteResult = { written: [], alreadyThere: [], moved: [] };
  for (const tag of req.tags) {
    const cur = await client.headManifest(req.repo, tag);
    if (cur?.digest === req.digest) {
      result.alreadyThere.push(tag);
      log.info(`${tag} already points at ${req.digest}: nothing to do`);
      continue;
    }
    await client.putManifest(req.repo, tag, m.body, m.mediaType);
    result.written.push(tag);
    result.moved.push({ tag, from: cur?.digest });
    log.info(`${tag}: ${cur?.digest ?? '(new)'} → ${req.digest}`);
  }
  await verifyTags(client, req.repo, req.tags, req.digest);
  return result;
}
