// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordingIO } from '../../actions/lib/io.js';
import { QEMU } from '../../actions/lib/vm/qemu.js';
import { run } from '../../actions/sysext/src/main.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { debianFiles } from '../harness/fake-images.js';
import { fakeRunner, type Call, type FakeRunner } from '../harness/fake-runner.js';
import { argAfter, mke2fs, ok, playTools, qemu, tarExtract, toolOf } from '../harness/fake-tools.js';
import { signDigest, testKey, type TestKey } from '../harness/signing.js';

/**
 * sysext's run() through recordingIO and a fake runner that plays tar, mksquashfs, gpg, the
 * guest tree writes, mke2fs and QEMU (the guest's probe prints its verdict): a prepared tree
 * becomes a signed extension of the pinned base with SHA256SUMS and the sysupdate client files,
 * published only when the boot test passes; the private key and passphrase reach gpg on stdin
 * only; content that can never ship, the signature gate and bad input refuse early.
 */
const FPR = 'A1B2C3D4E5F60718293A4B5C6D7E8F9012345678';
const PASSPHRASE = 'correct horse battery staple';
const KEY = `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBGZtestkeymaterialline0001\nlQdGBGZtestkeymaterialline0002\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----\n`;
let reg: FakeRegistry;
let work: string;
let key: TestKey;
let base: string;
let unsigned: string;
let tree: string;

beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-sysext-'));
  key = testKey();
  base = await seedImage(reg, 'acme/os', 'stable', path.join(work, 'base'), { layers: [debianFiles()] });
  unsigned = await seedImage(reg, 'acme/os', 'unsigned', path.join(work, 'unsigned'), {
    layers: [debianFiles({ extra: { 'etc/unsigned': '1\n' } })],
  });
  await signDigest(`${reg.host}/acme/os@${base}`, key);
  tree = path.join(work, 'tree');
  fs.mkdirSync(path.join(tree, 'usr/bin'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'usr/bin/hello'), '#!/bin/sh\necho hello\n');
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Every file below `dir`, relative, sorted, with its content: what the fake mksquashfs packs. */
function listing(dir: string, rel = ''): string[] {
  return fs
    .readdirSync(path.join(dir, rel), { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? listing(dir, path.join(rel, e.name))
        : [`${path.join(rel, e.name)}: ${fs.readFileSync(path.join(dir, rel, e.name), 'utf8').trim()}`],
    )
    .sort();
}

/** Plays gpg: the key and passphrase arrive on stdin; signing writes the `--output` file. */
const gpg = (stdins: string[]) => (call: Call) => {
  const args = call.args;
  stdins.push(String(call.opts.input ?? ''));
  if (args.includes('--list-secret-keys')) return ok(`sec:u:4096:1:0123456789ABCDEF:::::::::\nfpr:::::::::${FPR}:\n`);
  if (args.includes('--detach-sign')) fs.writeFileSync(argAfter(call, '--output')!, 'a detached signature');
  if (args.includes('--export')) return ok('binary public key');
  return ok();
};

/** The guest's probe, as the boot test's console shows it: its tag comes from the probe script written into the disk. */
const guest = (written: Map<string, string>, verdict: 'PASS' | 'FAIL') => () => {
  const script = [...written].find(([dest]) => dest.endsWith('etc/keel-sysext-probe/probe.sh'))![1];
  const tag = /^M='(keel-sysext-[0-9a-f]+)'$/m.exec(script)![1];
  return {
    lines: [
      `[    5.1] ${tag}: START hello 1.2.3`,
      `[    5.2] ${tag}: MERGED at boot`,
      `[    5.3] ${tag}: PROBE-COMMAND none`,
      `[    5.4] ${tag}: SYSUPDATE skipped: not requested`,
      verdict === 'PASS'
        ? `[    5.5] ${tag}: PASS hello 1.2.3 merged`
        : `[    5.5] ${tag}: FAIL the extension did not merge`,
    ],
  };
};

function tools(opts: { verdict?: 'PASS' | 'FAIL'; stdins?: string[]; written?: Map<string, string> } = {}) {
  const written = opts.written ?? new Map<string, string>();
  return playTools({
    tar: tarExtract(),
    mksquashfs: (call) => {
      const [src, out] = call.args;
      fs.writeFileSync(out!, `squashfs\n${listing(src!).join('\n')}\n`);
      return ok();
    },
    gpg: gpg(opts.stdins ?? []),
    gpgconf: () => ok(),
    install: (call) => {
      const { args } = toolOf(call);
      const [src, dest] = args.slice(-2);
      fs.mkdirSync(path.dirname(dest!), { recursive: true });
      fs.copyFileSync(src!, dest!);
      written.set(dest!, fs.readFileSync(src!, 'utf8'));
      return ok();
    },
    mkdir: (call) => {
      fs.mkdirSync(toolOf(call).args.at(-1)!, { recursive: true });
      return ok();
    },
    ln: () => ok(),
    mke2fs,
    chown: () => ok(),
    rm: (call) => {
      fs.rmSync(toolOf(call).args.at(-1)!, { recursive: true, force: true });
      return ok();
    },
    [QEMU]: qemu(guest(written, opts.verdict ?? 'PASS')),
  });
}

const sysext = (inputs: Record<string, string>, runner: FakeRunner = fakeRunner(tools())) => {
  const workspace = fs.mkdtempSync(path.join(work, 'ws-'));
  const temp = fs.mkdtempSync(path.join(work, 'temp-'));
  const io = recordingIO(
    {
      'base-image-ref': `${reg.host}/acme/os@${base}`,
      name: 'hello',
      'source-dir': tree,
      version: '1.2.3',
      'public-key': key.pem,
      'tls-verify': 'false',
      accel: 'tcg',
      ...inputs,
    },
    { workspace, runnerTemp: temp },
    runner,
  );
  return { io, runner, workspace, temp, done: run(io) };
};
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('sysext run()', () => {
  it('a prepared tree: signed, boot-tested, published with SHA256SUMS and the sysupdate files', async () => {
    const stdins: string[] = [];
    const runner = fakeRunner(tools({ stdins }));
    const { io, workspace, temp, done } = sysext(
      {
        'gpg-private-key': KEY,
        'gpg-passphrase': PASSPHRASE,
        'base-url': 'https://downloads.example.org/sysext/',
      },
      runner,
    );
    await done;
    const out = path.join(workspace, 'sysext-out');
    const image = path.join(out, 'hello_1.2.3_x86-64.raw');
    expect(io.outputs).toEqual({
      path: image,
      version: '1.2.3',
      sha256sums: path.join(out, 'SHA256SUMS'),
      'transfer-file': path.join(out, 'hello.transfer'),
      'feature-file': path.join(out, 'hello.feature'),
    });
    expect(fs.readdirSync(out).sort()).toEqual(
      ['SHA256SUMS', 'SHA256SUMS.gpg', 'hello.feature', 'hello.transfer', 'hello_1.2.3_x86-64.raw'].sort(),
    );
    // The extension holds the tree and an extension-release matching the base.
    const packed = fs.readFileSync(image, 'utf8');
    expect(packed).toContain('usr/bin/hello: #!/bin/sh');
    expect(packed).toContain(
      'usr/lib/extension-release.d/extension-release.hello: ID=keel\nVERSION_ID=13\nARCHITECTURE=x86-64\nSYSEXT_ID=hello\nSYSEXT_VERSION_ID=1.2.3\n',
    );
    expect(fs.readFileSync(path.join(out, 'SHA256SUMS'), 'utf8')).toContain(
      `${sha256(image)}  hello_1.2.3_x86-64.raw\n`,
    );
    expect(fs.readFileSync(path.join(out, 'hello.transfer'), 'utf8')).toContain(
      'Path=https://downloads.example.org/sysext\n',
    );

    // The key and the passphrase reach gpg on stdin, never in argv, and are masked.
    const gpgCalls = runner.calls.filter((c) => c.cmd === 'gpg');
    expect(gpgCalls.map((c) => c.args.filter((a) => !a.startsWith('/')).slice(4, 6))).toEqual([
      ['--import'],
      ['--with-colons', '--list-secret-keys'],
      ['--pinentry-mode', 'loopback'],
      ['--verify'],
      ['--export', FPR],
    ]);
    // Inputs arrive trimmed, as the runner gives them.
    expect(stdins[0]).toBe(KEY.trim());
    expect(stdins[2]).toBe(`${PASSPHRASE}\n`);
    const argv = JSON.stringify(runner.calls.map((c) => [c.cmd, ...c.args]));
    expect(argv).not.toContain(PASSPHRASE);
    expect(argv).not.toContain('testkeymaterial');
    expect(gpgCalls.every((c) => c.opts.redact?.includes(KEY.trim()) && c.opts.redact.includes(PASSPHRASE))).toBe(true);
    expect(io.secrets).toEqual(
      expect.arrayContaining([
        KEY.trim(),
        PASSPHRASE,
        'lQdGBGZtestkeymaterialline0001',
        'lQdGBGZtestkeymaterialline0002',
      ]),
    );

    // The boot: the base's kernel, the extension installed in /var/lib/extensions of the test disk.
    const boot = runner.calls.find((c) => c.cmd === QEMU)!;
    expect(argAfter(boot, '-append')).toMatch(/^root=\/dev\/vda rw rd\.timeout=90 console=tty0/);
    const installs = runner.calls.filter((c) => toolOf(c).tool === 'install').map((c) => toolOf(c).args.at(-1)!);
    expect(installs[0]).toMatch(/\/rootfs\/var\/lib\/extensions\/hello_1\.2\.3_x86-64\.raw$/);

    expect(io.groups).toEqual(["verify the base's signature", 'build hello']);
    const summary = io.summaries.join('');
    expect(summary).toMatch(/^### sysext hello_1\.2\.3_x86-64\.raw ✅/);
    expect(summary).toContain(`signed by \`${FPR}\``);
    expect(summary).toMatch(/\| boot test \| ✅ /);
    expect(summary).toContain('| merged | at boot |');
    expect(fs.readdirSync(temp)).toEqual(['keel-sysext-hello-serial.log']);
  });

  it('unsigned and without base-url: published with a warning, no client files', async () => {
    const { io, runner, workspace, done } = sysext({ 'boot-test': 'false' });
    await done;
    expect(io.outputs).toMatchObject({ 'transfer-file': '', 'feature-file': '' });
    expect(fs.readdirSync(path.join(workspace, 'sysext-out')).sort()).toEqual(['SHA256SUMS', 'hello_1.2.3_x86-64.raw']);
    expect(io.logs).toContainEqual({
      level: 'warning',
      message: expect.stringMatching(/^no gpg-private-key: SHA256SUMS is unsigned/),
    });
    expect(io.summaries.join('')).toContain('| boot test | not run (boot-test false) |');
    expect(runner.calls.map((c) => toolOf(c).tool)).not.toContain(QEMU);
  });

  it('a failed boot test publishes nothing and fails with the guest’s reason', async () => {
    const runner = fakeRunner(tools({ verdict: 'FAIL' }));
    const { io, workspace, done } = sysext({}, runner);
    await expect(done).rejects.toThrow(/^boot test failed: .*the extension did not merge/);
    expect(fs.existsSync(path.join(workspace, 'sysext-out'))).toBe(false);
    expect(io.outputs).toEqual({});
    expect(io.summaries.join('')).toMatch(/^### sysext hello_1\.2\.3_x86-64\.raw ❌[\s\S]*Last \d+ console lines/);
  });

  it.each([
    [
      'a tree with files outside /usr and /opt',
      { 'etc/hello.conf': 'x' },
      /the extension is refused: .*\/etc\/hello\.conf/,
      false,
    ],
    [
      'a tree that shadows a base file',
      { 'usr/bin/bash': 'mine' },
      /the extension is refused: .*\/usr\/bin\/bash/,
      true,
    ],
  ])('refuses %s, publishing nothing', async (_what, files, message, downloads) => {
    const dir = fs.mkdtempSync(path.join(work, 'bad-tree-'));
    for (const [p, c] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
      fs.writeFileSync(path.join(dir, p), c);
    }
    const before = reg.requests.length;
    const { io, runner, workspace, done } = sysext({ 'source-dir': dir });
    await expect(done).rejects.toThrow(message);
    const { layers } = JSON.parse(reg.manifest('acme/os', base)!.body.toString()) as { layers: { digest: string }[] };
    const layerGets = reg.requests
      .slice(before)
      .filter((r) => layers.some((l) => r === `GET /v2/acme/os/blobs/${l.digest}`));
    expect(layerGets.length > 0).toBe(downloads);
    expect(runner.calls.filter((c) => toolOf(c).tool !== 'rm')).toEqual([]);
    expect(fs.existsSync(path.join(workspace, 'sysext-out'))).toBe(false);
    expect(io.outputs).toEqual({});
  });

  it('refuses a base whose signature does not verify, before anything is downloaded or run', async () => {
    const { runner, done } = sysext({ 'base-image-ref': `${reg.host}/acme/os@${unsigned}` });
    await expect(done).rejects.toThrow(/its signature does not verify with public-key/);
    expect(runner.calls).toEqual([]);
  });

  it('fails naming the tool when mksquashfs is not installed', async () => {
    const runner = fakeRunner(tools(), { tools: ['gpg', 'tar'] });
    const { done } = sysext({}, runner);
    await expect(done).rejects.toThrow('missing tools: mksquashfs (package squashfs-tools)');
    expect(runner.calls).toEqual([]);
  });

  it.each([
    ['packages and source-dir together', { packages: 'hello' }, /^Input 'source-dir': give exactly one of packages/],
    ['source-dir without a version', { version: '' }, /^Input 'version': required with source-dir/],
    [
      'a tag instead of a digest',
      { 'base-image-ref': 'TAG' },
      /^Input 'base-image-ref' has value .*the extension is built for, and booted on, exactly this base/,
    ],
    ['no public-key', { 'public-key': '' }, /^Input 'public-key': it is required: sysext refuses to run without/],
    ['a name with capitals', { name: 'Hello' }, /^Input 'name' has value "Hello"/],
    [
      'an exclude that is not absolute',
      { exclude: 'usr/share/doc' },
      /^Input 'exclude'.*expected an absolute path below \//,
    ],
    [
      'an override outside /usr and /opt',
      { 'allow-overrides': '/etc/passwd' },
      /^Input 'allow-overrides'.*expected a path below \/usr or \/opt/,
    ],
    [
      'apt-sources with source-dir',
      { 'apt-sources': 'deb http://deb.debian.org/debian trixie main' },
      /^Input 'apt-sources': only used with packages/,
    ],
    [
      'a base-url with a query',
      { 'base-url': 'https://example.org/x?y=1' },
      /^Input 'base-url' has value "https:\/\/example.org\/x\?y=1"/,
    ],
    [
      'a gpg key that is not an armored private key',
      { 'gpg-private-key': 'not a key at all' },
      /^Input 'gpg-private-key': expected an ASCII-armored OpenPGP private key/,
    ],
  ])('refuses %s before any request or command', async (_what, extra, message) => {
    const ex = { ...extra } as Record<string, string>;
    if (ex['base-image-ref'] === 'TAG') ex['base-image-ref'] = `${reg.host}/acme/os:stable`;
    const before = reg.requests.length;
    const { io, runner, workspace, done } = sysext(ex);
    await expect(done).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(runner.calls).toEqual([]);
    expect(fs.readdirSync(workspace)).toEqual([]);
    expect(io.outputs).toEqual({});
    expect(JSON.stringify(io.logs)).not.toContain('not a key at all');
  });
});
