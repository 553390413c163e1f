// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../actions/lib/log.js';
import { MT } from '../../actions/lib/oci/media.js';
import type { RegistryClient } from '../../actions/lib/oci/client.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { connect } from '../../actions/lib/registry.js';
import { renderClientConfig } from '../../actions/lib/sign/client-config.js';
import { appendSignatures, sigTag } from '../../actions/lib/sign/legacy.js';
import { ANNOTATION_SIGNATURE, buildPayload } from '../../actions/lib/sign/payload.js';
import type { DigestVerification } from '../../actions/lib/sign/verify.js';
import { signImage } from '../../actions/sign/src/sign.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { makeOciImage, skopeoPush, tmpdir } from '../harness/tools.js';
import { fetchVerifiers, skopeoPolicyCopy, type Verifiers } from '../harness/verifiers.js';

/**
 * The bundled `verify` action against a real registry. Each rejection is also checked with the
 * real containers/image (skopeo 1.18) under the client policy Keel generates: both must say no.
 */
describe('verify (bundled, real registry)', () => {
  let reg: Registry;
  let proxy: FaultProxy;
  let v: Verifiers;
  let dir: string;
  let client: RegistryClient;
  let repo: string;
  const good = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const goodPem = good.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const otherPem = other.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  let goodPath: string;
  let otherPath: string;
  let signed: string;
  let tagSigned: string;
  let unsigned: string;

  const push = (tag: string) => skopeoPush(`oci:${makeOciImage(path.join(dir, tag)).dir}:latest`, `${repo}:${tag}`);
  const verify = (inputs: Record<string, string>) =>
    runAction({ action: 'verify', inputs: { 'tls-verify': 'false', 'public-key': goodPem, ...inputs } });
  /** skopeo 1.18 under Keel's client policy for `keyPath`: accepted? */
  const skopeoAccepts = (image: string, keyPath: string) => {
    const cfg = renderClientConfig({ image: repo, keyPath });
    const p = path.join(dir, `policy-${crypto.randomUUID()}.json`);
    fs.writeFileSync(p, JSON.stringify(cfg.policy));
    const rd = path.join(dir, 'rd');
    fs.mkdirSync(rd, { recursive: true });
    fs.writeFileSync(path.join(rd, 'k.yaml'), cfg.registriesD);
    return skopeoPolicyCopy(v.skopeo, { policy: p, registriesD: rd, image, dest: path.join(dir, 'out') }).ok;
  };
  const key = { privateKey: good.privateKey, publicKey: good.publicKey };

  beforeAll(async () => {
    v = fetchVerifiers();
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    dir = tmpdir('keel-verify-action-');
    repo = `${reg.host}/distro/os`;
    goodPath = path.join(dir, 'good.pub');
    otherPath = path.join(dir, 'other.pub');
    fs.writeFileSync(goodPath, goodPem);
    fs.writeFileSync(otherPath, otherPem);
    client = connect(parseReference(`${repo}:x`), { 'tls-verify': false }, silentLogger);
    signed = push('signed');
    tagSigned = push('v7');
    unsigned = push('unsigned');
    await signImage(
      client,
      { ref: parseReference(`${repo}@${signed}`), identities: [repo], legacy: true, bundle: false, key },
      silentLogger,
    );
    await signImage(
      client,
      { ref: parseReference(`${repo}@${tagSigned}`), identities: [`${repo}:v7`], legacy: true, bundle: false, key },
      silentLogger,
    );
  }, 600_000);

  afterAll(async () => {
    await proxy?.close();
    await reg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('verified: outputs verified=true, the reason and per-digest details; the key may be a path or PEM contents', async () => {
    for (const k of [goodPem, goodPath]) {
      const r = await verify({ 'image-ref': `${repo}@${signed}`, 'public-key': k });
      expect(errors(r)).toEqual([]);
      expect(r.code).toBe(0);
      expect(r.outputs.verified).toBe('true');
      expect(r.outputs.reason).toBe('1 legacy signature(s) accepted');
      const details = JSON.parse(r.outputs.details!) as DigestVerification[];
      expect(details[0]).toMatchObject({
        digest: signed,
        verified: true,
        checks: [{ format: 'legacy', accepted: true, dockerReference: repo }],
      });
      expect(r.summary).toContain('### verify');
    }
    expect(skopeoAccepts(`${repo}:signed`, goodPath)).toBe(true);
  });

  it('wrong key: fails the step with verified=false and the reason; skopeo rejects too', async () => {
    const r = await verify({ 'image-ref': `${repo}@${signed}`, 'public-key': otherPem });
    expect(r.code).toBe(1);
    expect(r.outputs.verified).toBe('false');
    expect(r.outputs.reason).toMatch(/^cryptographic signature verification failed/);
    expect(errors(r)[0]).toMatch(/is not verified: cryptographic signature verification failed/);
    expect(skopeoAccepts(`${repo}:signed`, otherPath)).toBe(false);
  });

  it('unsigned image: rejected by both', async () => {
    const r = await verify({ 'image-ref': `${repo}@${unsigned}` });
    expect(r.code).toBe(1);
    expect(r.outputs).toMatchObject({ verified: 'false', reason: 'A signature was required, but no signature exists' });
    expect(skopeoAccepts(`${repo}:unsigned`, goodPath)).toBe(false);
  });

  it('a signature manifest replayed onto another digest: rejected by both', async () => {
    const d = push('replayed');
    const src = await client.getManifest('distro/os', sigTag(signed));
    await client.putManifest('distro/os', sigTag(d), src.body, MT.ociManifest);
    const r = await verify({ 'image-ref': `${repo}@${d}` });
    expect(r.code).toBe(1);
    expect(r.outputs.reason).toBe(`Signature for digest ${signed} does not match`);
    expect(skopeoAccepts(`${repo}:replayed`, goodPath)).toBe(false);
  });

  it('a forged payload (right digest, signature of another payload): rejected by both', async () => {
    const d = push('forged');
    const sig = crypto.sign('sha256', buildPayload(repo, signed), good.privateKey).toString('base64');
    await appendSignatures(
      client,
      'distro/os',
      d,
      [{ payload: buildPayload(repo, d), annotations: { [ANNOTATION_SIGNATURE]: sig } }],
      () => false,
    );
    const r = await verify({ 'image-ref': `${repo}@${d}` });
    expect(r.code).toBe(1);
    expect(r.outputs.reason).toMatch(/^cryptographic signature verification failed/);
    expect(skopeoAccepts(`${repo}:forged`, goodPath)).toBe(false);
  });

  it('fail-on-unverified: false reports without failing', async () => {
    const r = await verify({ 'image-ref': `${repo}@${unsigned}`, 'fail-on-unverified': 'false' });
    expect(r.code).toBe(0);
    expect(r.outputs.verified).toBe('false');
    expect(warnings(r).join('\n')).toMatch(/is not verified: A signature was required/);
  });

  it('identity rules: repo-only identity fails "digest" (c/image default); a tag identity passes "tags" for that tag only', async () => {
    const byDigest = await verify({ 'image-ref': `${repo}@${signed}`, identity: 'digest' });
    expect(byDigest.code).toBe(1);
    expect(byDigest.outputs.reason).toMatch(/^Signature for identity ".*\/distro\/os" is not accepted/);
    const tags = await verify({ 'image-ref': `${repo}@${tagSigned}`, identity: 'tags', tags: 'v7' });
    expect(errors(tags)).toEqual([]);
    expect(tags.outputs.verified).toBe('true');
    const wrongTag = await verify({ 'image-ref': `${repo}@${tagSigned}`, identity: 'tags', tags: 'v7\nv8' });
    expect(wrongTag.code).toBe(1);
    expect(wrongTag.outputs.reason).toMatch(/^pulled as :v8: Signature for identity ".*:v7" is not accepted/);
    const digestOk = await verify({ 'image-ref': `${repo}@${tagSigned}`, identity: 'digest' });
    expect(digestOk.outputs.verified).toBe('true');
  });

  it('format bundle on a legacy-only image says no bundle exists', async () => {
    const r = await verify({ 'image-ref': `${repo}@${signed}`, format: 'bundle' });
    expect(r.code).toBe(1);
    expect(r.outputs.reason).toBe('no cosign bundle exists (OCI referrer or sha256-<hex> fallback tag)');
  });

  it('bad inputs fail naming the input, before any registry request', async () => {
    proxy.reset();
    const tag = await verify({ 'image-ref': `${proxy.host}/distro/os:signed` });
    expect(errors(tag)[0]).toMatch(
      /^Input 'image-ref' has value ".*": not a valid image reference: a digest reference \(repo@sha256:\.\.\.\) is required, not a tag/,
    );
    expect(tag.outputs.verified).toBe('false');
    const badKey = await verify({
      'image-ref': `${proxy.host}/distro/os@${signed}`,
      'public-key': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
    });
    expect(errors(badKey)).toEqual([
      `Input 'public-key': not a public key: PEM type "CERTIFICATE" (expected PUBLIC KEY, e.g. cosign.pub)`,
    ]);
    const missing = await runAction({
      action: 'verify',
      inputs: { 'image-ref': `${proxy.host}/distro/os@${signed}`, 'tls-verify': 'false' },
    });
    expect(errors(missing)[0]).toMatch(/^Input 'public-key': it is required/);
    expect(proxy.log).toEqual([]);
  });
});
