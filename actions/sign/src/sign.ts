import crypto from 'node:crypto';
import type { Signer } from '@sigstore/sign';
import type { Logger } from '../../lib/log.js';
import { sha256, type RegistryClient } from '../../lib/oci/client.js';
import { IndexSchema, isIndexType } from '../../lib/oci/media.js';
import type { ImageReference } from '../../lib/oci/reference.js';
import { bundleCertificateKey, checkBundle, fetchBundles, pushBundleReferrer } from '../../lib/sign/bundle.js';
import { MATCH_REPOSITORY } from '../../lib/sign/identity.js';
import { keyId, signBytes, spkiPem, verifyBytes } from '../../lib/sign/keys.js';
import type { KeylessSigner } from '../../lib/sign/keyless.js';
import {
  appendSignatures,
  readSignatureManifest,
  sigTag,
  type NewSignature,
  type SignatureLayer,
} from '../../lib/sign/legacy.js';
import { ANNOTATION_CERTIFICATE, ANNOTATION_SIGNATURE, buildPayload } from '../../lib/sign/payload.js';
import { checkLegacyLayer, verifyImage, type VerifyFormat, type VerifyResult } from '../../lib/sign/verify.js';
import { InputError } from '../../lib/errors.js';
import { tagProblem } from '../../lib/tags.js';

/**
 * Signing logic of the `sign` hop (no @actions/* imports): what to sign (the digest and, for an
 * index, every child manifest), one payload per identity, written as cosign legacy `.sig`
 * layers and/or cosign-3 bundle referrers, key-based and/or keyless. Idempotent: an existing
 * signature with the same payload by the same key (or keyless identity) is not written again.
 */

export interface KeyMaterial {
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
}

export interface SignRequest {
  ref: ImageReference;
  /** docker-reference values to sign (repo-only and/or repo:tag). */
  identities: string[];
  legacy: boolean;
  bundle: boolean;
  key?: KeyMaterial;
  keyless?: KeylessSigner;
}

export interface Target {
  digest: string;
  mediaType: string;
  size: number;
  platform?: string;
}

export interface Written {
  digest: string;
  format: 'legacy' | 'bundle';
  mode: 'key' | 'keyless';
  /** `repo:sha256-<hex>.sig` or `repo@<referrer manifest digest>`. */
  ref: string;
  added: number;
  skipped: number;
}

/** The manifest and, for an index, each child (nested indexes followed). */
export async function collectTargets(client: RegistryClient, ref: ImageReference): Promise<Target[]> {
  const out: Target[] = [];
  const seen = new Set<string>();
  const visit = async (digest: string, platform?: string) => {
    if (seen.has(digest)) return;
    seen.add(digest);
    const m = await client.getManifest(ref.repository, digest);
    out.push({ digest, mediaType: m.mediaType, size: m.body.length, platform });
    if (isIndexType(m.mediaType)) {
      const idx = IndexSchema.parse(JSON.parse(m.body.toString('utf8')));
      for (const c of idx.manifests) {
        const p = c.platform;
        await visit(c.digest, p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : undefined);
      }
    }
  };
  await visit(ref.digest!);
  return out;
}

/** A @sigstore/sign Signer over the decrypted key (bundle format, key mode). */
export function keySigner(key: KeyMaterial): Signer {
  const pem = spkiPem(key.publicKey);
  const hint = keyId(key.publicKey).hint;
  return {
    sign: async (data: Buffer) => ({
      signature: signBytes(key.privateKey, data),
      key: { $case: 'publicKey', publicKey: pem, hint },
    }),
  };
}

