// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { verifySha256Sums } from '../../actions/lib/checksums.js';
import { processRunner } from '../../actions/lib/exec.js';
import { elToritoPlatforms } from '../../actions/lib/vm/iso.js';
import { stripAnsi } from '../../actions/lib/vm/verdict.js';
import { ensureExampleImage, withLock, type ExampleImage } from '../harness/example-image.js';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { attachTamperedSignature, signDigest, testKey, type TestKey } from '../harness/signing.js';
import { derivedImage, makeOciImage, processesMatching, sh, skopeoPush, tarDir, tmpdir } from '../harness/tools.js';

describe('build-disk (bundled): live ISO of the example distro', () => {
  let reg: Registry;
  let img: ExampleImage;
  let ref: string;
  let r: Awaited<ReturnType<typeof runAction>>;
  let temp: string;
  let key: TestKey;
  beforeAll(
    async () => {
      reg = await startRegistry();
      img = await ensureExampleImage({ oci: true });
      ref = `${reg.host}/keel/os@${skopeoPush(img.ociRef, `${reg.host}/keel/os:stable`)}`;
      key = testKey();
      await signDigest(ref, key);
      temp = tmpdir('keel-disk-run-');
      r = await withLock('vm', () =>
        runAction({
          action: 'build-disk',
          runnerTemp: temp,
          inputs: {
            'image-ref': ref,
            'tls-verify': 'false',
            'output-dir': path.join(temp, 'out'),
            'release-date': '20261122',
            'compression-level': '3',
            'boot-timeout': '900',
            accel: 'tcg',
            'public-key': key.path,
          },
        }),
      );
    },
    60 * 60 * 1000,
  );
  afterAll(async () => {
    await reg?.stop();
  });

  it('builds a valid ISO 9660 with El Torito boot images for BIOS and UEFI, named after the image and date', async () => {
    expect(errors(r)).toEqual([]);
    expect(r.summary).toMatch(/\| verified \(1 legacy signature\(s\) accepted\) \|/);
    expect(path.basename(r.outputs.path!)).toBe('os-20261122.iso');
    expect(sh('file', ['-b', r.outputs.path!])).toMatch(
      /ISO 9660 CD-ROM filesystem data .*'OS-20261122'.*\(bootable\)/,
    );
    expect((await elToritoPlatforms(r.outputs.path!, processRunner())).sort()).toEqual(['BIOS', 'UEFI']);
  });

  it('ships exactly one kernel, a zstd squashfs, and boot entries without a serial console', () => {
    const x = tmpdir('keel-iso-x-');
    sh('xorriso', [
      '-osirrox',
      'on',
      '-indev',
      r.outputs.path!,
      '-extract',
      '/boot/grub/grub.cfg',
      path.join(x, 'grub.cfg'),
      '-extract',
      '/LiveOS/squashfs.img',
      path.join(x, 'sq.img'),
    ]);
    const cfg = fs.readFileSync(path.join(x, 'grub.cfg'), 'utf8');
    expect(cfg).toMatch(/root=live:CDLABEL=OS-20261122 rd\.live\.image/);
    expect(cfg).not.toMatch(/console=ttyS/);
    expect(cfg).toMatch(/^insmod all_video$/m);
    expect(sh('unsquashfs', ['-s', path.join(x, 'sq.img')])).toMatch(/Compression zstd/);
    const list = sh('unsquashfs', ['-l', path.join(x, 'sq.img'), 'usr/lib/modules']);
    const kernels = new Set([...list.matchAll(/squashfs-root\/usr\/lib\/modules\/([^/\n]+)\//g)].map((m) => m[1]));
    expect([...kernels]).toEqual([img.kernelVersion]);
  });

  it('boot-tested the ISO to multi-user under OVMF and recorded the time', () => {
    expect(r.outputs['boot-passed']).toBe('true');
    expect(Number(r.outputs['boot-seconds'])).toBeGreaterThan(1);
    const log = fs.readFileSync(r.outputs['serial-log']!, 'utf8');
    expect(log).toMatch(/efi: EFI v/);
    expect(log).toMatch(/Reached target/);
    // Before that, the user's path: UEFI firmware → El Torito → GRUB → its default entry, with
    // a framebuffer handed over (GRUB said "Booting in blind mode" before all_video was loaded).
    const fwLog = path.join(
      path.dirname(r.outputs['serial-log']!),
      path.basename(r.outputs['serial-log']!).replace(/-boot\.log$/, '-firmware.log'),
    );
    const fw = stripAnsi(fs.readFileSync(fwLog, 'utf8'));
    expect(fw).toMatch(/Welcome to GRUB!/);
    expect(fw).toMatch(/Booting `os \(live\)'/);
    expect(fw).not.toMatch(/error:|blind mode/);
    expect(r.summary).toMatch(
      /UEFI firmware → GRUB → default entry: reached: GRUB booted `os \(live\)'; the kernel is running \(RIP ffff[0-9a-f]{12}\)/,
    );
    expect(processesMatching(temp)).toEqual([]);
    // Intermediates gone: only the run's files, the ISO and SHA256SUMS remain.
    expect(
      fs.readdirSync(temp).filter((f) => f.startsWith('keel-disk-') && fs.statSync(path.join(temp, f)).isDirectory()),
    ).toEqual([]);
  });

  it('writes a flat SHA256SUMS that verifies side by side, and a corrupted copy fails the transit check clearly', async () => {
    const sums = fs.readFileSync(r.outputs.sha256sums!, 'utf8');
    expect(sums).toBe(`${r.outputs.sha256}  os-20261122.iso\n`);
    const flat = tmpdir('keel-flat-');
    fs.copyFileSync(r.outputs.path!, path.join(flat, 'os-20261122.iso'));
    fs.copyFileSync(r.outputs.sha256sums!, path.join(flat, 'SHA256SUMS'));
    expect(spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: flat }).status).toBe(0);
    await expect(verifySha256Sums(path.join(flat, 'SHA256SUMS'))).resolves.toHaveLength(1);
    const fd = fs.openSync(path.join(flat, 'os-20261122.iso'), 'r+');
    fs.writeSync(fd, Buffer.from([0x42]), 0, 1, 1024 * 1024);
    fs.closeSync(fd);
    await expect(verifySha256Sums(path.join(flat, 'SHA256SUMS'))).rejects.toThrow(
      /os-20261122\.iso does not match SHA256SUMS: it says sha256 [0-9a-f]{64}, the file .* has sha256 [0-9a-f]{64}/,
    );
  });

  it('refuses an image with two kernels before any ISO work starts', async () => {
    const extra = tmpdir('keel-2k-');
    fs.mkdirSync(path.join(extra, 'usr/lib/modules/6.99.0-extra'), { recursive: true });
    fs.writeFileSync(path.join(extra, 'usr/lib/modules/6.99.0-extra/vmlinuz'), 'second kernel');
    const two = `${reg.host}/keel/os@${skopeoPush(derivedImage(img.ociDir, 'latest', tarDir(extra)), `${reg.host}/keel/os:twokernels`)}`;
    const t = tmpdir('keel-disk-run-');
    const t0 = Date.now();
    const bad = await runAction({
      action: 'build-disk',
      runnerTemp: t,
      inputs: { 'image-ref': two, 'tls-verify': 'false', 'output-dir': path.join(t, 'out'), 'allow-unsigned': 'true' },
    });
    expect(bad.code).toBe(1);
    expect(errors(bad).join('')).toMatch(
      /refusing to build install media: the image must hold exactly one kernel .*found 2/,
    );
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(fs.readdirSync(path.join(t, 'out'))).toEqual([]);
    expect(fs.readdirSync(t).filter((f) => f.startsWith('keel-disk-'))).toEqual([]);
  });

  it('refuses a tag reference and a bib config with the live backend, naming the input', async () => {
    const a = await runAction({ action: 'build-disk', inputs: { 'image-ref': `${reg.host}/keel/os:stable` } });
    expect(errors(a)[0]).toMatch(
      /Input 'image-ref' .*not a tag: install media must come from the exact digest that was tested/,
    );
    const cfg = path.join(tmpdir(), 'config.toml');
    fs.writeFileSync(cfg, '[customizations]\n');
    const b = await runAction({
      action: 'build-disk',
      inputs: { 'image-ref': ref, config: cfg, 'tls-verify': 'false' },
    });
    expect(errors(b)[0]).toMatch(/Input 'config': only the bib backend reads/);
  });
});

describe('build-disk: qcow2 from the same rootfs', () => {
  it(
    'builds a GPT qcow2 (ESP + root) that qemu-img recognises',
    async () => {
      const reg = await startRegistry();
      try {
        const img = await ensureExampleImage({ oci: true });
        const ref = `${reg.host}/keel/os@${skopeoPush(img.ociRef, `${reg.host}/keel/os:stable`)}`;
        const t = tmpdir('keel-disk-run-');
        const r = await runAction({
          action: 'build-disk',
          runnerTemp: t,
          inputs: {
            'image-ref': ref,
            type: 'qcow2',
            'tls-verify': 'false',
            'output-dir': path.join(t, 'out'),
            name: 'keel-os-test',
            'boot-test': 'false',
            'allow-unsigned': 'true',
          },
        });
        expect(errors(r)).toEqual([]);
        expect(warnings(r)).toContain(
          "allow-unsigned is true and no public-key is given: build-disk does NOT check the image's signature",
        );
        expect(r.summary).toMatch(/\*\*build-disk\*\*: allow-unsigned is true/);
        expect(r.summary).toMatch(/NOT checked \(allow-unsigned: true, no public-key\)/);
        expect(path.basename(r.outputs.path!)).toBe('keel-os-test.qcow2');
        const info = JSON.parse(sh('qemu-img', ['info', '--output=json', r.outputs.path!]));
        expect(info.format).toBe('qcow2');
        const raw = path.join(t, 'disk.raw');
        sh('qemu-img', ['convert', '-O', 'raw', r.outputs.path!, raw]);
        const table = JSON.parse(sh('sfdisk', ['--json', raw])).partitiontable;
        expect(table.label).toBe('gpt');
        expect(table.partitions.map((p: { type: string }) => p.type)).toEqual([
          'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
          '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
        ]);
      } finally {
        await reg.stop();
      }
    },
    30 * 60 * 1000,
  );
});

describe('build-disk: the signature gate, before any disk work, with either backend', () => {
  let reg: Registry;
  let proxy: FaultProxy;
  let key: TestKey;
  const refs: Record<string, string> = {};
  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    key = testKey();
    const push = (tag: string) =>
      `${reg.host}/keel/gate@${skopeoPush(`oci:${makeOciImage(tmpdir()).dir}:latest`, `${reg.host}/keel/gate:${tag}`)}`;
    refs.unsigned = push('unsigned');
    refs.otherKey = push('other');
    await signDigest(refs.otherKey, testKey());
    refs.tampered = push('tampered');
    await attachTamperedSignature(refs.tampered, key);
  });
  afterAll(async () => {
    await proxy?.close();
    await reg?.stop();
  });

  /** Runs build-disk with podman and skopeo replaced by shims that record any call. */
  async function buildDisk(inputs: Record<string, string>) {
    const t = tmpdir('keel-disk-gate-');
    const shim = path.join(t, 'bin');
    fs.mkdirSync(shim);
    const calls = path.join(t, 'tool-calls');
    for (const tool of ['podman', 'skopeo', 'qemu-system-x86_64'])
      fs.writeFileSync(path.join(shim, tool), `#!/bin/sh\necho "${tool} $*" >> ${calls}\nexit 1\n`, { mode: 0o755 });
    const out = path.join(t, 'out');
    const r = await runAction({
      action: 'build-disk',
      runnerTemp: t,
      inputs: { 'tls-verify': 'false', 'output-dir': out, 'boot-test': 'false', ...inputs },
      env: { PATH: `${shim}:${process.env.PATH ?? ''}` },
    });
    return {
      r,
      /** Nothing built: no output directory, no work directory, no tool run. */
      untouched: () =>
        !fs.existsSync(out) &&
        fs.readdirSync(t).filter((f) => f.startsWith('keel-disk-')).length === 0 &&
        !fs.existsSync(calls),
    };
  }

  it.each(['live', 'bib'])('%s: refuses to run without a public-key, before any registry request', async (backend) => {
    proxy.reset();
    const { r, untouched } = await buildDisk({ 'image-ref': refs.unsigned!.replace(reg.host, proxy.host), backend });
    expect(r.code).toBe(1);
    expect(errors(r)).toEqual([
      "Input 'public-key': it is required: build-disk refuses to run without the cosign public key the image must verify with (set allow-unsigned: true to proceed without checking the signature)",
    ]);
    expect(proxy.connections()).toBe(0);
    expect(untouched()).toBe(true);
  });

  it.each([
    ['live', 'unsigned', /A signature was required, but no signature exists/],
    ['live', 'otherKey', /cryptographic signature verification failed/],
    ['live', 'tampered', /cryptographic signature verification failed/],
    ['bib', 'unsigned', /A signature was required, but no signature exists/],
    ['bib', 'otherKey', /cryptographic signature verification failed/],
    ['bib', 'tampered', /cryptographic signature verification failed/],
  ])('%s: refuses an image whose signature does not verify (%s), building nothing', async (backend, which, why) => {
    const { r, untouched } = await buildDisk({ 'image-ref': refs[which]!, backend, 'public-key': key.path });
    expect(r.code).toBe(1);
    expect(errors(r)[0]).toMatch(/^refusing .*: its signature does not verify with public-key: /);
    expect(errors(r)[0]).toMatch(why);
    expect(untouched()).toBe(true);
  });
});
