import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import type { SerializedBundle } from '@sigstore/bundle';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import { sha256, type RegistryClient } from '../oci/client.js';
import { ImageManifestSchema, IndexSchema, MT, type Descriptor } from '../oci/media.js';
import { sleep } from '../retry.js';
import { strictJson } from './payload.js';
import { verifyBytes } from './keys.js';

/**
 * cosign 3's default signature format (reference/signing.md §1.2): a Sigstore bundle v0.3 whose
 * DSSE envelope carries an in-toto Statement (subject = the image digest, predicateType
 * https://sigstore.dev/cosign/sign/v1), stored as an OCI 1.1 referrer (artifactType = bundle
 * media type, empty config, subject = the image). When the registry has no referrers API
 * (distribution 2.8, GHCR), the referrers tag schema is maintained: an OCI index under
 * `sha256-<hex>` listing the referrers. containers/image does NOT read this format; it is
 * written in addition to the legacy `.sig` for cosign 3 users.
 */

export const MT_BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const PREDICATE_COSIGN_SIGN = 'https://sigstore.dev/cosign/sign/v1';
export const PAYLOAD_TYPE_INTOTO = 'application/vnd.in-toto+json';
const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
const EMPTY_JSON = Buffer.from('{}');

/** `sha256:<hex>` → `sha256-<hex>` (the referrers tag schema). */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

/** The in-toto statement cosign 3 signs for an image digest. */
export function cosignStatement(digest: string): Buffer {
  const hex = digest.replace(/^sha256:/, '');
  return Buffer.from(
    JSON.stringify({
      _type: STATEMENT_V1,
      subject: [{ digest: { sha256: hex }, annotations: {} }],
      predicateType: PREDICATE_COSIGN_SIGN,
      predicate: {},
    }),
  );
}

/** DSSE pre-authentication encoding (what the signature covers). */
export function pae(payloadType: string, payload: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `),
    payload,
  ]);
}

async function putSmallBlob(client: RegistryClient, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  await client.pushBlob(repo, { digest, size: bytes.length }, () => Readable.from([bytes]));
  return digest;
}

export interface BundleRef {
  /** Where it was found: 'referrers' API or the fallback tag. */
  source: 'referrers' | 'fallback-tag';
  descriptor: Descriptor;
}

/** Lists the bundle referrers of `digest` (referrers API, else the `sha256-<hex>` index). */
export async function listBundleReferrers(
  client: RegistryClient,
  repo: string,
  digest: string,
): Promise<{ api: boolean; refs: BundleRef[] }> {
  const body = await client.referrers(repo, digest);
  let api = false;
  let descriptors: Descriptor[] = [];
  if (body) {
    api = true;
    const idx = IndexSchema.safeParse(JSON.parse(body.toString('utf8')));
    if (idx.success) descriptors = idx.data.manifests;
  } else {
    const idx = await readFallbackIndex(client, repo, digest);
    descriptors = idx?.manifests ?? [];
  }
  // go-containerregistry (cosign 3) writes fallback-index entries with the artifactType of the
  // config (application/vnd.oci.empty.v1+json), so such entries are candidates too; the manifest
  // itself decides (fetchBundles).
  const candidate = (d: Descriptor) =>
    d.artifactType === undefined || d.artifactType === MT_BUNDLE_V03 || d.artifactType === MT.ociEmpty;
  return {
    api,
    refs: descriptors
      .filter(candidate)
      .map((d) => ({ source: api ? ('referrers' as const) : ('fallback-tag' as const), descriptor: d })),
  };
}

async function readFallbackIndex(client: RegistryClient, repo: string, digest: string) {
  const tag = referrersTag(digest);
  const head = await client.headManifest(repo, tag);
  if (!head) return undefined;
  const got = await client.getManifest(repo, head.digest, MT.ociIndex);
  const idx = IndexSchema.safeParse(JSON.parse(got.body.toString('utf8')));
  if (!idx.success) throw new UserError(`${repo}:${tag} exists but is not an OCI index (the referrers fallback tag)`);
  return { ...idx.data, digest: got.digest };
}

export interface FetchedBundle {
  ref: BundleRef;
  bundle?: Buffer;
  /** Why it is not a usable bundle for `digest` (e.g. its subject is another image). */
  error?: string;
}

/** Reads each bundle referrer's manifest and bundle blob, checking the manifest's subject. */
export async function fetchBundles(client: RegistryClient, repo: string, digest: string): Promise<FetchedBundle[]> {
  const { refs } = await listBundleReferrers(client, repo, digest);
  const out: FetchedBundle[] = [];
  for (const ref of refs) {
    try {
      const m = await client.getManifest(repo, ref.descriptor.digest, MT.ociManifest);
      const parsed = ImageManifestSchema.safeParse(JSON.parse(m.body.toString('utf8')));
      if (!parsed.success) {
        out.push({ ref, error: 'the referrer is not an OCI image manifest' });
        continue;
      }
      const man = parsed.data;
      const layer = man.layers.find((l) => l.mediaType === MT_BUNDLE_V03);
      if (man.artifactType !== MT_BUNDLE_V03 && !layer) continue; // another kind of referrer
      if (man.subject?.digest !== digest) {
        out.push({ ref, error: `the referrer's subject is ${man.subject?.digest ?? 'missing'}, not ${digest}` });
        continue;
      }
      if (!layer) {
        out.push({ ref, error: `the referrer has no ${MT_BUNDLE_V03} layer` });
        continue;
      }
      if (layer.size > 4 * 1024 * 1024) {
        out.push({ ref, error: `the bundle is ${layer.size} bytes (limit 4 MiB)` });
        continue;
      }
      out.push({ ref, bundle: await client.getBlob(repo, layer.digest) });
    } catch (e) {
      out.push({ ref, error: (e as Error).message });
    }
  }
  return out;
}