function certOf(annotations: Record<string, string> | undefined): crypto.X509Certificate | undefined {
  const pem = annotations?.[ANNOTATION_CERTIFICATE];
  if (!pem) return undefined;
  try {
    return new crypto.X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function layerVerifiesWith(layer: SignatureLayer, key: crypto.KeyObject): boolean {
  const b64 = layer.descriptor.annotations?.[ANNOTATION_SIGNATURE];
  return !!layer.payload && !!b64 && verifyBytes(key, layer.payload, Buffer.from(b64, 'base64'));
}

/** Same payload (the caller guarantees it) signed by the same key. */
const sameKey = (key: crypto.KeyObject) => (existing: SignatureLayer) =>
  !existing.descriptor.annotations?.[ANNOTATION_CERTIFICATE] && layerVerifiesWith(existing, key);

/** Same payload signed keylessly by the same identity (certificate SAN and issuer). */
const sameKeylessIdentity = (existing: SignatureLayer, candidate: NewSignature) => {
  const a = certOf(existing.descriptor.annotations);
  const b = certOf(candidate.annotations);
  return (
    !!a &&
    !!b &&
    a.subjectAltName === b.subjectAltName &&
    a.issuer === b.issuer &&
    layerVerifiesWith(existing, a.publicKey)
  );
};

export async function signImage(
  client: RegistryClient,
  req: SignRequest,
  log: Logger,
): Promise<{ targets: Target[]; written: Written[] }> {
  const repo = req.ref.repository;
  // @sigstore/sign is loaded only when a bundle is written (legacy key signing does not need it).
  const createBundle = req.bundle ? (await import('../../lib/sign/bundle-sign.js')).createBundle : undefined;
  const targets = await collectTargets(client, req.ref);
  if (targets.length > 1)
    log.info(`${req.ref.toString()} is an index: signing it and its ${targets.length - 1} child manifest(s)`);
  const written: Written[] = [];
  for (const t of targets) {
    const payloads = req.identities.map((id) => buildPayload(id, t.digest));
    if (req.legacy && req.key) {
      const key = req.key;
      const sigs = payloads.map((payload) => ({
        payload,
        annotations: { [ANNOTATION_SIGNATURE]: signBytes(key.privateKey, payload).toString('base64') },
      }));
      const r = await appendSignatures(client, repo, t.digest, sigs, sameKey(key.publicKey), log);
      written.push({
        digest: t.digest,
        format: 'legacy',
        mode: 'key',
        ref: `${req.ref.name}:${r.tag}`,
        added: r.added,
        skipped: r.skipped,
      });
    }
    if (req.legacy && req.keyless) {
      // Skip payloads this identity already signed before asking Rekor for a new entry.
      const mineCert = { [ANNOTATION_CERTIFICATE]: await req.keyless.ensureCertificate() };
      const current = await readSignatureManifest(client, repo, t.digest, { withPayloads: false });
      const todo = payloads.filter(
        (payload) =>
          !(current?.layers ?? []).some(
            (l) =>
              l.descriptor.digest === sha256(payload) &&
              sameKeylessIdentity({ ...l, payload }, { payload, annotations: mineCert }),
          ),
      );
      const sigs: NewSignature[] = [];
      for (const payload of todo) sigs.push({ payload, annotations: await req.keyless.legacyAnnotations(payload) });
      const r = sigs.length
        ? await appendSignatures(client, repo, t.digest, sigs, sameKeylessIdentity, log)
        : { tag: sigTag(t.digest), added: 0, skipped: 0 };
      written.push({
        digest: t.digest,
        format: 'legacy',
        mode: 'keyless',
        ref: `${req.ref.name}:${r.tag}`,
        added: r.added,
        skipped: r.skipped + payloads.length - todo.length,
      });
    }
    if (req.bundle) {
      const existing = await fetchBundles(client, repo, t.digest);
      const subject = { digest: t.digest, mediaType: t.mediaType, size: t.size };
      if (req.key) {
        const have = existing.find((b) => b.bundle && !checkBundle(b.bundle, t.digest, req.key!.publicKey));
        if (have) {
          written.push({
            digest: t.digest,
            format: 'bundle',
            mode: 'key',
            ref: `${req.ref.name}@${have.ref.descriptor.digest}`,
            added: 0,
            skipped: 1,
          });
        } else {
          const bundle = await createBundle!(keySigner(req.key), [], t.digest);
          const p = await pushBundleReferrer(client, repo, subject, bundle, log);
          written.push({
            digest: t.digest,
            format: 'bundle',
            mode: 'key',
            ref: `${req.ref.name}@${p.manifestDigest}`,
            added: 1,
            skipped: 0,
          });
        }
      }
      if (req.keyless) {
        await req.keyless.ensureCertificate();
        const mine = req.keyless.identity;
        const have = existing.find((b) => {
          if (!b.bundle) return false;
          const k = bundleCertificateKey(b.bundle);
          const cert = certFromBundle(b.bundle);
          return !!k && !!cert && cert.subjectAltName === mine && !checkBundle(b.bundle, t.digest, k);
        });
        if (have) {
          written.push({
            digest: t.digest,
            format: 'bundle',
            mode: 'keyless',
            ref: `${req.ref.name}@${have.ref.descriptor.digest}`,
            added: 0,
            skipped: 1,
          });
        } else {
          const bundle = await createBundle!(req.keyless.signer, req.keyless.witnesses, t.digest);
          const p = await pushBundleReferrer(client, repo, subject, bundle, log);
          written.push({
            digest: t.digest,
            format: 'bundle',
            mode: 'keyless',
            ref: `${req.ref.name}@${p.manifestDigest}`,
            added: 1,
            skipped: 0,
          });
        }
      }
    }
  }
  return { targets, written };
}

function certFromBundle(bundle: Buffer): crypto.X509Certificate | undefined {
  try {
    const j = JSON.parse(bundle.toString('utf8')) as { verificationMaterial?: { certificate?: { rawBytes?: string } } };
    const raw = j.verificationMaterial?.certificate?.rawBytes;
    return raw ? new crypto.X509Certificate(Buffer.from(raw, 'base64')) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads back what keyless signing wrote and checks each signature against its own certificate
 * (payload rules and digest included). This proves the bytes in the registry are intact; trust
 * in the certificate itself is the verifier's business (cosign --certificate-identity …).
 */
export async function checkKeylessWritten(
  client: RegistryClient,
  ref: ImageReference,
  targets: Target[],
  identity: string,
  formats: { legacy: boolean; bundle: boolean },
): Promise<{ ok: boolean; reason: string }> {
  for (const t of targets) {
    if (formats.legacy) {
      const sm = await readSignatureManifest(client, ref.repository, t.digest);
      const mine = (sm?.layers ?? []).filter((l) => certOf(l.descriptor.annotations)?.subjectAltName === identity);
      const ok = mine.some(
        (l) =>
          checkLegacyLayer(l, certOf(l.descriptor.annotations)!.publicKey, t.digest, ref, MATCH_REPOSITORY).accepted,
      );
      if (!ok) return { ok: false, reason: `no keyless signature by ${identity} verifies for ${t.digest}` };
    }
    if (formats.bundle) {
      const ok = (await fetchBundles(client, ref.repository, t.digest)).some((b) => {
        const k = b.bundle && bundleCertificateKey(b.bundle);
        return !!k && certFromBundle(b.bundle!)?.subjectAltName === identity && !checkBundle(b.bundle!, t.digest, k);
      });
      if (!ok) return { ok: false, reason: `no keyless bundle by ${identity} verifies for ${t.digest}` };
    }
  }
  return { ok: true, reason: `keyless signatures by ${identity} read back and verified against their certificate` };
}

/** A `tags` list item: a bare tag or registry/repo:tag. */
export function tagItemProblem(s: string): string | undefined {
  const tag = s.includes(':') ? s.slice(s.lastIndexOf(':') + 1) : s;
  if (s.includes('@')) return 'a tag, not a digest';
  return tagProblem(tag);
}

/** Tag entries may be bare tags or repo:tag references; the latter must name the signed repository. */
export function tagsOf(entries: string[], repoName: string): string[] {
  const out: string[] = [];
  for (const e of entries) {
    const i = e.lastIndexOf(':');
    const slash = e.lastIndexOf('/');
    if (i > slash && slash >= 0) {
      const repo = e.slice(0, i);
      if (repo !== repoName) throw new InputError('tags', e, `names repository ${repo}, but image-ref is ${repoName}`);
      out.push(e.slice(i + 1));
    } else out.push(e);
  }
  return [...new Set(out)];
}

/**
 * The self-check after signing: reads the signatures back and verifies them with `key` (the
 * given public-key, else the private key's own public half) by the client rules (per tag with
 * c/image's default rule when signing tag identities, else matchRepository), and checks keyless
 * signatures against their certificates.
 */
export async function verifyWritten(
  client: RegistryClient,
  ref: ImageReference,
  targets: Target[],
  opts: {
    key?: crypto.KeyObject;
    keyName: string;
    tags?: string[];
    format: VerifyFormat;
    keyless?: KeylessSigner;
    log: Logger;
  },
): Promise<{ ok: boolean; reason: string }> {
  const reasons: string[] = [];
  if (opts.key) {
    const rs: VerifyResult[] = [];
    if (opts.tags) {
      for (const tag of opts.tags) {
        rs.push(
          await verifyImage(client, ref, opts.key, {
            identity: { type: 'matchRepoDigestOrExact' },
            tag,
            format: opts.format,
            log: opts.log,
          }),
        );
      }
    } else {
      rs.push(await verifyImage(client, ref, opts.key, { format: opts.format, log: opts.log }));
    }
    const bad = rs.find((r) => !r.verified);
    if (bad) return { ok: false, reason: bad.reason };
    reasons.push(`${opts.keyName}: ${rs[0]!.reason}`);
  }
  if (opts.keyless) {
    const formats = { legacy: opts.format !== 'bundle', bundle: opts.format !== 'legacy' };
    const r = await checkKeylessWritten(client, ref, targets, opts.keyless.identity ?? '', formats);
    if (!r.ok) return r;
    reasons.push(r.reason);
  }
  return { ok: true, reason: reasons.join('; ') };
}
