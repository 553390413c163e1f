import crypto from 'node:crypto';
import type { Logger } from '../log.js';
import type { RegistryClient } from '../oci/client.js';
import { IndexSchema, isIndexType } from '../oci/media.js';
import type { ImageReference } from '../oci/reference.js';
import { UserError } from '../errors.js';
import { checkBundle, fetchBundles, referrersTag } from './bundle.js';
import { describeIdentity, identityMatches, MATCH_REPOSITORY, type SignedIdentity } from './identity.js';
import { parsePublicKey, verifyBytes } from './keys.js';
import { readSignatureManifest, sigTag, type SignatureLayer } from './legacy.js';
import { ANNOTATION_SIGNATURE, parsePayload, PayloadError } from './payload.js';

/**
 * THE signature verifier of Keel (used by `verify`, `sign`'s self-check, `promote` and
 * `smoke-boot`). For the legacy format it applies containers/image's `sigstoreSigned` +
 * `keyPath` acceptance rules (signature/policy_eval_sigstore.go, internal/sigstore_payload.go),
 * i.e. what bootc, rpm-ostree, podman and skopeo enforce:
 *
 *  1. signatures are the `application/vnd.dev.cosign.simplesigning.v1+json` layers of
 *     `<repo>:sha256-<hex>.sig`; none → "A signature was required, but no signature exists";
 *  2. each needs the `dev.cosignproject.cosign/signature` annotation (strict base64);
 *  3. the signature must verify with the key over the exact payload bytes (ECDSA/RSA with
 *     SHA-256, or Ed25519);
 *  4. the payload must have exactly the keys c/image requires (critical/optional, critical.type/
 *     image/identity, …), `optional` present, the type string `cosign container image signature`;
 *  5. `docker-manifest-digest` must equal the digest of the manifest being verified;
 *  6. `docker-reference` must satisfy the `signedIdentity` rule;
 *  one accepted signature is enough. Rejections carry c/image's wording.
 *
 * For the bundle format (cosign 3's OCI referrer) it checks the DSSE signature with the key and
 * that the statement's subject is the digest (there is no identity in a bundle).
 *
 * Multi-arch: with `recursive` (default) an index AND every child manifest must verify, because
 * bootc checks the index digest and podman/skopeo check the chosen per-platform manifest.
 */

export type VerifyFormat = 'legacy' | 'bundle' | 'both';

export interface VerifyOptions {
  /** The policy.json signedIdentity rule. Default: matchRepository (what Keel's client policy uses). */
  identity?: SignedIdentity;
  /**
   * Evaluate the identity as if the client pulled `registry/repo:<tag>` (which resolved to the
   * digest). Default: pulled by digest. Matters only for matchRepoDigestOrExact / matchExact.
   */
  tag?: string;
  /** Which signature format must verify. Default: legacy (the one clients enforce). */
  format?: VerifyFormat;
  /** For an index: also require every child manifest to verify. Default true. */
  recursive?: boolean;
  log?: Logger;
}

export interface SignatureCheck {
  format: 'legacy' | 'bundle';
  /** Where the signature lives: `repo:sha256-….sig#<layer>` or `repo@<referrer digest>`. */
  source: string;
  accepted: boolean;
  /** Why it was rejected ('' when accepted). */
  reason: string;
  /** The payload's docker-reference (legacy), when it could be read. */
  dockerReference?: string;
}

export interface DigestVerification {
  digest: string;
  mediaType: string;
  /** Platform of a child manifest (os/arch[/variant]). */
  platform?: string;
  verified: boolean;
  reason: string;
  checks: SignatureCheck[];
}

export interface VerifyResult {
  verified: boolean;
  /** One line: why it is (not) verified. */
  reason: string;
  /** The image digest first, then each child of an index. */
  details: DigestVerification[];
}

