// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { attachTamperedSignature, signDigest, testKey, type TestKey } from '../harness/signing.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeOciImage, sh, skopeoDigest, skopeoPush, tmpdir } from '../harness/tools.js';

const DATE = '20261122';
const PROMO = ['stable', `stable.${DATE}`, DATE];

describe('promote (bundled, real registry)', () => {
  let reg: Registry;
  let proxy: FaultProxy;
  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
  });
  afterAll(async () => {
    await proxy.close();
    await reg.stop();
  });

  /** These tests are about tags; the signature gate has its own describe below. */
  const promote = (inputs: Record<string, string>) =>
    runAction({
      action: 'promote',
      inputs: { 'tls-verify': 'false', 'release-date': DATE, 'allow-unsigned': 'true', ...inputs },
    });

  /** An image pushed by buildah (an independent writer) under :candidate. */
  function buildahCandidate(repo: string): string {
    const ctx = tmpdir();
    fs.writeFileSync(path.join(ctx, 'f'), `content ${Date.now()} ${Math.random()}\n`);
    fs.writeFileSync(path.join(ctx, 'Containerfile'), 'FROM scratch\nCOPY f /f\n');
    const name = `localhost/keel-test-promote:${process.pid}`;
    sh('buildah', ['build', '--quiet', '--isolation', 'chroot', '-t', name, ctx]);
    const df = path.join(ctx, 'digest');
    sh('buildah', [
      'push',
      '--quiet',
      '--tls-verify=false',
      '--digestfile',
      df,
      name,
      `docker://${reg.host}/${repo}:candidate`,
    ]);
    sh('buildah', ['rmi', '-f', name]);
    return fs.readFileSync(df, 'utf8').trim();
  }

  it('promotes a buildah-pushed digest: every promotion tag inspects to the unchanged digest', async () => {
    const digest = buildahCandidate('keel/os');
    const r = await promote({ 'image-ref': `${reg.host}/keel/os@${digest}`, 'require-tag': 'candidate' });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.digest).toBe(digest);
    expect(r.outputs.tags!.split('\n')).toEqual([`stable.${DATE}`, DATE, 'stable']);
    for (const t of PROMO) expect(skopeoDigest(`${reg.host}/keel/os:${t}`)).toBe(digest);
    expect(skopeoDigest(`${reg.host}/keel/os:candidate`)).toBe(digest);
  });

  it('sends manifests only (no blob upload) and a re-run is a no-op that says so', async () => {
    const img = makeOciImage(tmpdir(), { randomBytes: 200_000 });
    const digest = skopeoPush(`oci:${img.dir}:latest`, `${reg.host}/keel/noop:candidate`);
    proxy.reset();
    const first = await promote({ 'image-ref': `${proxy.host}/keel/noop@${digest}` });
    expect(errors(first)).toEqual([]);
    expect(proxy.log.filter((e) => e.path.includes('/blobs/'))).toHaveLength(0);
    expect(proxy.log.filter((e) => e.method === 'PUT')).toHaveLength(3);
    proxy.reset();
    const again = await promote({ 'image-ref': `${proxy.host}/keel/noop@${digest}` });
    expect(errors(again)).toEqual([]);
    expect(proxy.log.filter((e) => e.method === 'PUT')).toHaveLength(0);
    expect(again.stdout).toMatch(/all promotion tags already point at .*nothing written/);
    expect(again.summary).toMatch(/nothing was written/);
  });

  it('refuses a tag reference, saying why, before any request', async () => {
    proxy.reset();
    const r = await runAction({
      action: 'promote',
      inputs: { 'image-ref': `${proxy.host}/keel/os:candidate`, 'tls-verify': 'false' },
    });
    expect(r.code).toBe(1);
    expect(errors(r).join('')).toMatch(
      /Input 'image-ref' .*a digest reference .* is required, not a tag: the promoted digest must be the one that was tested/,
    );
    expect(proxy.log).toHaveLength(0);
  });

  it('require-tag refuses a pr-N digest that is not the candidate, writing nothing', async () => {
    const cand = makeOciImage(tmpdir());
    const candDigest = skopeoPush(`oci:${cand.dir}:latest`, `${reg.host}/keel/guard:candidate`);
    const pr = makeOciImage(tmpdir());
    const prDigest = skopeoPush(`oci:${pr.dir}:latest`, `${reg.host}/keel/guard:pr-9`);
    const r = await promote({ 'image-ref': `${reg.host}/keel/guard@${prDigest}`, 'require-tag': 'candidate' });
    expect(r.code).toBe(1);
    expect(errors(r).join('')).toMatch(new RegExp(`not currently tagged 'candidate' \\(candidate → ${candDigest}\\)`));
    const tags = JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/keel/guard`]))
      .Tags as string[];
    expect(tags.sort()).toEqual(['candidate', 'pr-9']);
  });

  it('an interrupted promotion leaves stable untouched, and a re-run points every tag at the digest', async () => {
    const old = makeOciImage(tmpdir());
    const oldDigest = skopeoPush(`oci:${old.dir}:latest`, `${reg.host}/keel/half:stable`);
    const next = makeOciImage(tmpdir());
    const digest = skopeoPush(`oci:${next.dir}:latest`, `${reg.host}/keel/half:candidate`);
    proxy.reset();
    // The second tag's PUT keeps failing: the run dies after writing one tag.
    proxy.setRules([{ method: 'PUT', path: new RegExp(`/manifests/${DATE}$`), action: { kind: 'reset' } }]);
    const broken = await promote({ 'image-ref': `${proxy.host}/keel/half@${digest}`, retries: '2' });
    proxy.setRules([]);
    expect(broken.code).toBe(1);
    expect(skopeoDigest(`${reg.host}/keel/half:stable.${DATE}`)).toBe(digest);
    expect(skopeoDigest(`${reg.host}/keel/half:stable`)).toBe(oldDigest);
    const again = await promote({ 'image-ref': `${reg.host}/keel/half@${digest}` });
    expect(errors(again)).toEqual([]);
    for (const t of PROMO) expect(skopeoDigest(`${reg.host}/keel/half:${t}`)).toBe(digest);
  });

  it('refuses latest and fails naming the input', async () => {
    const r = await promote({ 'image-ref': `${reg.host}/keel/os@sha256:${'0'.repeat(64)}`, tags: 'latest' });
    expect(errors(r).join('')).toMatch(/Input 'tags' .*never writes 'latest'/);
  });
});

describe('promote: the signature gate fails closed (bundled, real registry)', () => {
  let reg: Registry;
  let proxy: FaultProxy;
  let key: TestKey;
  let other: TestKey;
  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    key = testKey();
    other = testKey();
  });
  afterAll(async () => {
    await proxy.close();
    await reg.stop();
  });

  const candidate = (repo: string) => {
    const digest = skopeoPush(`oci:${makeOciImage(tmpdir()).dir}:latest`, `${reg.host}/${repo}:candidate`);
    return { digest, ref: `${reg.host}/${repo}@${digest}` };
  };
  const tagsOf = (repo: string) =>
    (
      JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`])).Tags as string[]
    ).sort();
  const promote = (inputs: Record<string, string>) =>
    runAction({ action: 'promote', inputs: { 'tls-verify': 'false', 'release-date': DATE, ...inputs } });

  it('refuses to run without a public-key, naming the input, before any registry request', async () => {
    const { digest } = candidate('keel/nokey');
    proxy.reset();
    const r = await promote({ 'image-ref': `${proxy.host}/keel/nokey@${digest}` });
    expect(r.code).toBe(1);
    expect(errors(r)).toEqual([
      "Input 'public-key': it is required: promote refuses to run without the cosign public key the image must verify with (set allow-unsigned: true to proceed without checking the signature)",
    ]);
    expect(proxy.connections()).toBe(0);
    expect(tagsOf('keel/nokey')).toEqual(['candidate']);
  });

  it('allow-unsigned: promotes, with a warning in the log and in the summary', async () => {
    const { ref, digest } = candidate('keel/unsigned-ok');
    const r = await promote({ 'image-ref': ref, 'allow-unsigned': 'true' });
    expect(errors(r)).toEqual([]);
    expect(warnings(r)).toContain(
      "allow-unsigned is true and no public-key is given: promote does NOT check the image's signature",
    );
    expect(r.summary).toMatch(/\*\*promote\*\*: allow-unsigned is true and no public-key is given/);
    expect(r.summary).toMatch(/NOT checked \(allow-unsigned: true, no public-key\)/);
    expect(skopeoDigest(`${reg.host}/keel/unsigned-ok:stable`)).toBe(digest);
  });

  it('with a public-key: promotes a digest signed with it (key as a path or PEM)', async () => {
    for (const [i, k] of [key.path, key.pem].entries()) {
      const { ref, digest } = candidate(`keel/signed${i}`);
      await signDigest(ref, key);
      const r = await promote({ 'image-ref': ref, 'public-key': k });
      expect(errors(r)).toEqual([]);
      expect(r.summary).toMatch(/verified \(1 legacy signature\(s\) accepted\)/);
      expect(skopeoDigest(`${reg.host}/keel/signed${i}:stable`)).toBe(digest);
    }
  });

  it('refuses an unsigned digest, one signed by another key and a tampered signature, writing no tag', async () => {
    const unsigned = candidate('keel/bad0');
    const wrongKey = candidate('keel/bad1');
    await signDigest(wrongKey.ref, other);
    const tampered = candidate('keel/bad2');
    await attachTamperedSignature(tampered.ref, key);
    for (const [i, c, why] of [
      [0, unsigned, /A signature was required, but no signature exists/],
      [1, wrongKey, /cryptographic signature verification failed/],
      [2, tampered, /cryptographic signature verification failed/],
    ] as const) {
      const r = await promote({ 'image-ref': c.ref, 'public-key': key.path, 'allow-unsigned': 'true' });
      expect(r.code).toBe(1);
      expect(errors(r)[0]).toMatch(/^refusing .*: its signature does not verify with public-key: /);
      expect(errors(r)[0]).toMatch(why);
      expect(tagsOf(`keel/bad${i}`).filter((t) => !t.endsWith('.sig'))).toEqual(['candidate']);
    }
  });
});
