// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { request } from '../../actions/lib/http.js';
import { memoryLogger } from '../../actions/lib/log.js';
import { RegistryClient, sha256 } from '../../actions/lib/oci/client.js';
import { retryPolicy } from '../../actions/lib/retry.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { nonLoopbackAddress } from '../harness/net.js';
import { selfSignedCert, startRecordingServer, type RecordingServer } from '../harness/recording-server.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction } from '../harness/run-action.js';
import { startTokenServer, type TokenServer } from '../harness/token-server.js';
import { makeOciImage, skopeoPush, tmpdir } from '../harness/tools.js';

/**
 * Where registry credentials may travel (lib/transport.ts), checked against real servers that
 * record what reaches them: a registry that is not loopback is never contacted over plain http
 * unless listed, a token realm must be https when TLS is verified, and neither a redirect nor an
 * upload location can steer the Authorization header to another host or onto plain http.
 */
const CREDS = { username: 'keel', password: 'pw-not-for-strangers' };
const basic = `Basic ${Buffer.from(`${CREDS.username}:${CREDS.password}`).toString('base64')}`;
const fast = retryPolicy({ attempts: 2, baseMs: 5 });

describe('plain http to a registry that is not loopback', () => {
  let reg: Registry;
  let remote: FaultProxy;
  let digest: string;
  beforeAll(async () => {
    reg = await startRegistry();
    // The real registry, reachable on an address of this machine that is not loopback.
    remote = await startFaultProxy(reg.url, { address: nonLoopbackAddress() });
    digest = skopeoPush(`oci:${makeOciImage(tmpdir()).dir}:latest`, `${reg.host}/keel/t:v1`);
  });
  afterAll(async () => {
    await remote?.close();
    await reg?.stop();
  });

  it('is refused before any connection, naming tls-verify (client and bundle)', async () => {
    remote.reset();
    expect(
      () =>
        new RegistryClient({
          registry: remote.host,
          tlsVerify: false,
          credentials: { ...CREDS, source: 'test' },
        }),
    ).toThrow(/^Input 'tls-verify' has value "false": tls-verify is false but .* is not a loopback address/);
    const r = await runAction({
      action: 'resolve',
      inputs: { image: `${remote.host}/keel/t:v1`, 'tls-verify': 'false', ...CREDS },
    });
    expect(r.code).toBe(1);
    expect(errors(r)[0]).toMatch(
      new RegExp(`^Input 'tls-verify' has value "false": tls-verify is false but ${remote.host} is not a loopback`),
    );
    expect(remote.connections()).toBe(0);
    expect(remote.log).toEqual([]);
  });

  it('is used when listed in insecure-registries', async () => {
    remote.reset();
    const r = await runAction({
      action: 'resolve',
      inputs: { image: `${remote.host}/keel/t:v1`, 'tls-verify': 'false', 'insecure-registries': remote.host },
    });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.digest).toBe(digest);
    expect(remote.log.length).toBeGreaterThan(0);
  });
});

