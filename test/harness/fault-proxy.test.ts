// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RegistryClient } from '../../actions/lib/oci/client.js';
import { request } from '../../actions/lib/http.js';
import { memoryLogger } from '../../actions/lib/log.js';
import { retryPolicy } from '../../actions/lib/retry.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { startRegistry, type Registry } from './registry.js';
import { makeOciImage, skopeoPush, tmpdir } from './tools.js';

describe('fault proxy in front of a real registry', () => {
  let reg: Registry;
  let proxy: FaultProxy;
  let digest: string;
  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    const img = makeOciImage(tmpdir());
    digest = skopeoPush(`oci:${img.dir}:latest`, `${reg.host}/fp/img:v1`);
  });
  afterAll(async () => {
    await proxy.close();
    await reg.stop();
  });

  it('answers the injected 503 once, and the client retry gets through', async () => {
    proxy.reset();
    proxy.setRules([
      { method: 'HEAD', path: /\/manifests\/v1$/, times: 1, action: { kind: 'status', status: 503, retryAfter: 0 } },
    ]);
    const log = memoryLogger();
    const client = new RegistryClient({
      registry: proxy.host,
      tlsVerify: false,
      log,
      retry: retryPolicy({ baseMs: 10 }),
    });
    const head = await client.headManifest('fp/img', 'v1');
    expect(head?.digest).toBe(digest);
    const heads = proxy.log.filter((e) => e.method === 'HEAD' && e.path.endsWith('/manifests/v1'));
    expect(heads.map((e) => e.status)).toEqual([503, 200]);
    expect(heads[0]?.fault).toBe('status 503');
    expect(log.lines.some((l) => l.level === 'warning' && /attempt 1\/5 failed .*503/.test(l.message))).toBe(true);
  });

  it('resets a connection and the retry succeeds', async () => {
    proxy.reset();
    proxy.setRules([{ method: 'GET', path: /\/manifests\/v1$/, times: 2, action: { kind: 'reset' } }]);
    const client = new RegistryClient({ registry: proxy.host, tlsVerify: false, retry: retryPolicy({ baseMs: 10 }) });
    const m = await client.getManifest('fp/img', 'v1');
    expect(m.digest).toBe(digest);
    expect(proxy.log.filter((e) => e.fault === 'reset')).toHaveLength(2);
  });

  it('a stalled request is cut by the idle timeout (the proxy holds it)', async () => {
    proxy.reset();
    proxy.setRules([{ path: /\/v2\/$/, times: 1, action: { kind: 'stall', ms: 500 } }]);
    const t0 = Date.now();
    const err = await request({ method: 'GET', url: `${proxy.url}/v2/`, idleTimeoutMs: 200 }).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('ETIMEDOUT');
    expect(Date.now() - t0).toBeLessThan(450);
    const ok = await request({ method: 'GET', url: `${proxy.url}/v2/` });
    await ok.drain();
    expect(ok.status).toBe(200);
  });
});