const NO_SIGNATURE = 'A signature was required, but no signature exists';
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Go's base64.StdEncoding: padding required, \r and \n ignored, nothing else tolerated. */
function strictBase64(s: string): Buffer | undefined {
  const t = s.replace(/[\r\n]/g, '');
  return B64.test(t) ? Buffer.from(t, 'base64') : undefined;
}

/** containers/image's decision for one legacy signature layer. */
export function checkLegacyLayer(
  layer: Pick<SignatureLayer, 'payload' | 'error' | 'descriptor'>,
  key: crypto.KeyObject,
  digest: string,
  intended: ImageReference,
  identity: SignedIdentity,
): { accepted: boolean; reason: string; dockerReference?: string } {
  if (!layer.payload) return { accepted: false, reason: layer.error ?? 'payload missing' };
  const b64 = layer.descriptor.annotations?.[ANNOTATION_SIGNATURE];
  if (b64 === undefined) return { accepted: false, reason: `missing ${ANNOTATION_SIGNATURE} annotation` };
  const sig = strictBase64(b64);
  if (!sig) return { accepted: false, reason: 'invalid signature: base64 decoding failed' };
  if (!verifyBytes(key, layer.payload, sig)) {
    return {
      accepted: false,
      reason: 'cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature',
    };
  }
  let payload;
  try {
    payload = parsePayload(layer.payload);
  } catch (e) {
    return { accepted: false, reason: e instanceof PayloadError ? e.message : String(e) };
  }
  if (payload.digest !== digest) {
    return {
      accepted: false,
      reason: `Signature for digest ${payload.digest} does not match`,
      dockerReference: payload.dockerReference,
    };
  }
  if (!identityMatches(identity, intended, payload.dockerReference)) {
    return {
      accepted: false,
      reason: `Signature for identity ${JSON.stringify(payload.dockerReference)} is not accepted (signedIdentity ${describeIdentity(identity)}, pulled as ${intended.toString()})`,
      dockerReference: payload.dockerReference,
    };
  }
  return { accepted: true, reason: '', dockerReference: payload.dockerReference };
}

function summarize(checks: SignatureCheck[], what: string): { verified: boolean; reason: string } {
  if (checks.some((c) => c.accepted)) {
    const n = checks.filter((c) => c.accepted).length;
    return { verified: true, reason: `${n} ${what} signature(s) accepted` };
  }
  if (checks.length === 0)
    return {
      verified: false,
      reason: what === 'bundle' ? 'no cosign bundle exists (OCI referrer or sha256-<hex> fallback tag)' : NO_SIGNATURE,
    };
  // c/image: one rejection is reported as is; several as "None of the signatures were accepted, reasons: …".
  if (checks.length === 1) return { verified: false, reason: checks[0]!.reason };
  return {
    verified: false,
    reason: `None of the signatures were accepted, reasons: ${checks.map((c) => c.reason).join('; ')}`,
  };
}

