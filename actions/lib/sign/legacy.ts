import { Readable } from 'node:stream';
import { HttpError, UserError } from '../errors.js';
import type { Logger } from '../log.js';
import { sha256, type RegistryClient } from '../oci/client.js';
import { ImageManifestSchema, MT, type Descriptor, type ImageManifest } from '../oci/media.js';
import { sleep } from '../retry.js';
import { ANNOTATION_SIGNATURE, MT_SIMPLESIGNING } from './payload.js';

/**
 * cosign's legacy tag-based signature storage — the only format containers/image (podman,
 * skopeo, bootc, rpm-ostree) reads (reference/signing.md §1.1, §1.3):
 * an OCI image manifest under `<repo>:sha256-<hex>.sig`, one layer per signature, each layer the
 * simple-signing payload with the base64 signature in the layer annotation.
 * All registry I/O goes through the one RegistryClient.
 */

/** containers/image refuses signature bodies over 4 MiB (iolimits.MaxSignatureBodySize). */
export const MAX_SIGNATURE_BODY = 4 * 1024 * 1024;

/** `sha256:<hex>` → `sha256-<hex>.sig` */
export function sigTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

export interface SignatureLayer {
  /** Index of the layer in the `.sig` manifest. */
  index: number;
  descriptor: Descriptor;
  /** The payload bytes (the exact signed bytes), undefined when they could not be read. */
  payload?: Buffer;
  /** Why the layer could not be read. */
  error?: string;
}

export interface SignatureManifest {
  tag: string;
  /** Digest of the `.sig` manifest. */
  digest: string;
  manifest: ImageManifest;
  /** The simple-signing layers (other media types are ignored, as containers/image does). */
  layers: SignatureLayer[];
}

/** What a tag of the cosign attachment scheme holds: `.sig` signatures, `.att` attestations. */
export interface AttachmentKind {
  tag: string;
  /** Media type of the layers that count (others are ignored, as containers/image and cosign do). */
  layerMediaType: string;
  /** Layers larger than this are not read (an error on the layer instead). */
  maxLayerBytes: number;
}

/** The `.sig` attachment of `digest`: simple-signing payloads. */
export function signatureKind(digest: string): AttachmentKind {
  return { tag: sigTag(digest), layerMediaType: MT_SIMPLESIGNING, maxLayerBytes: MAX_SIGNATURE_BODY };
}

/**
 * Reads `sha256-<hex>.sig` for `digest`: undefined when the tag does not exist. A tag that holds
 * something other than an OCI image manifest is an error (containers/image fails hard on it too).
 * `withPayloads: false` skips the blob reads (the writer only needs the descriptors).
 */
export async function readSignatureManifest(
  client: RegistryClient,
  repo: string,
  digest: string,
  opts: { withPayloads?: boolean } = {},
): Promise<SignatureManifest | undefined> {
  return readAttachmentManifest(client, repo, signatureKind(digest), opts);
}

/** Reads an attachment tag (`.sig`, `.att`): undefined when it does not exist; see readSignatureManifest. */
export async function readAttachmentManifest(
  client: RegistryClient,
  repo: string,
  kind: AttachmentKind,
  opts: { withPayloads?: boolean } = {},
): Promise<SignatureManifest | undefined> {
  const tag = kind.tag;
  const head = await client.headManifest(repo, tag);
  if (!head) return undefined;
  const got = await client.getManifest(repo, head.digest, MT.ociManifest);
  if (got.mediaType !== MT.ociManifest) {
    throw new UserError(
      `unexpected media type for the signature manifest ${repo}:${tag}: ${JSON.stringify(got.mediaType)} (expected ${MT.ociManifest})`,
    );
  }
  const parsed = ImageManifestSchema.safeParse(JSON.parse(got.body.toString('utf8')));
  if (!parsed.success) throw new UserError(`the signature manifest ${repo}:${tag} is not a valid OCI image manifest`);
  const manifest = parsed.data;
  const layers: SignatureLayer[] = [];
  for (const [index, descriptor] of manifest.layers.entries()) {
    if (descriptor.mediaType !== kind.layerMediaType) continue;
    const layer: SignatureLayer = { index, descriptor };
    if (opts.withPayloads ?? true) {
      if (descriptor.size > kind.maxLayerBytes) {
        layer.error = `signature payload of ${descriptor.size} bytes exceeds the ${kind.maxLayerBytes}-byte limit`;
      } else {
        try {
          layer.payload = await client.getBlob(repo, descriptor.digest);
        } catch (e) {
          layer.error = `payload ${descriptor.digest} could not be read: ${(e as Error).message}`;
        }
      }
    }
    layers.push(layer);
  }
  return { tag, digest: got.digest, manifest, layers };
}

export interface NewSignature {
  payload: Buffer;
  /** Layer annotations: at least dev.cosignproject.cosign/signature. */
  annotations: Record<string, string>;
}

export interface WriteResult {
  tag: string;
  /** Digest of the `.sig` manifest after the write (or the existing one when nothing was added). */
  manifestDigest: string;
  added: number;
  skipped: number;
}

/** cosign's config for a signature image (content is not checked by any verifier). */
function configFor(layers: Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
}

async function putSmallBlob(
  client: RegistryClient,
  repo: string,
  bytes: Buffer,
): Promise<Descriptor & { size: number }> {
  const digest = sha256(bytes);
  await client.pushBlob(repo, { digest, size: bytes.length }, () => Readable.from([bytes]));
  return { mediaType: '', digest, size: bytes.length };
}

