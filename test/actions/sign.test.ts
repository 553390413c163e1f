// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { keygen } from '../../cli/commands/keygen.js';
import { policy } from '../../cli/commands/policy.js';
import { silentLogger } from '../../actions/lib/log.js';
import { MT } from '../../actions/lib/oci/media.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import type { RegistryClient } from '../../actions/lib/oci/client.js';
import { connect } from '../../actions/lib/registry.js';
import { referrersTag } from '../../actions/lib/sign/bundle.js';
import { readSignatureManifest, sigTag } from '../../actions/lib/sign/legacy.js';
import { parsePayload } from '../../actions/lib/sign/payload.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { makeOciImage, skopeoPush, tmpdir } from '../harness/tools.js';
import { cosignVerify, fetchVerifiers, skopeoPolicyCopy, type Verifiers } from '../harness/verifiers.js';

/**
 * The bundled `sign` action, driven the runner way against a real registry; what it writes is
 * checked by the real, independent verifiers: cosign 2.5 and 3.x `verify --key`, and skopeo
 * 1.18 / 1.22 under the client policy Keel generates (what bootc/rpm-ostree/podman enforce).
 */
describe('sign (bundled, real registry, real verifiers)', () => {
  let reg: Registry;
  let proxy: FaultProxy;
  let v: Verifiers;
  let dir: string;
  let client: RegistryClient;
  let keyPem: string;
  let pubPath: string;
  let otherKeyPem: string;
  let otherPubPath: string;
  let repo: string;
  let clientDir: string;
  const PW = 'correct horse battery staple';

  const push = (tag: string, tags: string[] = []) => {
    const img = makeOciImage(path.join(dir, `img-${tag}`));
    const d = skopeoPush(`oci:${img.dir}:latest`, `${repo}:${tag}`);
    for (const t of tags) skopeoPush(`oci:${img.dir}:latest`, `${repo}:${t}`);
    return d;
  };
  const sign = (inputs: Record<string, string>, env: Record<string, string> = {}) =>
    runAction({
      action: 'sign',
      inputs: { 'tls-verify': 'false', 'private-key': keyPem, password: PW, ...inputs },
      env,
    });
  /** skopeo 1.18 and 1.22 verdicts under the generated client policy (true = accepted). */
  const clientAccepts = (image: string, policyFile = path.join(clientDir, 'etc/containers/policy.json')) =>
    [v.skopeo, v.skopeoSid!].map(
      (bin) =>
        skopeoPolicyCopy(bin, {
          policy: policyFile,
          registriesD: path.join(clientDir, 'etc/containers/registries.d'),
          image,
          dest: path.join(dir, 'out'),
        }).ok,
    );
  const layers = async (d: string) => (await readSignatureManifest(client, 'distro/os', d))?.layers ?? [];

  beforeAll(async () => {
    v = fetchVerifiers({ sid: true });
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    dir = tmpdir('keel-sign-');
    repo = `${reg.host}/distro/os`;
    client = connect(parseReference(`${repo}:x`), { 'tls-verify': false }, silentLogger);
    const k = await keygen({ outPrefix: path.join(dir, 'keel'), password: PW });
    keyPem = fs.readFileSync(k.privateKeyPath, 'utf8');
    pubPath = k.publicKeyPath;
    const o = await keygen({ outPrefix: path.join(dir, 'other'), password: PW, compat: true });
    otherKeyPem = fs.readFileSync(o.privateKeyPath, 'utf8');
    otherPubPath = o.publicKeyPath;
    // The client files Keel generates, with the key path pointing at the test's key.
    clientDir = path.join(dir, 'client');
    await policy({ image: repo, publicKeyPath: pubPath, outDir: clientDir, keyPath: pubPath });
  }, 600_000);

  afterAll(async () => {
    await proxy?.close();
    await reg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('default: legacy .sig, repository identity; accepted by cosign 2 and 3, and by skopeo 1.18/1.22 with the generated client policy', async () => {
    const d = push('candidate');
    const r = await sign({ 'image-ref': `${repo}@${d}` });
    expect(errors(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({
      'signature-refs': `${repo}:${sigTag(d)}`,
      verified: 'true',
      'signed-digests': d,
    });
    expect(r.outputs['key-fingerprint']).toMatch(/^[a-f0-9]{64}$/);
    const ls = await layers(d);
    expect(ls).toHaveLength(1);
    expect(parsePayload(ls[0]!.payload!)).toEqual({ dockerReference: repo, digest: d, optional: null });
    expect(cosignVerify(v.cosign, `${repo}@${d}`, pubPath, dir).ok).toBe(true);
    expect(cosignVerify(v.cosign3!, `${repo}@${d}`, pubPath, dir).ok).toBe(true);
    expect(clientAccepts(`${repo}:candidate`)).toEqual([true, true]);
    expect(clientAccepts(`${repo}@${d}`)).toEqual([true, true]);
    // …and only with the right key.
    expect(cosignVerify(v.cosign, `${repo}@${d}`, otherPubPath, dir).ok).toBe(false);
    expect(cosignVerify(v.cosign3!, `${repo}@${d}`, otherPubPath, dir).ok).toBe(false);
    // secrets: masked, never printed
    const keyLines = keyPem
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('-----'));
    expect(r.masked).toEqual(expect.arrayContaining([keyPem.trim(), PW, ...keyLines]));
    const printed = r.stdout.replace(/::add-mask::.*\n/g, '') + r.stderr;
    expect(printed).not.toContain(PW);
    expect(printed).not.toContain(keyPem.split('\n')[1]!);
    expect(r.summary).toContain('### sign');
    expect(r.summary).toContain('use-sigstore-attachments: true');
  });

  it('is idempotent: re-signing the same digest with the same key adds no layer; another key appends one', async () => {
    const d = push('idem');
    await sign({ 'image-ref': `${repo}@${d}` });
    const before = await client.headManifest('distro/os', sigTag(d));
    const again = await sign({ 'image-ref': `${repo}@${d}` });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already signed');
    expect((await client.headManifest('distro/os', sigTag(d)))?.digest).toBe(before?.digest);
    expect(await layers(d)).toHaveLength(1);
    const other = await sign({ 'image-ref': `${repo}@${d}`, 'private-key': otherKeyPem });
    expect(other.code).toBe(0);
    expect(await layers(d)).toHaveLength(2);
    expect(cosignVerify(v.cosign, `${repo}@${d}`, pubPath, dir).ok).toBe(true);
    expect(cosignVerify(v.cosign, `${repo}@${d}`, otherPubPath, dir).ok).toBe(true);
  });

  it('identity: tags writes one signature per tag, accepted by the DEFAULT c/image rule when pulled by that tag', async () => {
    const d = push('v1', ['candidate.20260101']);
    const r = await sign({ 'image-ref': `${repo}@${d}`, identity: 'tags', tags: `v1\n${repo}:candidate.20260101` });
    expect(errors(r)).toEqual([]);
    expect((await layers(d)).map((l) => parsePayload(l.payload!).dockerReference)).toEqual([
      `${repo}:v1`,
      `${repo}:candidate.20260101`,
    ]);
    // a policy without signedIdentity (the default matchRepoDigestOrExact)
    const pol = JSON.parse(fs.readFileSync(path.join(clientDir, 'etc/containers/policy.json'), 'utf8')) as {
      transports: { docker: Record<string, unknown> };
    };
    pol.transports.docker[repo] = [{ type: 'sigstoreSigned', keyPath: pubPath }];
    const strict = path.join(dir, 'policy-default.json');
    fs.writeFileSync(strict, JSON.stringify(pol));
    expect(clientAccepts(`${repo}:v1`, strict)).toEqual([true, true]);
    expect(clientAccepts(`${repo}:candidate.20260101`, strict)).toEqual([true, true]);
    expect(cosignVerify(v.cosign, `${repo}@${d}`, pubPath, dir).ok).toBe(true);
  });

  it('multi-arch: signs the index and every child; podman-style (instance) and bootc-style (index) checks pass', async () => {
    const c1 = push('arch-a');
    const c2 = push('arch-b');
    const manifests = await Promise.all(
      [c1, c2].map(async (d, i) => ({
        mediaType: MT.ociManifest,
        digest: d,
        size: (await client.getManifest('distro/os', d)).body.length,
        platform: { architecture: ['amd64', 'arm64'][i]!, os: 'linux' },
      })),
    );
    const idx = await client.putManifest(
      'distro/os',
      'multi',
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests })),
      MT.ociIndex,
    );
    const r = await sign({ 'image-ref': `${repo}@${idx}` });
    expect(errors(r)).toEqual([]);
    expect(r.outputs['signed-digests']!.split('\n')).toEqual([idx, c1, c2]);
    expect(r.outputs['signature-refs']!.split('\n')).toEqual([idx, c1, c2].map((d) => `${repo}:${sigTag(d)}`));
    expect(clientAccepts(`${repo}:multi`)).toEqual([true, true]);
    for (const d of [idx, c1, c2]) expect(cosignVerify(v.cosign, `${repo}@${d}`, pubPath, dir).ok).toBe(true);
  });

  it('format both: legacy for clients plus a cosign 3 bundle referrer (fallback tag on a registry without referrers API)', async () => {
    const d = push('both');
    const r = await sign({
      'image-ref': `${repo}@${d}`,
      format: 'both',
      'public-key': fs.readFileSync(pubPath, 'utf8'),
    });
    expect(errors(r)).toEqual([]);
    const refs = r.outputs['signature-refs']!.split('\n');
    expect(refs[0]).toBe(`${repo}:${sigTag(d)}`);
    expect(refs[1]).toMatch(new RegExp(`^${repo.replace(/\./g, '\\.')}@sha256:[a-f0-9]{64}$`));
    const fallback = await client.getManifest('distro/os', referrersTag(d));
    expect(fallback.mediaType).toBe(MT.ociIndex);
    const referrer = JSON.parse(
      (await client.getManifest('distro/os', refs[1]!.split('@')[1]!)).body.toString(),
    ) as Record<string, unknown>;
    expect(referrer).toMatchObject({
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      subject: { digest: d },
      config: { mediaType: MT.ociEmpty },
    });
    expect(cosignVerify(v.cosign3!, `${repo}@${d}`, pubPath, dir).ok).toBe(true);
    expect(cosignVerify(v.cosign, `${repo}@${d}`, pubPath, dir).ok).toBe(true);
    expect(clientAccepts(`${repo}:both`)).toEqual([true, true]);
    // idempotent for bundles too
    const again = await sign({ 'image-ref': `${repo}@${d}`, format: 'both' });
    expect(again.outputs['signature-refs']).toBe(r.outputs['signature-refs']);
    expect((await client.getManifest('distro/os', referrersTag(d))).digest).toBe(fallback.digest);
  });

  it("format bundle only: cosign 3 verifies it, containers/image cannot see it (the ecosystem's open wound), with a warning", async () => {
    const d = push('bundle-only');
    const r = await sign({ 'image-ref': `${repo}@${d}`, format: 'bundle' });
    expect(errors(r)).toEqual([]);
    expect(warnings(r).join('\n')).toMatch(/containers\/image .* reads only the legacy \.sig format/);
    expect(await layers(d)).toHaveLength(0);
    expect(cosignVerify(v.cosign3!, `${repo}@${d}`, pubPath, dir).ok).toBe(true);
    expect(cosignVerify(v.cosign3!, `${repo}@${d}`, otherPubPath, dir).ok).toBe(false);
    expect(clientAccepts(`${repo}:bundle-only`)).toEqual([false, false]);
  });

  it('a wrong password fails with a clear message before any registry request', async () => {
    proxy.reset();
    const d = push('wrongpw');
    const r = await sign({ 'image-ref': `${proxy.host}/distro/os@${d}`, password: 'not it' });
    expect(r.code).toBe(1);
    expect(errors(r)).toEqual([
      "Input 'password': it does not decrypt 'private-key' (wrong password: this is the key's password, COSIGN_PASSWORD; the registry password goes in 'registry-password')",
    ]);
    expect(r.outputs.verified).toBe('false');
    expect(proxy.log).toEqual([]);
    expect(r.stdout.replace(/::add-mask::.*\n/g, '')).not.toContain('not it');
  });

  it('a tag reference is refused, saying why, before any registry request', async () => {
    proxy.reset();
    const r = await sign({ 'image-ref': `${proxy.host}/distro/os:candidate` });
    expect(r.code).toBe(1);
    expect(errors(r)[0]).toMatch(
      /^Input 'image-ref' has value ".*\/distro\/os:candidate": not a valid image reference: a digest reference \(repo@sha256:\.\.\.\) is required, not a tag/,
    );
    expect(proxy.log).toEqual([]);
    expect(r.outputs).toMatchObject({ verified: 'false', 'signature-refs': '' });
  });

  it('bad key, mismatched public-key, missing key and missing tags fail before any registry request', async () => {
    proxy.reset();
    const d = push('inputs');
    const ref = `${proxy.host}/distro/os@${d}`;
    const notKey = await sign({ 'image-ref': ref, 'private-key': fs.readFileSync(pubPath, 'utf8') });
    expect(errors(notKey)).toEqual([
      `Input 'private-key': not a cosign private key: PEM type "PUBLIC KEY" (expected ENCRYPTED SIGSTORE PRIVATE KEY or ENCRYPTED COSIGN PRIVATE KEY)`,
    ]);
    const mismatch = await sign({ 'image-ref': ref, 'public-key': otherPubPath });
    expect(errors(mismatch)[0]).toMatch(/^Input 'public-key': it is not the public half of 'private-key'/);
    const noKey = await runAction({ action: 'sign', inputs: { 'image-ref': ref, mode: 'key', 'tls-verify': 'false' } });
    expect(errors(noKey)).toEqual([
      `Input 'private-key': mode 'key' needs the cosign private key (contents of cosign.key)`,
    ]);
    const noTags = await sign({ 'image-ref': ref, identity: 'tags' });
    expect(errors(noTags)[0]).toMatch(/^Input 'tags' has value "": identity 'tags' signs one identity per tag/);
    const keylessWithKey = await runAction({
      action: 'sign',
      inputs: { 'image-ref': ref, mode: 'keyless', 'public-key': pubPath, 'tls-verify': 'false' },
    });
    expect(errors(keylessWithKey)[0]).toMatch(/^Input 'public-key': mode 'keyless' writes no key-based signature/);
    const foreign = await sign({ 'image-ref': ref, identity: 'tags', tags: 'ghcr.io/else/where:v1' });
    expect(errors(foreign)[0]).toMatch(/names repository ghcr\.io\/else\/where, but image-ref is/);
    expect(proxy.log).toEqual([]);
  });

  it('fails (verified=false, refs set) when the signatures cannot be read back and verified', async () => {
    const d = push('lost');
    // A registry that hides the signature tag after the write (e.g. a stale cache in front of it).
    proxy.setRules([{ method: 'HEAD', path: /\.sig$/, skip: 2, action: { kind: 'status', status: 404 } }]);
    const r = await sign({ 'image-ref': `${proxy.host}/distro/os@${d}`, 'public-key': pubPath });
    proxy.setRules([]);
    expect(r.code).toBe(1);
    expect(errors(r)).toEqual([
      'the signatures just written do not verify: A signature was required, but no signature exists',
    ]);
    expect(r.outputs.verified).toBe('false');
    expect(r.outputs['signature-refs']).toBe(`${proxy.host}/distro/os:${sigTag(d)}`);
    expect(r.summary).toContain('**Failed:**');
  });
});