describe('token realms', () => {
  it('an http realm is refused when TLS is verified: the token endpoint hears nothing', async () => {
    const tls = selfSignedCert();
    const tokenEndpoint = await startRecordingServer((_q, res) => res.end('{"token":"t"}'));
    const registry = await startRecordingServer(
      (_q, res) => {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="http://127.0.0.1:${tokenEndpoint.port}/token",service="s"`,
        });
        res.end();
      },
      { tls },
    );
    try {
      const r = await runAction({
        action: 'resolve',
        inputs: { image: `127.0.0.1:${registry.port}/keel/t:v1`, ...CREDS },
        // The registry's certificate is trusted: TLS is verified, and that is what makes http a downgrade.
        env: { NODE_EXTRA_CA_CERTS: tls.certPath },
      });
      expect(r.code).toBe(1);
      expect(errors(r)[0]).toMatch(
        /the token realm http:\/\/127\.0\.0\.1:\d+ is not https: refusing to send credentials/,
      );
      expect(registry.requests.length).toBeGreaterThan(0);
      expect(registry.requests.every((q) => q.scheme === 'https')).toBe(true);
      expect(tokenEndpoint.connections()).toBe(0);
    } finally {
      await registry.close();
      await tokenEndpoint.close();
    }
  });

  describe('a loopback registry (tls-verify false) whose realm is plain http on another host', () => {
    let tokens: TokenServer;
    let remoteTokens: FaultProxy;
    let reg: Registry;
    beforeAll(async () => {
      tokens = await startTokenServer({ [CREDS.username]: CREDS.password }, { anonymousPull: true });
      remoteTokens = await startFaultProxy(tokens.realm.replace(/\/token$/, ''), { address: nonLoopbackAddress() });
      reg = await startRegistry({
        token: {
          realm: `${remoteTokens.url}/token`,
          service: tokens.service,
          issuer: tokens.issuer,
          rootCertBundle: tokens.rootCertBundle,
        },
      });
    });
    afterAll(async () => {
      await reg?.stop();
      await remoteTokens?.close();
      await tokens?.close();
    });

    it('never receives the credentials, and is used once listed', async () => {
      remoteTokens.reset();
      const c = new RegistryClient({
        registry: reg.host,
        tlsVerify: false,
        credentials: { ...CREDS, source: 'test' },
        retry: fast,
      });
      await expect(c.headManifest('keel/t', 'v1')).rejects.toThrow(
        new RegExp(`the token realm ${remoteTokens.url.replace(/\./g, '\\.')} is not https`),
      );
      expect(remoteTokens.connections()).toBe(0);
      expect(tokens.requests).toEqual([]);

      const listed = new RegistryClient({
        registry: reg.host,
        tlsVerify: false,
        insecureRegistries: [remoteTokens.host],
        credentials: { ...CREDS, source: 'test' },
        retry: fast,
      });
      expect(await listed.headManifest('keel/t', 'v1')).toBeUndefined();
      expect(tokens.requests.map((q) => q.user)).toContain(CREDS.username);
    });
  });
});

/**
 * A Basic-auth registry stand-in on 127.0.0.1 whose blobs live on a "storage host": the same
 * machine addressed as localhost on another port (another host by name and port).
 */
describe('Authorization never follows the registry to another host or onto plain http', () => {
  const blob = crypto.randomBytes(50_000);
  const digest = sha256(blob);
  let storage: RecordingServer;
  let registry: RecordingServer;
  beforeAll(async () => {
    storage = await startRecordingServer((req, res) => {
      if (req.url === '/challenge') {
        // A 401 from the other host, with its own realm: the credentials must not go there either.
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://localhost:${storage.port}/token"` });
        return res.end();
      }
      if (req.method === 'PUT') {
        req.resume();
        res.writeHead(201, { 'docker-content-digest': digest });
        return res.end();
      }
      res.writeHead(200, { 'content-length': String(blob.length) });
      res.end(blob);
    });
    registry = await startRecordingServer((req, res) => {
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="keel-test"' });
        return res.end();
      }
      const u = req.url ?? '';
      if (req.method === 'GET' && u.includes('/blobs/sha256:'))
        res.writeHead(307, {
          location: `http://localhost:${storage.port}/${u.includes('/t/bad/') ? 'challenge' : 'b'}`,
        });
      else if (req.method === 'HEAD' && u.includes('/blobs/')) res.writeHead(404);
      else if (req.method === 'POST' && u.includes('/blobs/uploads/'))
        res.writeHead(202, { location: `http://localhost:${storage.port}/upload/1` });
      else res.writeHead(404);
      res.end();
    });
  });
  afterAll(async () => {
    await registry?.close();
    await storage?.close();
  });
  const client = () =>
    new RegistryClient({
      registry: `127.0.0.1:${registry.port}`,
      tlsVerify: false,
      credentials: { ...CREDS, source: 'test' },
      retry: fast,
      log: memoryLogger(),
    });

  it('a blob redirected to a storage host downloads (digest verified) without the header', async () => {
    storage.requests.length = 0;
    expect((await client().getBlob('t/img', digest)).equals(blob)).toBe(true);
    expect(registry.requests.some((q) => q.headers.authorization === basic)).toBe(true);
    expect(storage.requests.map((q) => [q.path, q.headers.authorization])).toEqual([['/b', undefined]]);
  });

  it("a 401 challenge from the redirect target is not the registry's: no token request, no credentials", async () => {
    // A client that already authenticated to the registry (Basic is on from the first request).
    const c = client();
    await c.getBlob('t/img', digest);
    storage.requests.length = 0;
    await expect(c.getBlob('t/bad', digest)).rejects.toThrow(/HTTP 401/);
    expect(storage.requests.filter((q) => q.path.startsWith('/token'))).toEqual([]);
    expect(storage.requests.every((q) => q.headers.authorization === undefined)).toBe(true);
  });

  it('an upload location on another host gets the body but not the credentials', async () => {
    storage.requests.length = 0;
    expect(await client().pushBlob('t/img', { digest, size: blob.length }, () => Readable.from([blob]))).toBe(
      'uploaded',
    );
    const put = storage.requests.find((q) => q.method === 'PUT');
    expect(put?.path).toMatch(/^\/upload\/1\?digest=sha256%3A[0-9a-f]{64}$/);
    expect(put?.headers.authorization).toBeUndefined();
  });

  it('a redirect from https to plain http on the same host and port drops the header', async () => {
    const tls = selfSignedCert();
    const both = await startRecordingServer(
      (req, res, scheme) => {
        if (scheme === 'https') {
          res.writeHead(302, { location: `http://127.0.0.1:${both.port}/after` });
          return res.end();
        }
        res.end('plain');
      },
      { tls },
    );
    try {
      const res = await request({
        method: 'GET',
        url: `https://127.0.0.1:${both.port}/before`,
        headers: { authorization: 'Bearer registry-token' },
        insecureTls: true,
      });
      expect(await res.text()).toBe('plain');
      expect(both.requests.map((q) => [q.scheme, q.path, q.headers.authorization])).toEqual([
        ['https', '/before', 'Bearer registry-token'],
        ['http', '/after', undefined],
      ]);
    } finally {
      await both.close();
    }
  });
});

describe('option-like values never reach podman as options', () => {
  it('validate refuses containers-storage:-x naming the input, and podman is never run', async () => {
    const shim = tmpdir('keel-shim-');
    const calls = path.join(shim, 'calls');
    for (const tool of ['podman', 'skopeo']) {
      fs.writeFileSync(path.join(shim, tool), `#!/bin/sh\necho "${tool} $*" >> ${calls}\nexit 1\n`, { mode: 0o755 });
    }
    const r = await runAction({
      action: 'validate',
      inputs: { image: 'containers-storage:--help' },
      env: { PATH: `${shim}:${process.env.PATH ?? ''}` },
    });
    expect(r.code).toBe(1);
    expect(errors(r)[0]).toMatch(
      /^Input 'image' has value "containers-storage:--help": .*a local image name cannot be empty or start with -/,
    );
    expect(fs.existsSync(calls)).toBe(false);
  });
});
