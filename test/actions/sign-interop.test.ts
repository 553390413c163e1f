// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { keygen } from '../../cli/commands/keygen.js';
import { policy } from '../../cli/commands/policy.js';
import { parseEncryptedKey } from '../../actions/lib/sign/keys.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction } from '../harness/run-action.js';
import { makeOciImage, skopeoPush, tmpdir } from '../harness/tools.js';
import { cosignVerify, fetchVerifiers, runTool, skopeoPolicyCopy, type Verifiers } from '../harness/verifiers.js';

/**
 * Keys and signatures interoperate both ways with the real tools:
 *  - keys made by `cosign generate-key-pair` (2.x, 3.x) and `skopeo generate-sigstore-key` sign
 *    with Keel, and cosign, skopeo and Keel verify the result;
 *  - Keel's keys (default and compat) sign with cosign 2 and 3, and Keel verifies cosign's
 *    signatures (legacy and cosign 3's default bundle).
 */
describe('key and signature interop with cosign 2/3 and skopeo', () => {
  let reg: Registry;
  let v: Verifiers;
  let dir: string;
  let home: string;
  let repo: string;
  const PW = 'interop-pw';
  let n = 0;

  const push = () => {
    const tag = `i${++n}`;
    return { tag, digest: skopeoPush(`oci:${makeOciImage(path.join(dir, tag)).dir}:latest`, `${repo}:${tag}`) };
  };
  const keelVerify = (image: string, pub: string, extra: Record<string, string> = {}) =>
    runAction({ action: 'verify', inputs: { 'image-ref': image, 'public-key': pub, 'tls-verify': 'false', ...extra } });
  /** skopeo 1.18 and 1.22 under the client policy generated for `pub`. */
  async function clientAccepts(image: string, pub: string): Promise<boolean[]> {
    const out = path.join(dir, `client-${++n}`);
    await policy({ image: repo, publicKeyPath: pub, outDir: out, keyPath: pub });
    return [v.skopeo, v.skopeoSid!].map(
      (bin) =>
        skopeoPolicyCopy(bin, {
          policy: path.join(out, 'etc/containers/policy.json'),
          registriesD: path.join(out, 'etc/containers/registries.d'),
          image,
          dest: path.join(dir, 'out'),
        }).ok,
    );
  }
  const cosignSign = (bin: string, key: string, image: string, extra: string[] = []) =>
    runTool(bin, ['sign', '--key', key, '--tlog-upload=false', '--allow-http-registry', '--yes', ...extra, image], {
      env: { HOME: home, COSIGN_PASSWORD: PW },
    });
  const COSIGN3_LEGACY = ['--new-bundle-format=false', '--use-signing-config=false'];

  beforeAll(async () => {
    v = fetchVerifiers({ sid: true });
    reg = await startRegistry();
    dir = tmpdir('keel-interop-');
    home = path.join(dir, 'home');
    fs.mkdirSync(home);
    repo = `${reg.host}/distro/os`;
  }, 600_000);

  afterAll(async () => {
    await reg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['cosign 2.x generate-key-pair', 'cosign'],
    ['cosign 3.x generate-key-pair', 'cosign3'],
    ['skopeo generate-sigstore-key (ENCRYPTED COSIGN PRIVATE KEY)', 'skopeo'],
  ])('a key made by %s signs with Keel; cosign 2, cosign 3, skopeo and Keel verify', async (_what, tool) => {
    const prefix = path.join(dir, `k-${tool}`);
    let keyFile: string;
    if (tool === 'skopeo') {
      fs.writeFileSync(path.join(dir, 'pass.txt'), PW);
      const g = runTool(v.skopeo, [
        'generate-sigstore-key',
        '--output-prefix',
        prefix,
        '--passphrase-file',
        path.join(dir, 'pass.txt'),
      ]);
      expect(g.stderr + g.stdout).toMatch(/written/i);
      keyFile = `${prefix}.private`;
      expect(parseEncryptedKey(fs.readFileSync(keyFile, 'utf8')).pemType).toBe('ENCRYPTED COSIGN PRIVATE KEY');
    } else {
      const bin = tool === 'cosign' ? v.cosign : v.cosign3!;
      const g = runTool(bin, ['generate-key-pair', '--output-key-prefix', prefix], {
        env: { HOME: home, COSIGN_PASSWORD: PW },
      });
      expect(g.ok).toBe(true);
      keyFile = `${prefix}.key`;
      expect(parseEncryptedKey(fs.readFileSync(keyFile, 'utf8')).pemType).toBe('ENCRYPTED SIGSTORE PRIVATE KEY');
    }
    const pub = `${prefix}.pub`;
    const { tag, digest } = push();
    const r = await runAction({
      action: 'sign',
      inputs: {
        'image-ref': `${repo}@${digest}`,
        'private-key': fs.readFileSync(keyFile, 'utf8'),
        password: PW,
        'public-key': pub,
        'tls-verify': 'false',
      },
    });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.verified).toBe('true');
    expect(cosignVerify(v.cosign, `${repo}@${digest}`, pub, home).ok).toBe(true);
    expect(cosignVerify(v.cosign3!, `${repo}@${digest}`, pub, home).ok).toBe(true);
    expect(await clientAccepts(`${repo}:${tag}`, pub)).toEqual([true, true]);
    expect((await keelVerify(`${repo}@${digest}`, pub)).outputs.verified).toBe('true');
  });

  it.each([
    ['default (SIGSTORE, N=65536)', 'cosign 2', false, []],
    ['compat (COSIGN, N=32768)', 'cosign 2', true, []],
    ['default (SIGSTORE, N=65536)', 'cosign 3 (legacy format)', false, COSIGN3_LEGACY],
    ['compat (COSIGN, N=32768)', 'cosign 3 (legacy format)', true, COSIGN3_LEGACY],
  ])(
    'a Keel key, %s, signs with %s; Keel verifies cosign’s signature, and so do skopeo and cosign',
    async (_what, signer, compat, extra) => {
      const k = await keygen({ outPrefix: path.join(dir, `keel-${++n}`), password: PW, compat: compat as boolean });
      const { tag, digest } = push();
      const bin = signer === 'cosign 2' ? v.cosign : v.cosign3!;
      const s = cosignSign(bin, k.privateKeyPath, `${repo}@${digest}`, extra as string[]);
      expect([s.ok, s.stderr.slice(-500)]).toEqual([true, expect.anything()]);
      const r = await keelVerify(`${repo}@${digest}`, k.publicKeyPath);
      expect(errors(r)).toEqual([]);
      expect(r.outputs.verified).toBe('true');
      // cosign wrote the repo-only identity: the default c/image rule refuses it, matchRepository accepts it
      expect(
        (await keelVerify(`${repo}@${digest}`, k.publicKeyPath, { identity: 'digest', 'fail-on-unverified': 'false' }))
          .outputs.verified,
      ).toBe('false');
      expect(await clientAccepts(`${repo}:${tag}`, k.publicKeyPath)).toEqual([true, true]);
      expect(cosignVerify(bin, `${repo}@${digest}`, k.publicKeyPath, home).ok).toBe(true);
    },
  );

  it("cosign 3's default output (bundle referrer) with a Keel key: Keel verifies the bundle, and like skopeo finds no legacy signature", async () => {
    const k = await keygen({ outPrefix: path.join(dir, `keel-${++n}`), password: PW });
    const { tag, digest } = push();
    const s = cosignSign(v.cosign3!, k.privateKeyPath, `${repo}@${digest}`, ['--use-signing-config=false']);
    expect([s.ok, s.stderr.slice(-500)]).toEqual([true, expect.anything()]);
    const bundle = await keelVerify(`${repo}@${digest}`, k.publicKeyPath, { format: 'bundle' });
    expect(errors(bundle)).toEqual([]);
    expect(bundle.outputs.reason).toBe('1 bundle signature(s) accepted');
    const other = await keygen({ outPrefix: path.join(dir, `keel-${++n}`), password: PW });
    const wrong = await keelVerify(`${repo}@${digest}`, other.publicKeyPath, {
      format: 'bundle',
      'fail-on-unverified': 'false',
    });
    expect(wrong.outputs.verified).toBe('false');
    expect(wrong.outputs.reason).toMatch(/cryptographic signature verification failed/);
    const legacy = await keelVerify(`${repo}@${digest}`, k.publicKeyPath, { 'fail-on-unverified': 'false' });
    expect(legacy.outputs).toMatchObject({
      verified: 'false',
      reason: 'A signature was required, but no signature exists',
    });
    expect(await clientAccepts(`${repo}:${tag}`, k.publicKeyPath)).toEqual([false, false]);
  });
});
