import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { errorMessage, InputError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { RegistryClient } from '../../lib/oci/client.js';
import { ImageConfigSchema, ImageManifestSchema, IndexSchema, isIndexType } from '../../lib/oci/media.js';
import type { ImageReference } from '../../lib/oci/reference.js';
import {
  attachAttestations,
  buildStatement,
  predicateTypeOf,
  verifiedStatements,
  verifyAttestations,
  type AttestationVerification,
} from '../../lib/sign/attestation.js';
import type { KeyMaterial } from './sign.js';

/**
 * The attestation side of `sign`: `attestations` lines (TYPE=PATH) read and checked before
 * anything is written, SLSA provenance, the statements attached under `sha256-<hex>.att`
 * and read back through the same verifier `verify` uses.
 */
export interface AttestationFile {
  /** As written in the input (cosign name or URI). */
  type: string;
  predicateType: string;
  path: string;
  predicate: unknown;
}

/** Attestation predicates above this size are refused (a distro SBOM is a few MiB). */
const MAX_PREDICATE_BYTES = 32 * 1024 * 1024;

/** The problem with one `attestations` line, or undefined. */
export function attestationLineProblem(line: string): string | undefined {
  const i = line.indexOf('=');
  if (i <= 0) return 'expected TYPE=PATH';
  const type = line.slice(0, i).trim();
  if (!predicateTypeOf(type))
    return `TYPE ${JSON.stringify(type)} is neither cyclonedx, spdxjson, slsaprovenance1 (or another cosign --type) nor a predicate-type URI`;
  if (!line.slice(i + 1).trim()) return 'the PATH is empty';
  return undefined;
}

/** Reads each TYPE=PATH file (relative to the workspace) as a JSON predicate; InputError when it cannot. */
export function readAttestationFiles(lines: string[], workspace: string): AttestationFile[] {
  return lines.map((line) => {
    const i = line.indexOf('=');
    const type = line.slice(0, i).trim();
    const p = path.resolve(workspace, line.slice(i + 1).trim());
    const fail = (problem: string) => new InputError('attestations', line, problem);
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw fail(`${p} does not exist`);
    }
    if (!st.isFile()) throw fail(`${p} is not a file`);
    if (st.size > MAX_PREDICATE_BYTES) throw fail(`${p} is larger than ${MAX_PREDICATE_BYTES} bytes`);
    let predicate: unknown;
    try {
      predicate = JSON.parse(fs.readFileSync(p, 'utf8'));
    } catch (e) {
      throw fail(`${p} is not JSON (an attestation predicate is a JSON document): ${errorMessage(e)}`);
    }
    if (predicate === null || typeof predicate !== 'object' || Array.isArray(predicate))
      throw fail(`${p} is not a JSON object`);
    return { type, predicateType: predicateTypeOf(type)!, path: p, predicate };
  });
}

/** The image's labels (for an index: its first manifest's), to read base.name / base.digest. */
export async function imageLabels(client: RegistryClient, ref: ImageReference): Promise<Record<string, string>> {
  let m = await client.getManifest(ref.repository, ref.digest!);
  if (isIndexType(m.mediaType)) {
    const first = IndexSchema.parse(JSON.parse(m.body.toString('utf8'))).manifests[0];
    if (!first) return {};
    m = await client.getManifest(ref.repository, first.digest);
  }
  const manifest = ImageManifestSchema.parse(JSON.parse(m.body.toString('utf8')));
  const config = ImageConfigSchema.parse(
    JSON.parse((await client.getBlob(ref.repository, manifest.config.digest)).toString()),
  );
  return { ...(config.config?.Labels ?? {}) };
}

export function sha256OfFile(p: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

export interface AttestResult {
  ref: string;
  added: number;
  skipped: number;
  verification: AttestationVerification;
}

/**
 * Attaches one statement per predicate about `ref`'s digest, then reads them back and checks
 * each type with `verifyKey` (the given public key, else the private key's own half).
 */
export async function attestImage(
  client: RegistryClient,
  ref: ImageReference,
  predicates: { type: string; predicateType: string; predicate: unknown }[],
  key: KeyMaterial,
  verifyKey: crypto.KeyObject,
  log: Logger,
): Promise<AttestResult> {
  const items = predicates.map((p) => ({
    predicateType: p.predicateType,
    statement: buildStatement(ref.name, ref.digest!, p.predicateType, p.predicate),
  }));
  const written = await attachAttestations(client, ref, items, key, log);
  const verification = await verifyAttestations(
    client,
    ref,
    verifyKey,
    predicates.map((p) => p.type),
  );
  // Each statement just written (or found) must be there, intact and signed by verifyKey.
  const present = await verifiedStatements(client, ref, verifyKey);
  const missing = items.filter((it) => !present.some((s) => s.equals(it.statement)));
  if (verification.verified && missing.length) {
    const types = missing.map((m) => m.predicateType).join(', ');
    return {
      ...written,
      verification: {
        ...verification,
        verified: false,
        reason: `the ${types} statement(s) just written do not verify`,
      },
    };
  }
  return { ...written, verification };
}