/**
 * Verifies one cosign-3 signature bundle for `digest` with a public key: DSSE envelope of an
 * in-toto statement, the signature over the PAE verifying with the key, predicate
 * https://sigstore.dev/cosign/sign/v1, and the statement's subject naming `digest`.
 * Returns the rejection reason, or undefined when accepted. (A bundle has no docker-reference:
 * signedIdentity rules do not apply to it.)
 */
export function checkBundle(bundle: Buffer, digest: string, key: crypto.KeyObject): string | undefined {
  let j: {
    mediaType?: unknown;
    dsseEnvelope?: { payload?: unknown; payloadType?: unknown; signatures?: { sig?: unknown }[] };
  };
  try {
    j = strictJson(bundle.toString('utf8')) as typeof j;
  } catch (e) {
    return `the bundle is not valid JSON: ${(e as Error).message}`;
  }
  if (typeof j.mediaType !== 'string' || !j.mediaType.startsWith('application/vnd.dev.sigstore.bundle')) {
    return `not a Sigstore bundle (mediaType ${JSON.stringify(j.mediaType)})`;
  }
  const env = j.dsseEnvelope;
  if (!env || typeof env.payload !== 'string' || !Array.isArray(env.signatures))
    return 'the bundle has no DSSE envelope';
  if (env.payloadType !== PAYLOAD_TYPE_INTOTO) return `unexpected DSSE payload type ${JSON.stringify(env.payloadType)}`;
  const payload = Buffer.from(env.payload, 'base64');
  const signed = pae(PAYLOAD_TYPE_INTOTO, payload);
  const ok = env.signatures.some(
    (s) => typeof s.sig === 'string' && verifyBytes(key, signed, Buffer.from(s.sig, 'base64')),
  );
  if (!ok)
    return 'cryptographic signature verification failed (the DSSE signature does not verify with the public key)';
  let st: { _type?: unknown; predicateType?: unknown; subject?: { digest?: { sha256?: unknown } }[] };
  try {
    st = strictJson(payload.toString('utf8')) as typeof st;
  } catch (e) {
    return `the signed statement is not valid JSON: ${(e as Error).message}`;
  }
  if (typeof st._type !== 'string' || !st._type.startsWith('https://in-toto.io/Statement/'))
    return 'the signed payload is not an in-toto statement';
  if (st.predicateType !== PREDICATE_COSIGN_SIGN)
    return `the statement's predicate is ${JSON.stringify(st.predicateType)}, not a cosign signature`;
  const hex = digest.replace(/^sha256:/, '');
  if (!Array.isArray(st.subject) || !st.subject.some((s) => s?.digest?.sha256 === hex)) {
    return `Signature for digest ${digest} does not match: the statement's subject names another image`;
  }
  return undefined;
}