async function verifyDigest(
  client: RegistryClient,
  ref: ImageReference,
  digest: string,
  key: crypto.KeyObject,
  opts: Required<Pick<VerifyOptions, 'identity' | 'format'>> & { tag?: string },
): Promise<{ verified: boolean; reason: string; checks: SignatureCheck[] }> {
  const intended = opts.tag ? ref.withTag(opts.tag) : ref.withDigest(ref.digest!);
  const checks: SignatureCheck[] = [];
  const parts: { verified: boolean; reason: string }[] = [];
  if (opts.format === 'legacy' || opts.format === 'both') {
    const legacy: SignatureCheck[] = [];
    let sm;
    try {
      sm = await readSignatureManifest(client, ref.repository, digest);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      legacy.push({
        format: 'legacy',
        source: `${ref.name}:${sigTag(digest)}`,
        accepted: false,
        reason: (e as Error).message,
      });
    }
    for (const layer of sm?.layers ?? []) {
      const r = checkLegacyLayer(layer, key, digest, intended, opts.identity);
      legacy.push({ format: 'legacy', source: `${ref.name}:${sm!.tag}#${layer.index}`, ...r });
    }
    checks.push(...legacy);
    parts.push(summarize(legacy, 'legacy'));
  }
  if (opts.format === 'bundle' || opts.format === 'both') {
    const bundles: SignatureCheck[] = [];
    let fetched: Awaited<ReturnType<typeof fetchBundles>> = [];
    try {
      fetched = await fetchBundles(client, ref.repository, digest);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      bundles.push({
        format: 'bundle',
        source: `${ref.name}:${referrersTag(digest)}`,
        accepted: false,
        reason: e.message,
      });
    }
    for (const b of fetched) {
      const reason = b.error ?? checkBundle(b.bundle!, digest, key);
      bundles.push({
        format: 'bundle',
        source: `${ref.name}@${b.ref.descriptor.digest}`,
        accepted: !reason,
        reason: reason ?? '',
      });
    }
    checks.push(...bundles);
    parts.push(summarize(bundles, 'bundle'));
  }
  const failed = parts.find((p) => !p.verified);
  return { verified: !failed, reason: failed ? failed.reason : parts.map((p) => p.reason).join(', '), checks };
}

/**
 * Verifies the signatures of `ref` (which must carry a digest) with `publicKey` (SPKI PEM or a
 * KeyObject). Never throws for "not signed / not verified" (that is `verified: false` with the
 * reason); throws only for registry/transport failures and a malformed key.
 *
 * @example
 *   const r = await verifyImage(client, parseDigestReference(imageRef), pem);
 *   if (!r.verified) throw new UserError(`refusing ${imageRef}: ${r.reason}`);
 */
export async function verifyImage(
  client: RegistryClient,
  ref: ImageReference,
  publicKey: string | crypto.KeyObject,
  opts: VerifyOptions = {},
): Promise<VerifyResult> {
  if (!ref.digest) throw new Error(`verifyImage needs a digest reference, got ${ref.toString()}`);
  const key = typeof publicKey === 'string' ? parsePublicKey(publicKey) : publicKey;
  const o = { identity: opts.identity ?? MATCH_REPOSITORY, format: opts.format ?? 'legacy', tag: opts.tag };
  const head = await client.headManifest(ref.repository, ref.digest);
  if (!head) {
    const reason = `${ref.toString()} does not exist in the registry`;
    return {
      verified: false,
      reason,
      details: [{ digest: ref.digest, mediaType: '', verified: false, reason, checks: [] }],
    };
  }
  const top = await client.getManifest(ref.repository, ref.digest);
  const details: DigestVerification[] = [];
  const r = await verifyDigest(client, ref, ref.digest, key, o);
  details.push({ digest: ref.digest, mediaType: top.mediaType, ...r });
  if ((opts.recursive ?? true) && isIndexType(top.mediaType)) {
    const idx = IndexSchema.parse(JSON.parse(top.body.toString('utf8')));
    for (const child of idx.manifests) {
      const cr = await verifyDigest(client, ref, child.digest, key, o);
      const p = child.platform;
      details.push({
        digest: child.digest,
        mediaType: child.mediaType,
        platform: p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : undefined,
        ...cr,
      });
    }
  }
  const bad = details.find((d) => !d.verified);
  for (const d of details)
    opts.log?.debug(`verify ${d.digest}: ${d.verified ? 'verified' : 'NOT verified'}: ${d.reason}`);
  if (bad) {
    const where =
      bad.digest === ref.digest ? '' : `child manifest ${bad.digest}${bad.platform ? ` (${bad.platform})` : ''}: `;
    return { verified: false, reason: `${where}${bad.reason}`, details };
  }
  const n = details.length;
  return {
    verified: true,
    reason: `${details[0]!.reason}${n > 1 ? ` (and for all ${n - 1} child manifest(s))` : ''}`,
    details,
  };
}
