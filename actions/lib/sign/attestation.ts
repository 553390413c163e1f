import crypto from 'node:crypto';
import type { Logger } from '../log.js';
import type { RegistryClient } from '../oci/client.js';
import type { ImageReference } from '../oci/reference.js';
import { pae, PAYLOAD_TYPE_INTOTO } from './bundle.js';
import { signBytes, verifyBytes } from './keys.js';
import { appendAttachments, readAttachmentManifest, type AttachmentKind } from './legacy.js';
import { ANNOTATION_SIGNATURE, strictJson } from './payload.js';

/**
 * Signed attestations in cosign's tag-based format, the one `cosign verify-attestation --key`
 * (2.x, and 3.x through its fallback) reads: an OCI image manifest under `<repo>:sha256-<hex>.att`,
 * one layer per attestation. Each layer is a DSSE envelope (media type
 * application/vnd.dsse.envelope.v1+json) whose payload is an in-toto Statement about the
 * image digest, signed (ECDSA P-256/SHA-256 over the DSSE PAE) with the same key as the image;
 * the layer carries the `predicateType` annotation and an empty cosign signature annotation,
 * exactly as cosign writes them.
 */

export const MT_DSSE = 'application/vnd.dsse.envelope.v1+json';
export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
/** Envelopes larger than this are not read (cosign's own limit is larger; SBOMs are MiBs). */
export const MAX_ENVELOPE_BYTES = 64 * 1024 * 1024;

/** cosign's `--type` names → predicate type URIs (cosign pkg/cosign/attestation). */
export const PREDICATE_TYPES: Readonly<Record<string, string>> = {
  cyclonedx: 'https://cyclonedx.org/bom',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  link: 'https://in-toto.io/Link/v1',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
  custom: 'https://cosign.sigstore.dev/attestation/v1',
};

/** A type as users write it (a cosign name or a URI) → the predicate type URI, or undefined. */
export function predicateTypeOf(type: string): string | undefined {
  if (Object.hasOwn(PREDICATE_TYPES, type)) return PREDICATE_TYPES[type];
  return /^https?:\/\/[^\s"]+$/.test(type) ? type : undefined;
}

/** `sha256:<hex>` → `sha256-<hex>.att` */
export function attTag(digest: string): string {
  return `${digest.replace(':', '-')}.att`;
}

export function attestationKind(digest: string): AttachmentKind {
  return { tag: attTag(digest), layerMediaType: MT_DSSE, maxLayerBytes: MAX_ENVELOPE_BYTES };
}

/** The in-toto Statement v1 about `digest` (subject name: the repository, as cosign writes it). */
export function buildStatement(repository: string, digest: string, predicateType: string, predicate: unknown): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: STATEMENT_V1,
      subject: [{ name: repository, digest: { sha256: digest.replace(/^sha256:/, '') } }],
      predicateType,
      predicate,
    }),
  );
}

