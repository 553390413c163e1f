// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { OciLayout } from '../../actions/lib/oci/layout.js';
import { MT } from '../../actions/lib/oci/media.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { errors, runAction } from '../harness/run-action.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeOciImage, sh, skopeoDigest, tmpdir } from '../harness/tools.js';

const DATE = '20261122';

describe('push (bundled, real registry)', () => {
  let reg: Registry;
  let proxy: FaultProxy;
  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url, { seed: 7 });
  });
  afterAll(async () => {
    await proxy.close();
    await reg.stop();
  });

  const push = (
    inputs: Record<string, string>,
    extra: { eventName?: string; event?: Record<string, unknown>; timeoutMs?: number } = {},
  ) =>
    runAction({
      action: 'push',
      inputs: { 'tls-verify': 'false', 'release-date': DATE, ...inputs },
      eventName: extra.eventName ?? 'push',
      event: extra.event,
      timeoutMs: extra.timeoutMs,
    });

  it('pushes an OCI layout once and tags candidate + candidate.<date> with one digest', async () => {
    const img = makeOciImage(tmpdir(), { randomBytes: 300_000 });
    const r = await push({ source: `oci:${img.dir}:latest`, image: `${reg.host}/keel/os` });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.outputs.digest).toBe(img.digest);
    expect(r.outputs['image-ref']).toBe(`${reg.host}/keel/os@${img.digest}`);
    expect(r.outputs.tags!.split('\n')).toEqual(['candidate', `candidate.${DATE}`]);
    for (const t of ['candidate', `candidate.${DATE}`])
      expect(skopeoDigest(`${reg.host}/keel/os:${t}`)).toBe(img.digest);
    expect(r.summary).toContain(img.digest);
  });

  it('refuses a pull request without the vm-test label, says why, and writes nothing', async () => {
    const img = makeOciImage(tmpdir());
    proxy.reset();
    const r = await runAction({
      action: 'push',
      inputs: { source: `oci:${img.dir}`, image: `${proxy.host}/keel/pr-unlabelled`, 'tls-verify': 'false' },
      eventName: 'pull_request',
      event: { number: 12, pull_request: { number: 12, labels: [{ name: 'docs' }] } },
    });
    expect(r.code).toBe(1);
    expect(errors(r).join('')).toMatch(/refusing to push: pull request #12 does not carry the 'vm-test' label/);
    expect(proxy.log).toHaveLength(0);
  });

  it('a labelled pull request gets pr-<N> and nothing else', async () => {
    const img = makeOciImage(tmpdir());
    const r = await push(
      { source: `oci:${img.dir}`, image: `${reg.host}/keel/os` },
      { eventName: 'pull_request', event: { number: 34, pull_request: { number: 34, labels: [{ name: 'vm-test' }] } } },
    );
    expect(errors(r)).toEqual([]);
    expect(r.outputs.tags).toBe('pr-34');
    expect(skopeoDigest(`${reg.host}/keel/os:pr-34`)).toBe(img.digest);
    // The candidate tags were not touched by the PR push.
    expect(skopeoDigest(`${reg.host}/keel/os:candidate`)).not.toBe(img.digest);
  });

  it('pushes a multi-arch index with all child manifests', async () => {
    const dir = tmpdir();
    const a = makeOciImage(dir, { tag: 'amd64' });
    const b = makeOciImage(dir, { tag: 'arm64' });
    const layout = OciLayout.open(dir);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [
          {
            mediaType: MT.ociManifest,
            digest: a.digest,
            size: a.manifest.length,
            platform: { architecture: 'amd64', os: 'linux' },
          },
          {
            mediaType: MT.ociManifest,
            digest: b.digest,
            size: b.manifest.length,
            platform: { architecture: 'arm64', os: 'linux' },
          },
        ],
      }),
    );
    const d = layout.writeBlob(index);
    layout.setRef('multi', { mediaType: MT.ociIndex, digest: d.digest, size: d.size });
    const r = await push({ source: `oci:${dir}:multi`, image: `${reg.host}/keel/multi` });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.digest).toBe(d.digest);
    const raw = JSON.parse(
      sh('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/keel/multi:candidate`]),
    );
    expect(raw.mediaType).toBe(MT.ociIndex);
    for (const child of [a.digest, b.digest]) {
      expect(
        JSON.parse(sh('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/keel/multi@${child}`]))
          .layers.length,
      ).toBe(1);
    }
  });

  it('fails naming the input on a bad source, before any request', async () => {
    proxy.reset();
    const r = await push({ source: 'docker://x/y:z', image: `${proxy.host}/keel/os` });
    expect(errors(r)).toEqual([
      `Input 'source' has value "docker://x/y:z": expected oci:DIR[:TAG] or containers-storage:REF`,
    ]);
    expect(proxy.log).toHaveLength(0);
  });

  it('refuses latest in a tag override', async () => {
    const img = makeOciImage(tmpdir());
    const r = await push({ source: `oci:${img.dir}`, image: `${reg.host}/keel/os`, tags: 'candidate\nlatest' });
    expect(errors(r).join('')).toMatch(/Input 'tags' .*item "latest": Keel never writes 'latest'/);
  });

  describe('interop', () => {
    it('skopeo copy and podman pull get the digest Keel pushed', async () => {
      const img = makeOciImage(tmpdir(), { randomBytes: 100_000 });
      const r = await push({ source: `oci:${img.dir}`, image: `${reg.host}/keel/interop` });
      const digest = r.outputs.digest!;
      const out = tmpdir();
      sh('skopeo', [
        'copy',
        '-q',
        '--src-tls-verify=false',
        `docker://${reg.host}/keel/interop:candidate`,
        `oci:${out}:x`,
      ]);
      expect(OciLayout.open(out).resolve('x').digest).toBe(digest);
      sh('podman', ['pull', '-q', '--tls-verify=false', `${reg.host}/keel/interop@${digest}`]);
      const podmanDigest = sh('podman', [
        'image',
        'inspect',
        '--format',
        '{{.Digest}}',
        `${reg.host}/keel/interop@${digest}`,
      ]).trim();
      expect(podmanDigest).toBe(digest);
      sh('podman', ['rmi', '-f', `${reg.host}/keel/interop@${digest}`]);
    });

    it('pushes a containers-storage image built by buildah', async () => {
      const ctx = tmpdir();
      fs.writeFileSync(path.join(ctx, 'hello.txt'), `built ${Date.now()}\n`);
      fs.writeFileSync(path.join(ctx, 'Containerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\n');
      const name = `localhost/keel-test-push:${process.pid}`;
      sh('buildah', ['build', '--quiet', '--isolation', 'chroot', '-t', name, ctx]);
      try {
        const r = await push({ source: `containers-storage:${name}`, image: `${reg.host}/keel/from-storage` });
        expect(errors(r)).toEqual([]);
        expect(skopeoDigest(`${reg.host}/keel/from-storage:candidate`)).toBe(r.outputs.digest);
        const out = tmpdir();
        sh('skopeo', [
          'copy',
          '-q',
          '--src-tls-verify=false',
          `docker://${reg.host}/keel/from-storage@${r.outputs.digest}`,
          `dir:${out}`,
        ]);
        expect(fs.readdirSync(out).length).toBeGreaterThan(2);
      } finally {
        sh('buildah', ['rmi', '-f', name]);
      }
    });
  });

  describe('reliability (fault proxy)', () => {
    it('completes with 30% of requests answered 503 or reset, every tag on one digest', async () => {
      const img = makeOciImage(tmpdir(), {
        layers: [{ a: 'x'.repeat(200_000) }, { b: 'y'.repeat(200_000) }, { c: 'z'.repeat(200_000) }],
      });
      proxy.reset();
      proxy.setRules([
        { probability: 0.15, action: { kind: 'status', status: 503 } },
        { probability: 0.18, action: { kind: 'reset' } },
      ]);
      const r = await push({ source: `oci:${img.dir}`, image: `${proxy.host}/keel/flaky`, retries: '10' });
      proxy.setRules([]);
      expect(errors(r)).toEqual([]);
      const faults = proxy.log.filter((e) => e.fault).length;
      expect(faults / proxy.log.length).toBeGreaterThan(0.2);
      for (const t of ['candidate', `candidate.${DATE}`])
        expect(skopeoDigest(`${reg.host}/keel/flaky:${t}`)).toBe(img.digest);
    });

    it('honours 429 Retry-After', async () => {
      const img = makeOciImage(tmpdir());
      proxy.reset();
      proxy.setRules([
        {
          method: 'PUT',
          path: /\/manifests\/sha256:/,
          times: 1,
          action: { kind: 'status', status: 429, retryAfter: 2 },
        },
      ]);
      const r = await push({ source: `oci:${img.dir}`, image: `${proxy.host}/keel/slow` });
      proxy.setRules([]);
      expect(errors(r)).toEqual([]);
      const puts = proxy.log.filter((e) => e.method === 'PUT' && /\/manifests\/sha256:/.test(e.path));
      expect(puts.map((e) => e.status)).toEqual([429, 201]);
      expect(puts[1]!.at - puts[0]!.at).toBeGreaterThanOrEqual(1900);
    });

    it.each([
      [400, 'MANIFEST_INVALID', /HTTP 400 MANIFEST_INVALID: manifest invalid \(injected\)/],
      [403, 'DENIED', /HTTP 403 DENIED: requested access to the resource is denied .*access denied/],
    ])('a permanent %i fails at once with the registry message', async (status, code, msg) => {
      const img = makeOciImage(tmpdir());
      proxy.reset();
      const message = status === 400 ? 'manifest invalid (injected)' : 'requested access to the resource is denied';
      proxy.setRules([
        {
          method: 'PUT',
          path: /\/manifests\//,
          action: { kind: 'status', status, body: JSON.stringify({ errors: [{ code, message }] }) },
        },
      ]);
      const r = await push({ source: `oci:${img.dir}`, image: `${proxy.host}/keel/perm${status}` });
      proxy.setRules([]);
      expect(r.code).toBe(1);
      expect(errors(r).join('')).toMatch(msg);
      expect(proxy.log.filter((e) => e.method === 'PUT' && /\/manifests\//.test(e.path))).toHaveLength(1);
    });

    it('a push killed halfway, re-run, uploads only the missing blobs', async () => {
      const layers = [1, 2, 3, 4].map((i) => ({ [`f${i}`]: Buffer.alloc(400_000, i) }));
      const img = makeOciImage(tmpdir(), { layers });
      const manifest = JSON.parse(img.manifest.toString()) as {
        layers: { digest: string; size: number }[];
        config: { digest: string; size: number };
      };
      const victim = manifest.layers[2]!.digest;
      proxy.reset();
      // The third layer's upload stalls forever: the first run is killed while stuck on it.
      proxy.setRules([
        { method: 'PUT', path: new RegExp(`digest=${victim.replace(':', '%3A')}`), action: { kind: 'stall' } },
      ]);
      const first = await push({ source: `oci:${img.dir}`, image: `${proxy.host}/keel/resume` }, { timeoutMs: 6000 });
      expect(first.code).not.toBe(0);
      proxy.setRules([]);
      const blobs = [manifest.config, ...manifest.layers];
      const present: string[] = [];
      for (const b of blobs) {
        const res = await fetch(`${reg.url}/v2/keel/resume/blobs/${b.digest}`, { method: 'HEAD' });
        if (res.status === 200) present.push(b.digest);
      }
      expect(present).not.toContain(victim);
      expect(present.length).toBeGreaterThanOrEqual(1);
      const missingBytes = blobs.filter((b) => !present.includes(b.digest)).reduce((n, b) => n + b.size, 0);
      proxy.reset();
      const second = await push({ source: `oci:${img.dir}`, image: `${proxy.host}/keel/resume` });
      expect(errors(second)).toEqual([]);
      const blobBytes = proxy.log.filter((e) => /\/blobs\/uploads\//.test(e.path)).reduce((n, e) => n + e.bytesUp, 0);
      expect(blobBytes).toBe(missingBytes);
      expect(skopeoDigest(`${reg.host}/keel/resume:candidate`)).toBe(img.digest);
    });

    it('re-pushing an unchanged image uploads no blob bytes', async () => {
      const img = makeOciImage(tmpdir(), { randomBytes: 500_000 });
      await push({ source: `oci:${img.dir}`, image: `${proxy.host}/keel/again` });
      proxy.reset();
      const r = await push({ source: `oci:${img.dir}`, image: `${proxy.host}/keel/again` });
      expect(errors(r)).toEqual([]);
      expect(proxy.log.filter((e) => /\/blobs\/uploads\//.test(e.path))).toHaveLength(0);
      expect(proxy.bytesUp()).toBeLessThan(5000);
    });
  });
});
