// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { silentLogger } from '../../actions/lib/log.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { connect } from '../../actions/lib/registry.js';
import { renderClientConfig } from '../../actions/lib/sign/client-config.js';
import { readSignatureManifest } from '../../actions/lib/sign/legacy.js';
import { ANNOTATION_BUNDLE, ANNOTATION_CERTIFICATE, ANNOTATION_SIGNATURE } from '../../actions/lib/sign/payload.js';
import { keygen } from '../../cli/commands/keygen.js';
import { freePort, waitFor } from '../harness/net.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { makeOciImage, skopeoPush, tmpdir } from '../harness/tools.js';
import { fetchVerifiers, runTool, skopeoPolicyCopy, type Verifiers } from '../harness/verifiers.js';

/**
 * Keyless signing offline: a local Fulcio + Rekor (v1) stand-in built from @sigstore/mock's
 * request handlers (a real CA issuing real certificates, a real log signing real SETs) served
 * over HTTP in a child process, and a GitHub-Actions-shaped OIDC token in SIGSTORE_ID_TOKEN.
 * The bundled action talks to them exactly as it would to fulcio.sigstore.dev/rekor.sigstore.dev.
 * cosign 2.5 then verifies the keyless signature against the stand-in's CA and Rekor key, and
 * skopeo shows why bootc clients need the key: containers/image's fulcio policy can only match
 * an email, and a GitHub workflow identity is a URI.
 */
const STANDIN = String.raw`
const http = require('node:http');
const crypto = require('node:crypto');
const { fulcioHandler, initializeCA } = require('@sigstore/mock/dist/fulcio/index.js');
const { rekorHandler, initializeTLog } = require('@sigstore/mock/dist/rekor/index.js');
(async () => {
  const port = Number(process.argv[1]);
  const url = 'http://127.0.0.1:' + port;
  const kp = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caKey = kp(), tlogKey = kp();
  const ca = await initializeCA(caKey);
  const tlog = await initializeTLog(url, tlogKey);
  const handlers = [fulcioHandler(ca), rekorHandler(tlog)];
  let requests = 0;
  http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', async () => {
      if (req.url === '/keys') {
        res.end(JSON.stringify({ requests, root: new crypto.X509Certificate(ca.rootCertificate).toString(),
          rekor: tlogKey.publicKey.export({ format: 'pem', type: 'spki' }) }));
        return;
      }
      const h = handlers.find((x) => req.method === 'POST' && req.url === x.path);
      if (!h) { res.writeHead(404); res.end(); return; }
      requests++;
      const r = await h.fn(body);
      res.writeHead(r.statusCode, { 'content-type': r.contentType || 'text/plain' });
      res.end(r.response);
    });
  }).listen(port, '127.0.0.1');
})();
`;

const ISSUER = 'https://token.actions.githubusercontent.com';
const SUBJECT = 'https://github.com/acme/keel-os/.github/workflows/release.yml@refs/heads/main';

