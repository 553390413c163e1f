// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { errors, runAction } from '../harness/run-action.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { makeOciImage, skopeoDigest, skopeoPush, tmpdir } from '../harness/tools.js';

describe('resolve (bundled, driven the runner way, real registry)', () => {
  let reg: Registry;
  let authReg: Registry;
  let digest: string;
  beforeAll(async () => {
    reg = await startRegistry();
    authReg = await startRegistry({ htpasswd: { username: 'keel', password: 's3cret-pw' } });
    const img = makeOciImage(tmpdir());
    digest = skopeoPush(`oci:${img.dir}:latest`, `${reg.host}/distro/os:candidate`);
    // The htpasswd registry gets the same image, pushed with credentials by skopeo.
    const { sh } = await import('../harness/tools.js');
    sh('skopeo', [
      'copy',
      '-q',
      '--dest-tls-verify=false',
      '--dest-creds',
      'keel:s3cret-pw',
      `oci:${img.dir}:latest`,
      `docker://${authReg.host}/distro/os:candidate`,
    ]);
  });
  afterAll(async () => {
    await reg.stop();
    await authReg.stop();
  });

  it('returns the digest skopeo reports, and image-ref = repo@digest', async () => {
    const r = await runAction({
      action: 'resolve',
      inputs: { image: `${reg.host}/distro/os:candidate`, 'tls-verify': 'false' },
    });
    expect(errors(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.outputs.digest).toBe(skopeoDigest(`${reg.host}/distro/os:candidate`));
    expect(r.outputs.digest).toBe(digest);
    expect(r.outputs['image-ref']).toBe(`${reg.host}/distro/os@${digest}`);
    expect(r.outputs.repository).toBe(`${reg.host}/distro/os`);
    expect(r.summary).toContain(digest);
  });

  it('accepts a digest reference and confirms it exists', async () => {
    const r = await runAction({
      action: 'resolve',
      inputs: { image: `${reg.host}/distro/os@${digest}`, 'tls-verify': 'false' },
    });
    expect(r.code).toBe(0);
    expect(r.outputs.digest).toBe(digest);
  });

  it('works against an htpasswd registry with username/password, masking the password', async () => {
    const r = await runAction({
      action: 'resolve',
      inputs: {
        image: `${authReg.host}/distro/os:candidate`,
        'tls-verify': 'false',
        username: 'keel',
        password: 's3cret-pw',
      },
    });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.digest).toBe(digest);
    expect(r.masked).toContain('s3cret-pw');
    expect(r.stdout.replace(/::add-mask::.*\n/g, '')).not.toContain('s3cret-pw');
  });

  it('reads credentials from the containers auth file when no inputs are given', async () => {
    const dir = tmpdir();
    const authFile = path.join(dir, 'auth.json');
    fs.writeFileSync(
      authFile,
      JSON.stringify({ auths: { [authReg.host]: { auth: Buffer.from('keel:s3cret-pw').toString('base64') } } }),
    );
    const r = await runAction({
      action: 'resolve',
      inputs: { image: `${authReg.host}/distro/os:candidate`, 'tls-verify': 'false' },
      env: { REGISTRY_AUTH_FILE: authFile },
    });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.digest).toBe(digest);
  });

  it('fails at once with a clear message on a wrong password', async () => {
    const r = await runAction({
      action: 'resolve',
      inputs: {
        image: `${authReg.host}/distro/os:candidate`,
        'tls-verify': 'false',
        username: 'keel',
        password: 'wrong',
      },
    });
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(
      /authentication failed for 127\.0\.0\.1:\d+ as 'keel' \(credentials from inputs\)/,
    );
    // Not retried: an auth failure is permanent.
    expect(r.stdout).not.toMatch(/retrying/);
    expect(r.ms).toBeLessThan(5000);
  });

  it('fails naming the input on a malformed reference, before any request', async () => {
    const r = await runAction({
      action: 'resolve',
      inputs: { image: `${reg.host}/Distro/OS:candidate`, 'tls-verify': 'false' },
    });
    expect(r.code).toBe(1);
    expect(errors(r)).toEqual([
      `Input 'image' has value "${reg.host}/Distro/OS:candidate": not a valid image reference: repository component "Distro" must be lowercase`,
    ]);
  });

  it('fails on a missing tag saying it does not exist', async () => {
    const r = await runAction({
      action: 'resolve',
      inputs: { image: `${reg.host}/distro/os:nope`, 'tls-verify': 'false' },
    });
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(/distro\/os:nope does not exist in the registry/);
  });

  it('fails on a bad tls-verify value naming the input', async () => {
    const r = await runAction({
      action: 'resolve',
      inputs: { image: `${reg.host}/distro/os:candidate`, 'tls-verify': 'maybe' },
    });
    expect(errors(r)).toEqual([`Input 'tls-verify' has value "maybe": expected true or false`]);
  });
});
