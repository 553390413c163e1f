// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../actions/lib/log.js';
import { MT } from '../../actions/lib/oci/media.js';
import { parseReference, type ImageReference } from '../../actions/lib/oci/reference.js';
import { connect } from '../../actions/lib/registry.js';
import type { RegistryClient } from '../../actions/lib/oci/client.js';
import { renderClientConfig } from '../../actions/lib/sign/client-config.js';
import type { SignedIdentity } from '../../actions/lib/sign/identity.js';
import { verifyImage } from '../../actions/lib/sign/index.js';
import { appendSignatures, readSignatureManifest, sigTag } from '../../actions/lib/sign/legacy.js';
import { ANNOTATION_SIGNATURE, buildPayload, SIGNATURE_TYPE } from '../../actions/lib/sign/payload.js';
import { signImage } from '../../actions/sign/src/sign.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeOciImage, skopeoPush, tmpdir } from '../harness/tools.js';
import { fetchVerifiers, skopeoPolicyCopy, type Verifiers } from '../harness/verifiers.js';

/**
 * THE verifier (actions/lib/sign/verify.ts) against a real registry, each case cross-checked
 * with the real containers/image (skopeo 1.18 and 1.22 under a sigstoreSigned policy): Keel
 * must accept exactly what bootc/rpm-ostree/podman accept, and reject what they reject.
 */
const ec = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (k: crypto.KeyObject) => k.export({ format: 'pem', type: 'spki' }).toString();

