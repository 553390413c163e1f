// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseOsRelease } from '../../actions/lib/os-release.js';
import { ensureExampleImage, repoRoot, withLock } from '../harness/example-image.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { signDigest, testKey, type TestKey } from '../harness/signing.js';
import { processesMatching, sh, skopeoPush, tmpdir } from '../harness/tools.js';

/**
 * The sysext hop on the example distro, through the bundle, the runner's way: a prepared tree
 * (the example extension the distro ships) and a package build (systemd-container, which brings
 * systemd-sysupdate into the guest), each merged and run in a booted base under TCG; the
 * refusals that need no boot; reproducibility; the signature checked by gpg itself.
 */
describe('sysext (bundled, real buildah, QEMU and gpg)', () => {
  let reg: Registry;
  let baseRef: string;
  let key: { armored: string; pubring: string; fingerprint: string };
  let cosign: TestKey;
  const exampleTree = path.join(repoRoot, 'sysexts', 'keel-hello');

  beforeAll(async () => {
    reg = await startRegistry();
    const img = await ensureExampleImage({ oci: true });
    baseRef = `${reg.host}/keel/os@${skopeoPush(img.ociRef, `${reg.host}/keel/os:stable`)}`;
    cosign = testKey();
    await signDigest(baseRef, cosign);
    // A signing key without a passphrase (the passphrase path is covered by test/lib/sysext.test.ts).
    const home = tmpdir('keel-sysext-gpg-');
    const env = { GNUPGHOME: home };
    sh(
      'gpg',
      [
        '--batch',
        '--passphrase',
        '',
        '--quick-gen-key',
        'Keel sysext test <sysext@keel.example>',
        'ed25519',
        'sign',
        'never',
      ],
      { env },
    );
    const armored = sh('gpg', ['--batch', '--armor', '--export-secret-keys'], { env });
    const pubring = path.join(home, 'export.gpg');
    fs.writeFileSync(pubring, spawnSync('gpg', ['--batch', '--export'], { env: { ...process.env, ...env } }).stdout);
    const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]{40}):/m.exec(
      sh('gpg', ['--with-colons', '--list-keys'], { env }),
    )![1]!;
    sh('gpgconf', ['--kill', 'gpg-agent'], { env });
    key = { armored, pubring, fingerprint };
  }, 40 * 60_000);

  afterAll(async () => {
    await reg?.stop();
  });

  const run = async (inputs: Record<string, string>, workspace = tmpdir('keel-sysext-ws-')) => {
    const temp = tmpdir('keel-sysext-run-');
    const t0 = Date.now();
    const r = await runAction({
      action: 'sysext',
      runnerTemp: temp,
      cwd: workspace,
      inputs: { 'tls-verify': 'false', 'base-image-ref': baseRef, accel: 'tcg', 'public-key': cosign.path, ...inputs },
      timeoutMs: 25 * 60_000,
    });
    return { r, temp, workspace, seconds: (Date.now() - t0) / 1000, leftovers: processesMatching(temp) };
  };
  const gpgVerify = (dir: string) =>
    spawnSync(
      'gpg',
      [
        '--batch',
        '--no-default-keyring',
        '--keyring',
        key.pubring,
        '--trust-model',
        'always',
        '--verify',
        path.join(dir, 'SHA256SUMS.gpg'),
        path.join(dir, 'SHA256SUMS'),
      ],
      { env: { ...process.env, GNUPGHOME: tmpdir('keel-sysext-verify-') }, encoding: 'utf8' },
    );
  const tree = (files: Record<string, string>) => {
    const d = tmpdir('keel-sysext-tree-');
    for (const [p, c] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(d, p)), { recursive: true });
      fs.writeFileSync(path.join(d, p), c, { mode: 0o755 });
    }
    return d;
  };

  it('refuses /etc content of a tree by name, before the base is downloaded', async () => {
    const src = tree({ 'usr/bin/x': '#!/bin/sh\n', 'etc/x.conf': 'a=1\n', 'etc/x.d/y': '' });
    const { r, seconds, workspace } = await run({ name: 'bad', version: '1', 'source-dir': src, 'boot-test': 'false' });
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(/2 path\(s\) outside \/usr and \/opt .*: \/etc\/x\.conf, \/etc\/x\.d\/y/);
    expect(seconds).toBeLessThan(15);
    expect(fs.existsSync(path.join(workspace, 'sysext-out'))).toBe(false);
  });

  it('refuses to run without a public key (unless allow-unsigned), before any registry request', async () => {
    const src = tree({ 'usr/bin/x': '#!/bin/sh\n' });
    // A registry that is not there: any request would fail with a connection error instead.
    const nowhere = `127.0.0.1:9/keel/os@sha256:${'0'.repeat(64)}`;
    const { r, workspace } = await run({
      name: 'x',
      version: '1',
      'source-dir': src,
      'public-key': '',
      'base-image-ref': nowhere,
    });
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(/Input 'public-key': it is required: sysext refuses to run/);
    expect(fs.existsSync(path.join(workspace, 'sysext-out'))).toBe(false);
  });

  it(
    'refuses an extension-release that does not match the base, naming the field',
    async () => {
      const src = tree({
        'usr/bin/old': '#!/bin/sh\n',
        'usr/lib/extension-release.d/extension-release.old': 'ID=keel-os\nVERSION_ID=12\n',
      });
      const { r } = await run({ name: 'old', version: '1', 'source-dir': src, 'boot-test': 'false' });
      expect(r.code).toBe(1);
      expect(errors(r).join('\n')).toMatch(
        /\/usr\/lib\/extension-release\.d\/extension-release\.old does not match the base .*VERSION_ID=12, the base has VERSION_ID=13/,
      );
    },
    5 * 60_000,
  );

  it(
    'builds the example extension reproducibly, signs it, and it merges and runs in the booted base',
    async () => {
      const booted = await withLock('vm', () =>
        run({
          name: 'keel-hello',
          version: '1.0',
          'source-dir': exampleTree,
          'probe-command': 'keel-hello | grep "hello from a system extension of Keel OS"',
          'base-url': 'https://archive.org/download/keel-os-sysext-keel-hello/',
          'gpg-private-key': key.armored,
        }),
      );
      const { r, leftovers } = booted;
      expect(errors(r)).toEqual([]);
      expect(r.code).toBe(0);
      const out = path.join(booted.workspace, 'sysext-out');
      expect(r.outputs).toEqual({
        path: path.join(out, 'keel-hello_1.0_x86-64.raw'),
        version: '1.0',
        sha256sums: path.join(out, 'SHA256SUMS'),
        'transfer-file': path.join(out, 'keel-hello.transfer'),
        'feature-file': path.join(out, 'keel-hello.feature'),
      });
      expect(fs.readdirSync(out).sort()).toEqual([
        'SHA256SUMS',
        'SHA256SUMS.gpg',
        'keel-hello.feature',
        'keel-hello.transfer',
        'keel-hello_1.0_x86-64.raw',
      ]);
      expect(r.summary).toMatch(/merged \| at boot/);
      expect(r.summary).toMatch(/probe-command \| ok/);
      expect(r.summary).toContain(key.fingerprint);
      expect(r.masked).toContain(key.armored.trim());
      // Masked (each line of it too), and never printed: only the runner's add-mask commands carry it.
      const logged = r.stdout
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n');
      expect(logged).not.toContain('PRIVATE KEY BLOCK');
      const keyLines = key.armored.split('\n').filter((l) => l.length > 20);
      expect(keyLines.length).toBeGreaterThan(2);
      for (const l of keyLines) expect(r.masked).toContain(l);
      expect(leftovers).toEqual([]);
      // SHA256SUMS lists what was published, and sha256sum agrees.
      expect(sh('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out })).toMatch(/keel-hello_1\.0_x86-64\.raw: OK/);
      // gpg itself verifies the detached signature, and refuses it once SHA256SUMS is changed.
      expect(gpgVerify(out).status).toBe(0);
      const original = fs.readFileSync(path.join(out, 'SHA256SUMS'));
      fs.appendFileSync(path.join(out, 'SHA256SUMS'), `${'0'.repeat(64)}  keel-hello_9.9_x86-64.raw\n`);
      const tampered = gpgVerify(out);
      expect([tampered.status, tampered.stderr]).toEqual([1, expect.stringMatching(/BAD signature/)]);
      fs.writeFileSync(path.join(out, 'SHA256SUMS'), original);
      // The image holds the tree plus the extension-release Keel wrote from the base, owned by root.
      const listing = sh('unsquashfs', ['-lln', '-d', '', r.outputs.path!]);
      expect(listing).toMatch(/-rwxr-xr-x 0\/0 .* \/usr\/bin\/keel-hello/);
      expect(listing).not.toMatch(/\/etc/);
      const rel = sh('unsquashfs', [
        '-cat',
        r.outputs.path!,
        'usr/lib/extension-release.d/extension-release.keel-hello',
      ]);
      expect(parseOsRelease(rel)).toMatchObject({
        ID: 'keel-os',
        VERSION_ID: '13',
        ARCHITECTURE: 'x86-64',
        SYSEXT_VERSION_ID: '1.0',
      });
      expect(fs.readFileSync(r.outputs['transfer-file']!, 'utf8')).toMatch(
        /Path=https:\/\/archive\.org\/download\/keel-os-sysext-keel-hello\nMatchPattern=keel-hello_@v_x86-64\.raw/,
      );

      // The same inputs again (no boot): the same bytes.
      const again = await run({
        name: 'keel-hello',
        version: '1.0',
        'source-dir': exampleTree,
        'boot-test': 'false',
      });
      expect(errors(again.r)).toEqual([]);
      const digest = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
      expect(digest(again.r.outputs.path!)).toBe(digest(r.outputs.path!));
      expect(warnings(again.r).join('\n')).toMatch(/SHA256SUMS is unsigned/);
    },
    30 * 60_000,
  );

  it(
    'names the /etc link a postinst wrote; with it excluded, the package extension merges and systemd-sysupdate in the guest verifies the signed transfer',
    async () => {
      const refused = await run({ name: 'container', packages: 'systemd-container', 'boot-test': 'false' });
      expect(refused.r.code).toBe(1);
      const why = errors(refused.r).join('\n');
      expect(why).toMatch(
        /outside \/usr and \/opt .*\/etc\/systemd\/system\/multi-user\.target\.wants\/machines\.target/,
      );
      expect(why).toMatch(/\/var\/lib\/machines/);

      const booted = await withLock('vm', () =>
        run({
          name: 'container',
          packages: 'systemd-container',
          exclude: [
            '/etc/systemd/system/multi-user.target.wants/machines.target',
            '/var/lib/machines',
            '/var/lib/portables',
          ].join('\n'),
          format: 'erofs',
          'probe-command': 'machinectl --version && test -x /usr/lib/systemd/systemd-sysupdate',
          'base-url': 'https://archive.org/download/keel-os-sysext-container/',
          'gpg-private-key': key.armored,
        }),
      );
      const { r, leftovers } = booted;
      expect(errors(r)).toEqual([]);
      expect(r.outputs.version).toMatch(/^257\.\d+-\d+(\.deb13u\d+)?$/);
      expect(path.basename(r.outputs.path!)).toBe(`container_${r.outputs.version}_x86-64.raw`);
      expect(r.summary).toMatch(
        /dropped \(exclude\) \| `\/etc\/systemd\/system\/multi-user\.target\.wants\/machines\.target`/,
      );
      expect(r.summary).toMatch(/package-manager state dropped \| \d+ entries/);
      expect(r.summary).toMatch(/probe-command \| ok/);
      // The guest's own systemd-sysupdate (from the extension) read the transfer and verified the signature.
      expect(r.summary).toMatch(/systemd-sysupdate \| ok: the transfer parsed, SHA256SUMS\.gpg verified/);
      expect(r.summary).toMatch(/guest fetched \| .*`SHA256SUMS`/);
      expect(r.summary).toMatch(/guest fetched \| .*`SHA256SUMS\.gpg`/);
      expect(gpgVerify(path.dirname(r.outputs.path!)).status).toBe(0);
      expect(leftovers).toEqual([]);
      // No package database in the image, no working container left behind.
      const names = spawnSync('buildah', ['containers', '--format', '{{.ContainerName}}'], { encoding: 'utf8' }).stdout;
      expect(names).not.toMatch(/keel-sysext-/);
    },
    40 * 60_000,
  );
});