/** A DSSE envelope of `statement`, signed with `key` (keyid empty, as cosign writes it). */
export function signEnvelope(statement: Buffer, key: crypto.KeyObject): Buffer {
  const sig = signBytes(key, pae(PAYLOAD_TYPE_INTOTO, statement));
  return Buffer.from(
    JSON.stringify({
      payloadType: PAYLOAD_TYPE_INTOTO,
      payload: statement.toString('base64'),
      signatures: [{ keyid: '', sig: sig.toString('base64') }],
    }),
  );
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface EnvelopeCheck {
  accepted: boolean;
  /** Why it was rejected ('' when accepted). */
  reason: string;
  predicateType?: string;
  /** The signed statement bytes, once the signature verified. */
  statement?: Buffer;
}

/**
 * Checks one DSSE envelope the way cosign verify-attestation does: an in-toto payload, a
 * signature over the PAE that verifies with `key`, a Statement whose subject names `digest`.
 */
export function checkEnvelope(envelope: Buffer, key: crypto.KeyObject, digest: string): EnvelopeCheck {
  const no = (reason: string): EnvelopeCheck => ({ accepted: false, reason });
  let env: { payloadType?: unknown; payload?: unknown; signatures?: unknown };
  try {
    env = strictJson(envelope.toString('utf8')) as typeof env;
  } catch (e) {
    return no(`the envelope is not valid JSON: ${(e as Error).message}`);
  }
  if (env.payloadType !== PAYLOAD_TYPE_INTOTO)
    return no(`unexpected DSSE payload type ${JSON.stringify(env.payloadType)}`);
  if (typeof env.payload !== 'string' || !B64.test(env.payload)) return no('the DSSE payload is not base64');
  if (!Array.isArray(env.signatures)) return no('the envelope has no signatures');
  const statement = Buffer.from(env.payload, 'base64');
  const signed = pae(PAYLOAD_TYPE_INTOTO, statement);
  const ok = (env.signatures as { sig?: unknown }[]).some(
    (s) => typeof s?.sig === 'string' && B64.test(s.sig) && verifyBytes(key, signed, Buffer.from(s.sig, 'base64')),
  );
  if (!ok)
    return no('cryptographic signature verification failed (the DSSE signature does not verify with the public key)');
  let st: { _type?: unknown; predicateType?: unknown; subject?: unknown };
  try {
    st = strictJson(statement.toString('utf8')) as typeof st;
  } catch (e) {
    return no(`the signed statement is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof st._type !== 'string' || !st._type.startsWith('https://in-toto.io/Statement/'))
    return no('the signed payload is not an in-toto statement');
  if (typeof st.predicateType !== 'string') return no('the statement has no predicateType');
  const hex = digest.replace(/^sha256:/, '');
  const subjects = Array.isArray(st.subject) ? (st.subject as { digest?: { sha256?: unknown } }[]) : [];
  if (!subjects.some((s) => s?.digest?.sha256 === hex))
    return no(`the statement is not about ${digest} (its subject names another artifact)`);
  return { accepted: true, reason: '', predicateType: st.predicateType, statement };
}

export interface NewAttestation {
  predicateType: string;
  statement: Buffer;
}

export interface AttachResult {
  /** `registry/repo:sha256-<hex>.att` */
  ref: string;
  added: number;
  skipped: number;
}

/**
 * Adds attestations to `<repo>:sha256-<hex>.att` (read-modify-write, other layers kept). An
 * attestation whose statement is already there, signed by the same key, is not written again:
 * re-running a release signs nothing twice.
 */
export async function attachAttestations(
  client: RegistryClient,
  ref: ImageReference,
  items: NewAttestation[],
  key: { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject },
  log?: Logger,
): Promise<AttachResult> {
  const kind = attestationKind(ref.digest!);
  const have = await verifiedStatements(client, ref, key.publicKey);
  const todo = items.filter((it) => !have.some((s) => s.equals(it.statement)));
  const sigs = todo.map((it) => ({
    payload: signEnvelope(it.statement, key.privateKey),
    annotations: { [ANNOTATION_SIGNATURE]: '', predicateType: it.predicateType },
  }));
  const r = sigs.length
    ? await appendAttachments(client, ref.repository, kind, sigs, () => false, log)
    : { tag: kind.tag, added: 0, skipped: 0 };
  return { ref: `${ref.name}:${r.tag}`, added: r.added, skipped: items.length - todo.length };
}

/** The statements of `ref`'s `.att` attestations that verify with `key` (about its digest). */
export async function verifiedStatements(
  client: RegistryClient,
  ref: ImageReference,
  key: crypto.KeyObject,
): Promise<Buffer[]> {
  const sm = await readAttachmentManifest(client, ref.repository, attestationKind(ref.digest!));
  return (sm?.layers ?? [])
    .map((l) => (l.payload ? checkEnvelope(l.payload, key, ref.digest!) : undefined))
    .filter((c) => c?.accepted)
    .map((c) => c!.statement!);
}

export interface TypeVerification {
  type: string;
  predicateType: string;
  verified: boolean;
  /** How many attestations of this type verified. */
  accepted: number;
  reason: string;
}

export interface AttestationVerification {
  verified: boolean;
  reason: string;
  types: TypeVerification[];
}

/**
 * Requires, for each type, at least one attestation about `ref`'s digest that verifies with
 * `key`. Never throws for "missing / not verified"; throws for registry failures only.
 */
export async function verifyAttestations(
  client: RegistryClient,
  ref: ImageReference,
  key: crypto.KeyObject,
  types: string[],
): Promise<AttestationVerification> {
  const digest = ref.digest!;
  const sm = await readAttachmentManifest(client, ref.repository, attestationKind(digest));
  const checks = (sm?.layers ?? []).map((l) =>
    l.payload ? checkEnvelope(l.payload, key, digest) : { accepted: false, reason: l.error ?? 'unreadable layer' },
  );
  const out: TypeVerification[] = types.map((type) => {
    const predicateType = predicateTypeOf(type) ?? type;
    const accepted = checks.filter((c) => c.accepted && c.predicateType === predicateType).length;
    const rejected = checks.filter((c) => !c.accepted).map((c) => c.reason);
    const reason = accepted
      ? `${accepted} attestation(s) of type ${predicateType} verified`
      : !sm
        ? `no attestations exist for ${digest} (${ref.name}:${attTag(digest)})`
        : `none of the attestations matched the predicate type ${predicateType}${rejected.length ? ` (rejected: ${[...new Set(rejected)].join('; ')})` : ''}`;
    return { type, predicateType, verified: accepted > 0, accepted, reason };
  });
  const bad = out.find((t) => !t.verified);
  return {
    verified: !bad,
    reason: bad ? `${bad.type}: ${bad.reason}` : out.map((t) => `${t.type}: ${t.reason}`).join('; '),
    types: out,
  };
}