/**
 * Appends signature layers to `<repo>:sha256-<hex>.sig` (read-modify-write, existing layers of
 * other signers kept byte for byte). A new signature is skipped when `isDuplicate` says an
 * existing layer already carries it (same payload, verifying with the same key), which makes
 * re-signing idempotent.
 *
 * The registry API has no compare-and-swap for tags, so two signers of the same digest can
 * overwrite each other. After each write Keel waits a settle time (twice its own
 * read→write latency, at least `settleMs`), reads the tag again and re-merges any of its layers a
 * concurrent writer dropped; a writer whose stale write landed after ours is then caught by this
 * check. Still, prefer a workflow `concurrency:` group for signing jobs.
 */
export async function appendSignatures(
  client: RegistryClient,
  repo: string,
  digest: string,
  sigs: NewSignature[],
  isDuplicate: (existing: SignatureLayer, candidate: NewSignature) => boolean,
  log?: Logger,
  opts: { attempts?: number; settleMs?: number } = {},
): Promise<WriteResult> {
  return appendAttachments(client, repo, signatureKind(digest), sigs, isDuplicate, log, opts);
}

/** appendSignatures for any attachment tag (`.att` attestations use it with DSSE envelope layers). */
export async function appendAttachments(
  client: RegistryClient,
  repo: string,
  kind: AttachmentKind,
  sigs: NewSignature[],
  isDuplicate: (existing: SignatureLayer, candidate: NewSignature) => boolean,
  log?: Logger,
  opts: { attempts?: number; settleMs?: number } = {},
): Promise<WriteResult> {
  const tag = kind.tag;
  const attempts = opts.attempts ?? 5;
  const settleMs = opts.settleMs ?? 200;
  const read = () => readAttachmentManifest(client, repo, kind, { withPayloads: false });
  let t0 = Date.now();
  let current = await read();
  let pending: { sig: NewSignature; payloadDigest: string }[] = [];
  for (const sig of sigs) {
    const payloadDigest = sha256(sig.payload);
    const dup =
      (current?.layers ?? []).some(
        (l) => l.descriptor.digest === payloadDigest && isDuplicate({ ...l, payload: sig.payload }, sig),
      ) ||
      pending.some(
        (t) =>
          t.payloadDigest === payloadDigest &&
          isDuplicate({ index: -1, descriptor: descriptorOf(t, kind.layerMediaType), payload: t.sig.payload }, sig),
      );
    if (!dup) pending.push({ sig, payloadDigest });
  }
  const added = pending.length;
  const skipped = sigs.length - added;
  if (added === 0) {
    log?.debug(`${repo}:${tag}: all ${sigs.length} signature(s) already present`);
    return { tag, manifestDigest: current?.digest ?? '', added: 0, skipped };
  }
  for (let attempt = 1; ; attempt++) {
    const layers: Descriptor[] = [...(current?.manifest.layers ?? [])];
    for (const t of pending) {
      await putSmallBlob(client, repo, t.sig.payload);
      layers.push(descriptorOf(t, kind.layerMediaType));
    }
    const c = await putSmallBlob(client, repo, configFor(layers));
    const manifest = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: c.digest, size: c.size },
      layers,
      ...(current?.manifest.annotations ? { annotations: current.manifest.annotations } : {}),
    };
    try {
      await client.putManifest(repo, tag, Buffer.from(JSON.stringify(manifest)), MT.ociManifest);
    } catch (e) {
      // A concurrent upload of the same payload blob can leave it briefly unknown to the registry.
      if (!(e instanceof HttpError && /BLOB_UNKNOWN/.test(e.message)) || attempt >= attempts) throw e;
      log?.warning(`${repo}:${tag}: ${e.message}; uploading again (attempt ${attempt + 1}/${attempts})`);
      await sleep(settleMs + Math.floor(Math.random() * 100));
      t0 = Date.now();
      current = await read();
      continue;
    }
    const latency = Date.now() - t0;
    await sleep(Math.max(settleMs, 2 * latency) + Math.floor(Math.random() * 100));
    t0 = Date.now();
    current = await read();
    const present = (t: { sig: NewSignature; payloadDigest: string }) =>
      (current?.layers ?? []).some(
        (l) =>
          l.descriptor.digest === t.payloadDigest &&
          l.descriptor.annotations?.[ANNOTATION_SIGNATURE] === t.sig.annotations[ANNOTATION_SIGNATURE],
      );
    pending = pending.filter((t) => !present(t));
    if (pending.length === 0 && current) return { tag, manifestDigest: current.digest, added, skipped };
    if (attempt >= attempts) {
      throw new UserError(
        `${repo}:${tag} kept changing while signing (another signer is writing it): gave up after ${attempts} attempts`,
      );
    }
    log?.warning(
      `${repo}:${tag}: a concurrent writer dropped ${pending.length} new signature(s); merging again (attempt ${attempt + 1}/${attempts})`,
    );
  }
}

function descriptorOf(t: { sig: NewSignature; payloadDigest: string }, mediaType: string): Descriptor {
  return {
    mediaType,
    size: t.sig.payload.length,
    digest: t.payloadDigest,
    annotations: t.sig.annotations,
  };
}
