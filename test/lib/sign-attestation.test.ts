// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { slsaProvenance } from '../../actions/sign/src/provenance.js';
import { contextFromEnv } from '../../actions/lib/context.js';
import {
  attTag,
  buildStatement,
  checkEnvelope,
  predicateTypeOf,
  signEnvelope,
} from '../../actions/lib/sign/attestation.js';
import { verifyFileSignature, writeFileSignature } from '../../actions/lib/sign/blob.js';

const D = `sha256:${'a'.repeat(64)}`;
const pair = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });

describe('attestation envelopes', () => {
  const key = pair();
  const statement = buildStatement('reg/distro/os', D, 'https://cyclonedx.org/bom', { bomFormat: 'CycloneDX' });

  it('maps cosign type names and accepts URIs', () => {
    expect(predicateTypeOf('cyclonedx')).toBe('https://cyclonedx.org/bom');
    expect(predicateTypeOf('spdxjson')).toBe('https://spdx.dev/Document');
    expect(predicateTypeOf('slsaprovenance1')).toBe('https://slsa.dev/provenance/v1');
    expect(predicateTypeOf('https://example.com/p/v1')).toBe('https://example.com/p/v1');
    expect(predicateTypeOf('sbom')).toBeUndefined();
    expect(predicateTypeOf('toString')).toBeUndefined();
    expect(attTag(D)).toBe(`sha256-${'a'.repeat(64)}.att`);
  });

  it('accepts its own envelope and gives back the statement and predicate type', () => {
    const r = checkEnvelope(signEnvelope(statement, key.privateKey), key.publicKey, D);
    expect(r).toMatchObject({ accepted: true, predicateType: 'https://cyclonedx.org/bom' });
    expect(r.statement?.equals(statement)).toBe(true);
  });

  it('rejects a wrong key, a changed statement, another digest and duplicate JSON keys', () => {
    const env = signEnvelope(statement, key.privateKey);
    expect(checkEnvelope(env, pair().publicKey, D).reason).toMatch(/signature verification failed/);
    const j = JSON.parse(env.toString());
    j.payload = Buffer.from(statement.toString().replace('CycloneDX', 'Evil')).toString('base64');
    expect(checkEnvelope(Buffer.from(JSON.stringify(j)), key.publicKey, D).reason).toMatch(
      /signature verification failed/,
    );
    expect(checkEnvelope(env, key.publicKey, `sha256:${'b'.repeat(64)}`).reason).toMatch(/not about sha256:b/);
    const dup = env.toString().replace('{"payloadType"', '{"payloadType":"x","payloadType"');
    expect(checkEnvelope(Buffer.from(dup), key.publicKey, D).reason).toMatch(/Duplicate key "payloadType"/);
  });
});

describe('SLSA provenance', () => {
  it('outside GitHub Actions it says it is a local run instead of inventing a workflow', () => {
    const p = slsaProvenance({ context: { ...contextFromEnv({}), runId: '' }, labels: {} }) as {
      runDetails: { builder: { id: string } };
      buildDefinition: { resolvedDependencies: unknown[] };
    };
    expect(p.runDetails.builder.id).toBe('urn:keel:local-run');
    expect(p.buildDefinition.resolvedDependencies).toEqual([]);
  });
  it('ignores a base digest label that is not a sha256 digest', () => {
    const p = slsaProvenance({
      context: contextFromEnv({}),
      labels: { 'org.opencontainers.image.base.digest': 'latest' },
    }) as { buildDefinition: { resolvedDependencies: unknown[] } };
    expect(p.buildDefinition.resolvedDependencies).toEqual([]);
  });
});

describe('file signatures', () => {
  it('writes <file>.sig that verifies, and not once the file changes or with another key', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-blob-'));
    const file = path.join(dir, 'SHA256SUMS');
    fs.writeFileSync(file, 'abc  x.iso\n');
    const key = pair();
    const sig = await writeFileSignature(file, key.privateKey);
    expect(sig).toBe(`${file}.sig`);
    const b64 = fs.readFileSync(sig, 'utf8');
    expect(await verifyFileSignature(file, b64, key.publicKey)).toBe(true);
    expect(await verifyFileSignature(file, b64, pair().publicKey)).toBe(false);
    fs.appendFileSync(file, 'def  y.iso\n');
    expect(await verifyFileSignature(file, b64, key.publicKey)).toBe(false);
    expect(fs.readdirSync(dir).sort()).toEqual(['SHA256SUMS', 'SHA256SUMS.sig']);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