function fakeGithubToken(): string {
  const b64u = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${b64u({ alg: 'RS256', typ: 'JWT' })}.${b64u({ iss: ISSUER, sub: SUBJECT, aud: 'sigstore', iat: now, exp: now + 600, repository: 'acme/keel-os', workflow: 'release', ref: 'refs/heads/main', sha: 'a'.repeat(40), event_name: 'push' })}.${Buffer.from('not-verified-by-the-stand-in').toString('base64url')}`;
}

describe('sign keyless (local Fulcio/Rekor stand-in from @sigstore/mock)', () => {
  let reg: Registry;
  let v: Verifiers;
  let dir: string;
  let repo: string;
  let standin: ChildProcess;
  let url: string;
  let root: string;
  let rekorPub: string;
  const token = fakeGithubToken();
  const standinRequests = async () => ((await (await fetch(`${url}/keys`)).json()) as { requests: number }).requests;

  beforeAll(async () => {
    v = fetchVerifiers();
    reg = await startRegistry();
    dir = tmpdir('keel-keyless-');
    repo = `${reg.host}/distro/os`;
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    standin = spawn(process.execPath, ['-e', STANDIN, String(port)], {
      cwd: path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..'),
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await waitFor(async () => (await fetch(`${url}/keys`)).ok, 15_000, 'the Fulcio/Rekor stand-in');
    const keys = (await (await fetch(`${url}/keys`)).json()) as { root: string; rekor: string };
    root = path.join(dir, 'fulcio-root.pem');
    rekorPub = path.join(dir, 'rekor.pub');
    fs.writeFileSync(root, keys.root);
    fs.writeFileSync(rekorPub, keys.rekor);
  }, 600_000);

  afterAll(async () => {
    standin?.kill();
    await reg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const signKeyless = (digest: string, inputs: Record<string, string> = {}) =>
    runAction({
      action: 'sign',
      inputs: {
        'image-ref': `${repo}@${digest}`,
        'fulcio-url': url,
        'rekor-url': url,
        'tls-verify': 'false',
        ...inputs,
      },
      env: { SIGSTORE_ID_TOKEN: token },
    });

  it('writes cosign keyless annotations (signature, Fulcio certificate, Rekor SET) that cosign verifies by identity', async () => {
    const tag = 'keyless';
    const digest = skopeoPush(`oci:${makeOciImage(path.join(dir, tag)).dir}:latest`, `${repo}:${tag}`);
    const r = await signKeyless(digest);
    expect(errors(r)).toEqual([]);
    expect(r.outputs.verified).toBe('true');
    expect(warnings(r).join('\n')).toMatch(/cannot enforce GitHub keyless identities/);
    const client = connect(parseReference(`${repo}:x`), { 'tls-verify': false }, silentLogger);
    const sm = await readSignatureManifest(client, 'distro/os', digest);
    const ann = sm!.layers[0]!.descriptor.annotations!;
    expect(Object.keys(ann).sort()).toEqual([ANNOTATION_SIGNATURE, ANNOTATION_BUNDLE, ANNOTATION_CERTIFICATE].sort());
    const cert = new crypto.X509Certificate(ann[ANNOTATION_CERTIFICATE]!);
    expect(cert.subjectAltName).toBe(`URI:${SUBJECT}`);
    expect(cert.verify(new crypto.X509Certificate(fs.readFileSync(root)).publicKey)).toBe(true);
    const set = JSON.parse(ann[ANNOTATION_BUNDLE]!) as {
      SignedEntryTimestamp: string;
      Payload: { body: string; logID: string };
    };
    expect(JSON.parse(Buffer.from(set.Payload.body, 'base64').toString())).toMatchObject({
      kind: 'hashedrekord',
      apiVersion: '0.0.1',
    });
    const cosign = (identity: string) =>
      runTool(
        v.cosign,
        [
          'verify',
          '--allow-http-registry',
          '--certificate-chain',
          root,
          '--insecure-ignore-sct=true',
          '--certificate-identity',
          identity,
          '--certificate-oidc-issuer',
          ISSUER,
          `${repo}@${digest}`,
        ],
        { env: { HOME: dir, SIGSTORE_REKOR_PUBLIC_KEY: rekorPub } },
      );
    const ok = cosign(SUBJECT);
    expect([ok.ok, ok.stderr.slice(-300)]).toEqual([true, expect.anything()]);
    expect(ok.stderr).toContain(
      'The code-signing certificate was verified using trusted certificate authority certificates',
    );
    expect(cosign('https://github.com/evil/fork/.github/workflows/release.yml@refs/heads/main').ok).toBe(false);

    // containers/image's fulcio policy matches only subjectEmail: a GitHub URI identity cannot pass.
    const policy = path.join(dir, 'keyless-policy.json');
    fs.writeFileSync(
      policy,
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: {
          docker: {
            [repo]: [
              {
                type: 'sigstoreSigned',
                fulcio: { caPath: root, oidcIssuer: ISSUER, subjectEmail: 'release@acme.example' },
                rekorPublicKeyPath: rekorPub,
                signedIdentity: { type: 'matchRepository' },
              },
            ],
          },
          dir: { '': [{ type: 'insecureAcceptAnything' }] },
        },
      }),
    );
    const rd = path.join(dir, 'rd');
    fs.mkdirSync(rd, { recursive: true });
    fs.writeFileSync(path.join(rd, 'k.yaml'), renderClientConfig({ image: repo }).registriesD);
    const s = skopeoPolicyCopy(v.skopeo, {
      policy,
      registriesD: rd,
      image: `${repo}:${tag}`,
      dest: path.join(dir, 'out'),
    });
    expect(s.ok).toBe(false);
    // CA chain and Rekor SET are fine; only the identity cannot be expressed (the cert has no email).
    expect(s.stderr).toMatch(/Required email \\?"release@acme.example\\?" not found \(got \[\]\)/);
  });

  it('mode both (+ format both): key and keyless layers, bundle referrers; skopeo enforces the key; re-running asks Fulcio once and Rekor never', async () => {
    const tag = 'both';
    const digest = skopeoPush(`oci:${makeOciImage(path.join(dir, tag)).dir}:latest`, `${repo}:${tag}`);
    const k = await keygen({ outPrefix: path.join(dir, 'k'), password: 'pw' });
    const inputs = {
      mode: 'both',
      format: 'both',
      'private-key': fs.readFileSync(k.privateKeyPath, 'utf8'),
      password: 'pw',
    };
    const r = await signKeyless(digest, inputs);
    expect(errors(r)).toEqual([]);
    expect(r.outputs.verified).toBe('true');
    expect(r.outputs['signature-refs']!.split('\n')).toHaveLength(3); // .sig + two bundle referrers
    const client = connect(parseReference(`${repo}:x`), { 'tls-verify': false }, silentLogger);
    expect((await readSignatureManifest(client, 'distro/os', digest))!.layers).toHaveLength(2);
    const cfg = renderClientConfig({ image: repo, keyPath: k.publicKeyPath });
    const policy = path.join(dir, 'key-policy.json');
    fs.writeFileSync(policy, JSON.stringify(cfg.policy));
    const rd = path.join(dir, 'rd2');
    fs.mkdirSync(rd, { recursive: true });
    fs.writeFileSync(path.join(rd, 'k.yaml'), cfg.registriesD);
    expect(
      skopeoPolicyCopy(v.skopeo, { policy, registriesD: rd, image: `${repo}:${tag}`, dest: path.join(dir, 'out') }).ok,
    ).toBe(true);

    const before = await standinRequests();
    const again = await signKeyless(digest, inputs);
    expect(errors(again)).toEqual([]);
    expect(await standinRequests()).toBe(before + 1); // the certificate only; nothing new in the log
    expect(again.outputs['signature-refs']).toBe(r.outputs['signature-refs']);
    expect((await readSignatureManifest(client, 'distro/os', digest))!.layers).toHaveLength(2);
  });

  it('without an OIDC token, keyless fails saying what permission is missing', async () => {
    const digest = skopeoPush(`oci:${makeOciImage(path.join(dir, 'notoken')).dir}:latest`, `${repo}:notoken`);
    const r = await runAction({
      action: 'sign',
      inputs: {
        'image-ref': `${repo}@${digest}`,
        mode: 'keyless',
        'fulcio-url': url,
        'rekor-url': url,
        'tls-verify': 'false',
      },
      env: {
        SIGSTORE_ID_TOKEN: undefined,
        ACTIONS_ID_TOKEN_REQUEST_URL: undefined,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: undefined,
      },
    });
    expect(r.code).toBe(1);
    expect(errors(r)[0]).toMatch(/keyless signing needs an OIDC token: give the job 'permissions: id-token: write'/);
  });
});
