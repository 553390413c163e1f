// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { memoryLogger } from '../../actions/lib/log.js';
import { RegistryClient, sha256 } from '../../actions/lib/oci/client.js';
import { retryPolicy } from '../../actions/lib/retry.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { startTokenServer, type TokenServer } from '../harness/token-server.js';
import { makeOciImage, skopeoPush, tmpdir } from '../harness/tools.js';

describe('RegistryClient write path', () => {
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

  const blob = crypto.randomBytes(300_000);
  const desc = { digest: sha256(blob), size: blob.length };
  const open = (start: number) => Readable.from([blob.subarray(start)]);

  it('uploads in PATCH chunks and resumes from the registry offset after a mid-chunk reset', async () => {
    proxy.reset();
    proxy.setRules([{ method: 'PATCH', skip: 1, times: 1, action: { kind: 'reset-after', bytes: 30_000 } }]);
    const log = memoryLogger();
    const c = new RegistryClient({
      registry: proxy.host,
      tlsVerify: false,
      chunkSize: 64 * 1024,
      log,
      retry: retryPolicy({ baseMs: 5 }),
    });
    expect(await c.pushBlob('t/chunked', desc, open)).toBe('uploaded');
    const patches = proxy.log.filter((e) => e.method === 'PATCH');
    // 5 chunks of 64 KiB, one cut short and repeated: far less than a restart from byte 0.
    expect(patches.length).toBe(Math.ceil(blob.length / 65536) + 1);
    expect(proxy.bytesUp()).toBeLessThan(blob.length + 64 * 1024 + 1);
    expect(await c.blobSize('t/chunked', desc.digest)).toBe(blob.length);
    expect((await c.getBlob('t/chunked', desc.digest)).equals(blob)).toBe(true);
  });

  it('skips a blob the registry already has, and mounts across repositories', async () => {
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false });
    expect(await c.pushBlob('t/chunked', desc, open)).toBe('skipped');
    expect(await c.pushBlob('t/other', desc, open, ['t/chunked'])).toBe('mounted');
    expect(c.stats.bytesUploaded).toBe(0);
  });

  it('refuses manifest bytes that do not match the requested digest', async () => {
    const img = makeOciImage(tmpdir());
    const d = skopeoPush(`oci:${img.dir}:latest`, `${reg.host}/t/m:v1`);
    proxy.reset();
    proxy.setRules([
      {
        method: 'GET',
        path: /\/manifests\/sha256:/,
        action: {
          kind: 'status',
          status: 200,
          body: '{"schemaVersion":2,"tampered":true}',
          headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        },
      },
    ]);
    const c = new RegistryClient({
      registry: proxy.host,
      tlsVerify: false,
      retry: retryPolicy({ attempts: 2, baseMs: 1 }),
    });
    await expect(c.getManifest('t/m', d)).rejects.toThrow(/registry returned bytes with digest .* for t\/m@sha256/);
    proxy.setRules([]);
  });
});

describe('RegistryClient Bearer token flow (real registry in token mode)', () => {
  let tokens: TokenServer;
  let reg: Registry;
  let digest: string;
  beforeAll(async () => {
    tokens = await startTokenServer({ keel: 'tok-pass' }, { anonymousPull: true });
    reg = await startRegistry({
      token: {
        realm: tokens.realm,
        service: tokens.service,
        issuer: tokens.issuer,
        rootCertBundle: tokens.rootCertBundle,
      },
    });
    const img = makeOciImage(tmpdir());
    digest = img.digest;
    const c = new RegistryClient({
      registry: reg.host,
      tlsVerify: false,
      credentials: { username: 'keel', password: 'tok-pass', source: 'test' },
    });
    const { planFromLayout, pushPlan } = await import('../../actions/lib/oci/push.js');
    const { OciLayout } = await import('../../actions/lib/oci/layout.js');
    const layout = OciLayout.open(img.dir);
    await pushPlan(c, 'org/img', layout, planFromLayout(layout), { tags: ['v1'], log: memoryLogger() });
  });
  afterAll(async () => {
    await reg.stop();
    await tokens.close();
  });

  it('pushes with credentials exchanged for a scoped token', () => {
    const pushes = tokens.requests.filter((r) => r.scope.some((s) => s.endsWith(':pull,push')));
    expect(pushes.length).toBeGreaterThan(0);
    expect(pushes.every((r) => r.user === 'keel')).toBe(true);
  });

  it('reads anonymously with a pull-only token', async () => {
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false });
    expect((await c.headManifest('org/img', 'v1'))?.digest).toBe(digest);
  });

  it('fails at once when the token server rejects the credentials', async () => {
    const before = tokens.requests.length;
    const c = new RegistryClient({
      registry: reg.host,
      tlsVerify: false,
      credentials: { username: 'keel', password: 'bad', source: 'inputs' },
    });
    await expect(c.headManifest('org/img', 'v1')).rejects.toThrow(
      /authentication failed for 127\.0\.0\.1:\d+ as 'keel'/,
    );
    expect(tokens.requests.length).toBe(before);
  });

  it('anonymous push is refused with a clear message', async () => {
    const c = new RegistryClient({ registry: reg.host, tlsVerify: false });
    await expect(
      c.putManifest('org/img', 'v2', Buffer.from('{}'), 'application/vnd.oci.image.manifest.v1+json'),
    ).rejects.toThrow(/requires authentication/);
  });
});