describe('verifyImage agrees with containers/image (real registry, skopeo 1.18 + 1.22)', () => {
  let reg: Registry;
  let v: Verifiers;
  let client: RegistryClient;
  let dir: string;
  const good = ec();
  const other = ec();
  let repo: string;
  let dA: string; // signed by `good`, repo identity
  let dB: string; // unsigned
  let dT: string; // signed with a tag identity (:v4) only
  let dIdx: string; // index, index + children signed
  let dHalf: string; // index, only the index signed
  const ref = (d: string) => parseReference(`${repo}@${d}`);
  let registriesD: string;
  let noAttachments: string;

  /** A policy file: Keel's client policy (matchRepository) or c/image's default rule. */
  function policyFile(key: crypto.KeyObject, identity?: 'default'): string {
    const keyPath = path.join(dir, `${crypto.randomUUID()}.pub`);
    fs.writeFileSync(keyPath, pem(key));
    const cfg = renderClientConfig({ image: repo, keyPath });
    if (identity === 'default') {
      const docker = (cfg.policy.transports as Record<string, Record<string, unknown>>).docker!;
      docker[repo] = [{ type: 'sigstoreSigned', keyPath }];
    }
    const p = path.join(dir, `${crypto.randomUUID()}.json`);
    fs.writeFileSync(p, JSON.stringify(cfg.policy));
    return p;
  }

  /** Both skopeo versions' verdicts (true = accepted) for a pull of `image` under `policy`. */
  let lastErr: string[] = [];
  function skopeo(policy: string, image: string, rd = registriesD): boolean[] {
    lastErr = [];
    return [v.skopeo, v.skopeoSid!].map((bin) => {
      const r = skopeoPolicyCopy(bin, { policy, registriesD: rd, image, dest: path.join(dir, 'out') });
      if (!r.ok && !/signature|Signature|identity/.test(r.stderr))
        throw new Error(`skopeo failed for another reason: ${r.stderr}`);
      lastErr.push(r.stderr);
      return r.ok;
    });
  }
  /** Both skopeo versions rejected for this reason. */
  const skopeoSaid = (re: RegExp) => expect(lastErr.map((e) => re.test(e))).toEqual([true, true]);

  async function keel(
    d: string,
    key: crypto.KeyObject,
    opts: { identity?: SignedIdentity; tag?: string; recursive?: boolean } = {},
  ) {
    return verifyImage(client, ref(d), pem(key), { ...opts, log: silentLogger });
  }

  async function pushIndex(children: string[], tag: string): Promise<string> {
    const r = parseReference(`${repo}:${tag}`);
    const arches = ['amd64', 'arm64'];
    const manifests = await Promise.all(
      children.map(async (d, i) => {
        const m = await client.getManifest(r.repository, d);
        return {
          mediaType: MT.ociManifest,
          digest: d,
          size: m.body.length,
          platform: { architecture: arches[i]!, os: 'linux' },
        };
      }),
    );
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }));
    return client.putManifest(r.repository, tag, body, MT.ociIndex);
  }

  const signWith = (r: ImageReference, identities: string[], key = good) =>
    signImage(
      client,
      {
        ref: r,
        identities,
        legacy: true,
        bundle: false,
        key: { privateKey: key.privateKey, publicKey: key.publicKey },
      },
      silentLogger,
    );

  beforeAll(async () => {
    v = fetchVerifiers({ sid: true });
    reg = await startRegistry();
    dir = tmpdir('keel-verify-');
    repo = `${reg.host}/keel/os`;
    client = connect(parseReference(`${repo}:x`), { 'tls-verify': false }, silentLogger);
    const push = (tag: string) => skopeoPush(`oci:${makeOciImage(path.join(dir, tag)).dir}:latest`, `${repo}:${tag}`);
    dA = push('a');
    skopeoPush(`oci:${path.join(dir, 'a')}:latest`, `${repo}:other`);
    dB = push('b');
    dT = push('t');
    skopeoPush(`oci:${path.join(dir, 't')}:latest`, `${repo}:latest-t`);
    const c1 = push('c1');
    const c2 = push('c2');
    dIdx = await pushIndex([c1, c2], 'multi');
    const h1 = push('h1');
    const h2 = push('h2');
    dHalf = await pushIndex([h1, h2], 'half');
    await signWith(ref(dA), [repo]);
    await signWith(ref(dT), [`${repo}:v4`]);
    skopeoPush(`oci:${path.join(dir, 't')}:latest`, `${repo}:v4`);
    await signWith(ref(dIdx), [repo]);
    // Only the index: sign it through the legacy writer directly.
    const p = buildPayload(repo, dHalf);
    await appendSignatures(
      client,
      'keel/os',
      dHalf,
      [
        {
          payload: p,
          annotations: { [ANNOTATION_SIGNATURE]: crypto.sign('sha256', p, good.privateKey).toString('base64') },
        },
      ],
      () => false,
    );
    registriesD = path.join(dir, 'rd');
    fs.mkdirSync(registriesD);
    fs.writeFileSync(path.join(registriesD, 'keel.yaml'), renderClientConfig({ image: repo }).registriesD);
    noAttachments = path.join(dir, 'rd-none');
    fs.mkdirSync(noAttachments);
    fs.writeFileSync(
      path.join(noAttachments, 'keel.yaml'),
      `docker:\n  ${reg.host}:\n    lookaside: file:///nonexistent\n`,
    );
  }, 600_000);

  afterAll(async () => {
    await reg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("accepts a Keel signature under Keel's client policy (matchRepository), by tag and by digest", async () => {
    const r = await keel(dA, good.publicKey);
    expect(r).toMatchObject({ verified: true, reason: '1 legacy signature(s) accepted' });
    expect(r.details[0]!.checks[0]).toMatchObject({
      accepted: true,
      dockerReference: repo,
      source: `${repo}:${sigTag(dA)}#0`,
    });
    expect(skopeo(policyFile(good.publicKey), `${repo}:a`)).toEqual([true, true]);
    expect(skopeo(policyFile(good.publicKey), `${repo}@${dA}`)).toEqual([true, true]);
  });

  it('rejects the repo-only identity under the default matchRepoDigestOrExact rule, like c/image', async () => {
    const r = await keel(dA, good.publicKey, { identity: { type: 'matchRepoDigestOrExact' } });
    expect(r.verified).toBe(false);
    expect(r.reason).toMatch(/^Signature for identity ".*\/keel\/os" is not accepted/);
    expect(skopeo(policyFile(good.publicKey, 'default'), `${repo}:a`)).toEqual([false, false]);
    expect(skopeo(policyFile(good.publicKey, 'default'), `${repo}@${dA}`)).toEqual([false, false]);
    skopeoSaid(/Signature for identity .* is not accepted/);
  });

  it('a tag identity passes the default rule for that tag and by digest, and fails for another tag', async () => {
    const def: SignedIdentity = { type: 'matchRepoDigestOrExact' };
    expect((await keel(dT, good.publicKey, { identity: def, tag: 'v4' })).verified).toBe(true);
    expect((await keel(dT, good.publicKey, { identity: def })).verified).toBe(true);
    expect((await keel(dT, good.publicKey, { identity: def, tag: 'latest-t' })).verified).toBe(false);
    const pol = policyFile(good.publicKey, 'default');
    expect(skopeo(pol, `${repo}:v4`)).toEqual([true, true]);
    expect(skopeo(pol, `${repo}@${dT}`)).toEqual([true, true]);
    expect(skopeo(pol, `${repo}:latest-t`)).toEqual([false, false]);
    skopeoSaid(/Signature for identity \\?".*:v4\\?" is not accepted/);
  });

  it('rejects a wrong key', async () => {
    const r = await keel(dA, other.publicKey);
    expect(r.verified).toBe(false);
    expect(r.reason).toMatch(/cryptographic signature verification failed/);
    expect(skopeo(policyFile(other.publicKey), `${repo}:a`)).toEqual([false, false]);
    skopeoSaid(/cryptographic signature verification failed/);
  });

  it('rejects an unsigned image with c/image wording', async () => {
    const r = await keel(dB, good.publicKey);
    expect(r).toMatchObject({ verified: false, reason: 'A signature was required, but no signature exists' });
    expect(skopeo(policyFile(good.publicKey), `${repo}:b`)).toEqual([false, false]);
    skopeoSaid(/A signature was required, but no signature exists/);
  });

  it('rejects a signature manifest replayed onto another digest', async () => {
    const d = pushFresh('replay');
    const src = await client.getManifest('keel/os', sigTag(dA));
    await client.putManifest('keel/os', sigTag(d), src.body, MT.ociManifest);
    const r = await keel(d, good.publicKey);
    expect(r.verified).toBe(false);
    expect(r.reason).toContain(`Signature for digest ${dA} does not match`);
    expect(skopeo(policyFile(good.publicKey), `${repo}:replay`)).toEqual([false, false]);
    skopeoSaid(new RegExp(`Signature for digest ${dA} does not match`));
  });

  it('rejects a forged payload (claims the other digest, carries a real signature of another payload)', async () => {
    const d = pushFresh('forged');
    const real = buildPayload(repo, dA);
    const forged = buildPayload(repo, d);
    const sig = crypto.sign('sha256', real, good.privateKey).toString('base64');
    await appendSignatures(
      client,
      'keel/os',
      d,
      [{ payload: forged, annotations: { [ANNOTATION_SIGNATURE]: sig } }],
      () => false,
    );
    const r = await keel(d, good.publicKey);
    expect(r.verified).toBe(false);
    expect(r.reason).toMatch(/cryptographic signature verification failed/);
    expect(skopeo(policyFile(good.publicKey), `${repo}:forged`)).toEqual([false, false]);
    skopeoSaid(/cryptographic signature verification failed/);
  });

  it('rejects a correctly signed payload without "optional", and one with an extra key, like c/image (cosign would accept)', async () => {
    const d = pushFresh('noopt');
    const crit = {
      identity: { 'docker-reference': repo },
      image: { 'docker-manifest-digest': d },
      type: SIGNATURE_TYPE,
    };
    const payloads = [
      Buffer.from(JSON.stringify({ critical: crit })),
      Buffer.from(JSON.stringify({ critical: crit, optional: null, x: 1 })),
    ];
    await appendSignatures(
      client,
      'keel/os',
      d,
      payloads.map((p) => ({
        payload: p,
        annotations: { [ANNOTATION_SIGNATURE]: crypto.sign('sha256', p, good.privateKey).toString('base64') },
      })),
      () => false,
    );
    const r = await keel(d, good.publicKey);
    expect(r.verified).toBe(false);
    expect(r.reason).toBe(
      'None of the signatures were accepted, reasons: Key "optional" missing in a JSON object; Unknown key "x"',
    );
    expect(skopeo(policyFile(good.publicKey), `${repo}:noopt`)).toEqual([false, false]);
    skopeoSaid(
      /None of the signatures were accepted, reasons: Key \\?"optional\\?" missing in a JSON object; Unknown key \\?"x\\?"/,
    );
  });

  it('rejects a layer without the signature annotation', async () => {
    const d = pushFresh('noann');
    await appendSignatures(client, 'keel/os', d, [{ payload: buildPayload(repo, d), annotations: {} }], () => false);
    const r = await keel(d, good.publicKey);
    expect(r.reason).toContain('missing dev.cosignproject.cosign/signature annotation');
    expect(skopeo(policyFile(good.publicKey), `${repo}:noann`)).toEqual([false, false]);
    skopeoSaid(/missing dev.cosignproject.cosign\/signature annotation/);
  });

  it('skopeo finds no signature when registries.d does not enable sigstore attachments (Keel checks the storage itself)', async () => {
    expect(skopeo(policyFile(good.publicKey), `${repo}:a`, noAttachments)).toEqual([false, false]);
    const r = skopeoPolicyCopy(v.skopeo, {
      policy: policyFile(good.publicKey),
      registriesD: noAttachments,
      image: `${repo}:a`,
      dest: path.join(dir, 'out'),
    });
    expect(r.stderr).toContain('A signature was required, but no signature exists');
  });

  it('multi-arch: index and children signed → accepted by both; only the index signed → c/image rejects the instance, so does Keel', async () => {
    const r = await keel(dIdx, good.publicKey);
    expect(r.verified).toBe(true);
    expect(r.details.map((d) => d.platform)).toEqual([undefined, 'linux/amd64', 'linux/arm64']);
    expect(skopeo(policyFile(good.publicKey), `${repo}:multi`)).toEqual([true, true]);
    const half = await keel(dHalf, good.publicKey);
    expect(half.verified).toBe(false);
    expect(half.reason).toMatch(/^child manifest sha256:[a-f0-9]{64} \(linux\/amd64\): A signature was required/);
    expect((await keel(dHalf, good.publicKey, { recursive: false })).verified).toBe(true);
    expect(skopeo(policyFile(good.publicKey), `${repo}:half`)).toEqual([false, false]);
    skopeoSaid(/A signature was required, but no signature exists/);
  });

  it('a missing image is verified=false, not an exception', async () => {
    const r = await keel(`sha256:${'0'.repeat(64)}`, good.publicKey);
    expect(r.verified).toBe(false);
    expect(r.reason).toMatch(/does not exist in the registry/);
  });

  it('the signature layers are what cosign writes (OCI manifest, simple-signing media type, config with diff_ids)', async () => {
    const sm = await readSignatureManifest(client, 'keel/os', dA);
    expect(sm!.manifest.mediaType).toBe(MT.ociManifest);
    expect(sm!.manifest.config.mediaType).toBe(MT.ociConfig);
    const cfg = JSON.parse((await client.getBlob('keel/os', sm!.manifest.config.digest)).toString()) as {
      rootfs: { diff_ids: string[] };
    };
    expect(cfg.rootfs.diff_ids).toEqual(sm!.manifest.layers.map((l) => l.digest));
    expect(sm!.layers[0]!.payload!.toString()).toBe(buildPayload(repo, dA).toString());
  });

  it('two signers racing on the same .sig tag both end up in it (read-modify-write is re-merged)', async () => {
    const d = pushFresh('race');
    const keys = [ec(), ec(), ec(), ec(), ec()];
    await Promise.all(keys.map((k) => signWith(ref(d), [repo], k)));
    const sm = await readSignatureManifest(client, 'keel/os', d);
    expect(sm!.layers).toHaveLength(5);
    for (const k of keys) expect((await keel(d, k.publicKey)).verified).toBe(true);
  });

  function pushFresh(tag: string): string {
    return skopeoPush(`oci:${makeOciImage(path.join(dir, tag)).dir}:latest`, `${repo}:${tag}`);
  }
});