/** The public key of a keyless bundle's certificate (undefined for key-based bundles). */
export function bundleCertificateKey(bundle: Buffer): crypto.KeyObject | undefined {
  try {
    const j = JSON.parse(bundle.toString('utf8')) as SerializedBundle;
    const vm = j.verificationMaterial as { certificate?: { rawBytes: string } } | undefined;
    const raw = vm?.certificate?.rawBytes;
    if (!raw) return undefined;
    return new crypto.X509Certificate(Buffer.from(raw, 'base64')).publicKey;
  } catch {
    return undefined;
  }
}

export interface PushedBundle {
  /** Digest of the referrer manifest. */
  manifestDigest: string;
  /** Whether the `sha256-<hex>` fallback index was written (no referrers API). */
  fallbackTag?: string;
}

/**
 * Pushes a bundle as an OCI 1.1 referrer of `subject` and, when the registry has no referrers API,
 * adds it to the `sha256-<hex>` fallback index (read-modify-write, existing entries kept).
 */
export async function pushBundleReferrer(
  client: RegistryClient,
  repo: string,
  subject: { digest: string; mediaType: string; size: number },
  bundle: Buffer,
  log?: Logger,
): Promise<PushedBundle> {
  const emptyDigest = await putSmallBlob(client, repo, EMPTY_JSON);
  const bundleDigest = await putSmallBlob(client, repo, bundle);
  const annotations = {
    'dev.sigstore.bundle.content': 'dsse-envelope',
    'dev.sigstore.bundle.predicateType': PREDICATE_COSIGN_SIGN,
    'org.opencontainers.image.created': new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  const manifest = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    artifactType: MT_BUNDLE_V03,
    config: { mediaType: MT.ociEmpty, digest: emptyDigest, size: EMPTY_JSON.length },
    layers: [{ mediaType: MT_BUNDLE_V03, digest: bundleDigest, size: bundle.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations,
  };
  const body = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await client.putManifest(repo, sha256(body), body, MT.ociManifest);
  const referrers = await client.referrers(repo, subject.digest);
  if (referrers) {
    log?.debug(`${repo}: the registry has a referrers API; ${manifestDigest} is listed through its subject`);
    return { manifestDigest };
  }
  const tag = referrersTag(subject.digest);
  const entry: Descriptor = {
    mediaType: MT.ociManifest,
    digest: manifestDigest,
    size: body.length,
    artifactType: MT_BUNDLE_V03,
    annotations,
  };
  // Read-modify-write with the same settle-and-recheck as the .sig writer (legacy.ts).
  for (let attempt = 1; ; attempt++) {
    const t0 = Date.now();
    const current = await readFallbackIndex(client, repo, subject.digest);
    if (current?.manifests.some((d) => d.digest === manifestDigest) && attempt > 1)
      return { manifestDigest, fallbackTag: tag };
    const manifests = (current?.manifests ?? []).filter((d) => d.digest !== manifestDigest);
    manifests.push(entry);
    const index = { schemaVersion: 2, mediaType: MT.ociIndex, manifests };
    await client.putManifest(repo, tag, Buffer.from(JSON.stringify(index)), MT.ociIndex);
    await sleep(Math.max(200, 2 * (Date.now() - t0)) + Math.floor(Math.random() * 100));
    const check = await readFallbackIndex(client, repo, subject.digest);
    if (check?.manifests.some((d) => d.digest === manifestDigest)) return { manifestDigest, fallbackTag: tag };
    if (attempt >= 5)
      throw new UserError(`${repo}:${tag} kept changing while adding the bundle referrer: gave up after 5 attempts`);
    log?.warning(`${repo}:${tag}: a concurrent writer dropped the bundle referrer; merging again`);
  }
}
