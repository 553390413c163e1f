// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../actions/build-disk/src/main.js';
import { asRoot } from '../../actions/lib/exec.js';
import { recordingIO } from '../../actions/lib/io.js';
import { BIB_IMAGE } from '../../actions/lib/vm/bib.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { debianFiles, KVER } from '../harness/fake-images.js';
import { fakeRunner, type Call, type FakeRunner } from '../harness/fake-runner.js';
import { argAfter, ok, playTools, tarExtract, toolOf, writesFile } from '../harness/fake-tools.js';
import { signDigest, testKey, type TestKey } from '../harness/signing.js';

/**
 * build-disk's run() through recordingIO and a fake runner: the bib backend (the two podman
 * argv, the artefact it writes renamed into output-dir) and the live ISO backend up to the boot
 * test (dracut in the image's root, zstd squashfs, grub-mkrescue, both El Torito platforms), each
 * with a flat SHA256SUMS and the outputs; the signature gate and bad input refuse before any
 * command. (The boot test itself needs the host's OVMF firmware: test/actions/build-disk.test.ts.)
 */
let reg: FakeRegistry;
let work: string;
let key: TestKey;
let signed: string;
let unsigned: string;
const LIVE = { 'usr/bin/dracut': '#!dracut\n', 'usr/lib/dracut/modules.d/90dmsquash-live/module-setup.sh': '# live\n' };

beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-disk-'));
  key = testKey();
  signed = await seedImage(reg, 'acme/os', 'candidate', path.join(work, 'os'), {
    layers: [debianFiles({ extra: LIVE })],
  });
  unsigned = await seedImage(reg, 'acme/os', 'unsigned', path.join(work, 'unsigned'), {
    layers: [debianFiles({ extra: { ...LIVE, 'etc/unsigned': 'yes\n' } })],
  });
  await signDigest(`${reg.host}/acme/os@${signed}`, key);
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Plays `podman run … -v OUT:/output … build --type TYPE …`: BIB writes its artefact under OUT. */
const podman = (call: Call) => {
  const { args } = toolOf(call);
  if (args[0] === 'pull') return ok();
  const out = args[args.indexOf('-v', args.indexOf('-v') + 1) + 1]!.replace(/:\/output$/, '');
  const type = argAfter({ ...call, args }, '--type')!;
  const file =
    type === 'anaconda-iso' ? path.join(out, 'bootiso', 'install.iso') : path.join(out, type, `disk.${type}`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${type} of ${args.at(-1)}\n`);
  return ok();
};

/** What the rootfs's /dev held when dracut ran in it, and right after (its nodes must not reach the squashfs). */
const devices: { atDracut?: string[]; after?: string[] } = {};
const devOf = (rootfs: string) =>
  fs.existsSync(path.join(rootfs, 'dev')) ? fs.readdirSync(path.join(rootfs, 'dev')).sort() : [];

/** The live ISO's tools; `platforms` is what xorriso reports of the ISO's El Torito catalogue. */
const liveTools = (platforms = ['BIOS', 'UEFI'], compression = 'zstd') =>
  playTools({
    tar: tarExtract(),
    mknod: (call) => {
      const { args } = toolOf(call);
      fs.writeFileSync(args[args.indexOf('--') + 1]!, `char ${args.at(-2)}:${args.at(-1)}\n`);
      return ok();
    },
    chroot: (call) => {
      const { args } = toolOf(call);
      devices.atDracut = devOf(args[0]!);
      const file = path.join(args[0]!, args.at(-1)!);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, `live initramfs for ${argAfter({ ...call, args }, '--kver')}\n`);
      return ok();
    },
    mv: (call) => {
      const { args } = toolOf(call);
      devices.after = devOf(path.dirname(path.dirname(args.at(-2)!)));
      fs.renameSync(args.at(-2)!, args.at(-1)!);
      return ok();
    },
    chmod: () => ok(),
    rm: (call) => {
      const { args } = toolOf(call);
      const files = args.includes('--') ? args.slice(args.indexOf('--') + 1) : [args.at(-1)!];
      for (const f of files) fs.rmSync(f, { recursive: true, force: true });
      return ok();
    },
    mksquashfs: writesFile(1, () => 'hsqs'),
    unsquashfs: () => ok(`Found a valid SQUASHFS 4:0 superblock\nCompression ${compression}\n`),
    'grub-mkrescue': writesFile(1, () => 'an ISO 9660 image\n'),
    xorriso: () =>
      ok(platforms.map((p, i) => `El Torito boot img :   ${i + 1}  ${p}  y   none  0x0000  0x00      4\n`).join('')),
  });

const disk = (inputs: Record<string, string>, runner: FakeRunner) => {
  const workspace = fs.mkdtempSync(path.join(work, 'ws-'));
  const temp = fs.mkdtempSync(path.join(work, 'temp-'));
  const io = recordingIO(
    {
      'image-ref': `${reg.host}/acme/os@${signed}`,
      'public-key': key.pem,
      'tls-verify': 'false',
      'release-date': '20250304',
      ...inputs,
    },
    { workspace, runnerTemp: temp },
    runner,
  );
  return { io, workspace, temp, done: run(io) };
};
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('build-disk run()', () => {
  it.each([
    ['qcow2', { type: 'qcow2' }, 'qcow2', 'os-20250304.qcow2'],
    ['an installer ISO, named', { type: 'iso', name: 'acme-installer' }, 'anaconda-iso', 'acme-installer.iso'],
  ])(
    'bib backend, %s: pulls the digest, runs BIB, ships its artefact with SHA256SUMS',
    async (_what, extra, type, name) => {
      const config = path.join(work, 'config.toml');
      fs.writeFileSync(config, '[customizations.kernel]\nappend = "quiet"\n');
      const runner = fakeRunner(playTools({ podman }));
      const { io, workspace, done } = disk({ backend: 'bib', config, ...extra }, runner);
      await done;
      const pinned = `${reg.host}/acme/os@${signed}`;
      const [pull, build] = runner.calls;
      const [pullCmd, pullArgs] = asRoot('podman', ['pull', '--', pinned]);
      expect([pull!.cmd, pull!.args]).toEqual([pullCmd, pullArgs]);
      const b = toolOf(build!).args;
      expect(b.slice(0, 4)).toEqual(['run', '--rm', '--privileged', '--pull=newer']);
      expect(b).toEqual(expect.arrayContaining(['-v', `${config}:/config.toml:ro`]));
      expect(b.slice(b.indexOf('--'))).toEqual([
        '--',
        BIB_IMAGE,
        'build',
        '--output',
        '/output',
        '--type',
        type,
        '--rootfs',
        'btrfs',
        '--use-librepo=True',
        '--chown',
        `${process.getuid!()}:${process.getgid!()}`,
        pinned,
      ]);
      expect(runner.calls).toHaveLength(2);

      const artefact = path.join(workspace, 'disk-out', name);
      expect(fs.readFileSync(artefact, 'utf8')).toBe(`${type} of ${pinned}\n`);
      expect(io.outputs).toEqual({
        path: artefact,
        sha256: sha256(artefact),
        sha256sums: path.join(workspace, 'disk-out', 'SHA256SUMS'),
        name,
        // bib media are not boot-tested here: skipped, never true.
        'boot-passed': 'skipped',
      });
      expect(fs.readFileSync(io.outputs.sha256sums!, 'utf8')).toBe(`${sha256(artefact)}  ${name}\n`);
      expect(io.logs).toContainEqual({
        level: 'notice',
        message: expect.stringMatching(
          /^build-disk: boot test skipped \(bootc-image-builder media are not boot-tested/,
        ),
      });
      const summary = io.summaries.join('');
      expect(summary).toMatch(/^### build-disk ⏭️ \(not boot-tested\)/);
      expect(summary).toContain(`bootc-image-builder (${type}) from \`${pinned}\``);
      expect(summary).toMatch(/\| skipped: bootc-image-builder media are not boot-tested by build-disk/);
    },
  );

  it('live backend, ISO without the boot test: dracut in the image, zstd squashfs, grub-mkrescue, both El Torito platforms', async () => {
    const runner = fakeRunner(liveTools());
    const { io, workspace, temp, done } = disk({ 'boot-test': 'false', 'compression-level': '19' }, runner);
    await done;
    const tools = runner.calls.map((c) => toolOf(c).tool);
    expect(tools.filter((t) => t !== 'chmod' && t !== 'rm')).toEqual([
      'tar',
      'mknod',
      'mknod',
      'mknod',
      'mknod',
      'chroot',
      'mv',
      'mksquashfs',
      'unsquashfs',
      'grub-mkrescue',
      'xorriso',
    ]);
    const call = (tool: string) => toolOf(runner.calls.find((c) => toolOf(c).tool === tool)!).args;
    expect(call('chroot').slice(1)).toEqual([
      'dracut',
      '--no-hostonly',
      '--no-hostonly-cmdline',
      '--add',
      'dmsquash-live',
      '--force',
      '--tmpdir',
      '/tmp',
      '--kver',
      KVER,
      '/tmp/keel-live-initrd.img',
    ]);
    // dracut ran with the character devices its shell code needs; they were gone before the squashfs.
    expect(devices.atDracut).toEqual(['null', 'random', 'urandom', 'zero']);
    expect(devices.after).toEqual([]);
    expect(call('mksquashfs').slice(2, 6)).toEqual(['-comp', 'zstd', '-Xcompression-level', '19']);
    const artefact = path.join(workspace, 'disk-out', 'os-20250304.iso');
    expect(call('grub-mkrescue')).toEqual(['-o', artefact, expect.any(String), '--', '-volid', 'OS-20250304']);
    expect(io.outputs).toEqual({
      path: artefact,
      sha256: sha256(artefact),
      sha256sums: path.join(workspace, 'disk-out', 'SHA256SUMS'),
      name: 'os-20250304.iso',
      'boot-passed': 'skipped',
    });
    expect(io.summaries.join('')).toMatch(/El Torito: BIOS \+ UEFI, volume label `OS-20250304`/);
    expect(io.summaries.join('')).toContain('root=live:CDLABEL=OS-20250304 rd.live.image rd.live.overlay.overlayfs=1');
    // The work directory is gone.
    expect(fs.readdirSync(temp)).toEqual([]);
  });

  it.each([
    [
      'an ISO without a UEFI boot image',
      { 'boot-test': 'false' },
      liveTools(['BIOS']),
      /the ISO lacks El Torito boot images for both BIOS and UEFI \(has: BIOS\)/,
    ],
    [
      'a squashfs that is not zstd',
      { 'boot-test': 'false' },
      liveTools(['BIOS', 'UEFI'], 'gzip'),
      /squashfs is not zstd-compressed/,
    ],
    [
      'BIB that writes no artefact',
      { backend: 'bib', type: 'raw' },
      playTools({ podman: () => ok() }),
      /bootc-image-builder finished but .*\/raw\/disk\.raw is missing/,
    ],
    [
      'an image without dracut for a live ISO',
      { image: 'PLAIN' },
      liveTools(),
      /the live ISO backend needs dracut \(\/usr\/bin\/dracut\) and dracut's dmsquash-live module/,
    ],
  ])('fails on %s, shipping no SHA256SUMS', async (_what, extra, play, message) => {
    const ex = { ...extra } as Record<string, string>;
    if (ex.image === 'PLAIN') {
      const plain = await seedImage(reg, 'acme/plain', 'candidate', path.join(work, 'plain'), {
        layers: [debianFiles()],
      });
      await signDigest(`${reg.host}/acme/plain@${plain}`, key);
      ex['image-ref'] = `${reg.host}/acme/plain@${plain}`;
      delete ex.image;
    }
    const { io, workspace, done } = disk(ex, fakeRunner(play));
    await expect(done).rejects.toThrow(message);
    expect(fs.existsSync(path.join(workspace, 'disk-out', 'SHA256SUMS'))).toBe(false);
    expect(io.outputs).toEqual({});
  });

  it.each([
    ['an unsigned digest', { 'image-ref': 'UNSIGNED' }, /its signature does not verify with public-key/],
    ['no public-key', { 'public-key': '' }, /^Input 'public-key': it is required: build-disk refuses to run without/],
    [
      'a tag instead of a digest',
      { 'image-ref': 'TAG' },
      /^Input 'image-ref' has value .*install media must come from the exact digest/,
    ],
    [
      'a config for the live backend',
      { config: 'CONFIG' },
      /^Input 'config': only the bib backend reads a bootc-image-builder config/,
    ],
    [
      'a config that does not exist',
      { backend: 'bib', config: '/nonexistent/config.toml' },
      /^Input 'config' has value "\/nonexistent\/config.toml": expected an existing file/,
    ],
    ['a lowercase label', { label: 'acme' }, /^Input 'label' has value "acme": expected an ISO volume label/],
    ['a name with a slash', { name: '../escape' }, /^Input 'name' has value "..\/escape"/],
    ['a bad type', { type: 'vmdk' }, /^Input 'type' has value "vmdk": expected one of: iso, qcow2, raw/],
  ])('refuses %s before any command or file', async (_what, extra, message) => {
    const ex = { ...extra } as Record<string, string>;
    if (ex['image-ref'] === 'UNSIGNED') ex['image-ref'] = `${reg.host}/acme/os@${unsigned}`;
    if (ex['image-ref'] === 'TAG') ex['image-ref'] = `${reg.host}/acme/os:candidate`;
    if (ex.config === 'CONFIG') {
      ex.config = path.join(work, 'live-config.toml');
      fs.writeFileSync(ex.config, '');
    }
    const runner = fakeRunner(playTools({ podman }));
    const { io, workspace, temp, done } = disk(ex, runner);
    await expect(done).rejects.toThrow(message);
    expect(runner.calls).toEqual([]);
    expect(fs.readdirSync(workspace)).toEqual([]);
    expect(fs.readdirSync(temp)).toEqual([]);
    expect(io.outputs).toEqual({});
  });
});
