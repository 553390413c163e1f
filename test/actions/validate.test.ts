// test-kind: integration
import { beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { derivedImage, makeOciImage, tarDir, tmpdir } from '../harness/tools.js';

const K = '6.12.0-keel-test';

/** A real newc cpio, optionally zstd-compressed, with the given member paths. */
function cpio(members: string[], opts: { zstd?: boolean; pad?: number } = {}): Buffer {
  const dir = tmpdir('keel-cpio-');
  for (const m of members) {
    fs.mkdirSync(path.join(dir, path.dirname(m)), { recursive: true });
    fs.writeFileSync(path.join(dir, m), m);
  }
  // Random padding: it must stay large after compression.
  if (opts.pad) fs.writeFileSync(path.join(dir, 'padding.bin'), crypto.randomBytes(opts.pad));
  const list = spawnSync('find', ['.', '-mindepth', '1'], { cwd: dir, encoding: 'utf8' }).stdout;
  const out = spawnSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: dir, input: list, maxBuffer: 1 << 28 });
  if (out.status !== 0) throw new Error(String(out.stderr));
  if (!opts.zstd) return out.stdout;
  return spawnSync('zstd', ['-q', '-c', '-1'], { input: out.stdout, maxBuffer: 1 << 28 }).stdout;
}

const goodInitramfs = () =>
  Buffer.concat([
    cpio(['kernel/x86/microcode/GenuineIntel.bin']), // early, uncompressed
    cpio(
      [
        `usr/lib/modules/${K}/kernel/drivers/block/virtio_blk.ko.xz`,
        `usr/lib/modules/${K}/kernel/fs/ext4/ext4.ko.xz`,
        'usr/lib/ostree/ostree-prepare-root',
        'init',
      ],
      { zstd: true, pad: 300_000 },
    ),
  ]);

function fixture(
  opts: { files?: Record<string, string | Buffer>; labels?: Record<string, string>; drop?: string[] } = {},
) {
  const files: Record<string, string | Buffer> = {
    [`usr/lib/modules/${K}/vmlinuz`]: 'kernel image',
    [`usr/lib/modules/${K}/initramfs.img`]: goodInitramfs(),
    [`usr/lib/modules/${K}/modules.builtin`]: 'kernel/drivers/virtio/virtio.ko\n',
    'usr/lib/os-release': 'NAME="Keel Test"\nID=keel-test\n',
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
    'usr/bin/ostree': 'ostree',
    'usr/lib/tmpfiles.d/keel.conf': 'd /var/lib/keel 0755 root root -\n',
    'usr/lib/tmpfiles.d/var.conf': 'q /var 0755 - - -\nd /var/lib 0755 - - -\n',
    'var/lib/keel/.keep-dir-marker': '',
    ...(opts.files ?? {}),
  };
  for (const d of opts.drop ?? []) delete files[d];
  // tar cannot express "an empty directory only" via files: drop the marker, keep the dir.
  const dir = tmpdir('keel-validate-');
  const img = makeOciImage(dir, {
    layers: [files],
    labels: { 'containers.bootc': '1', 'ostree.linux': K, ...(opts.labels ?? {}) },
  });
  return `oci:${img.dir}:latest`;
}

const validate = (image: string, extra: Record<string, string> = {}) =>
  runAction({
    action: 'validate',
    inputs: { image, 'min-initramfs-mb': '0.1', 'var-allow': 'var/lib/keel/.keep-dir-marker', ...extra },
  });

describe('validate (bundled) on synthetic images', () => {
  let good: string;
  beforeAll(() => {
    good = fixture();
  });

  it('passes a well-formed image and writes a JSON report with every check', async () => {
    const r = await validate(good);
    expect(errors(r)).toEqual([]);
    expect(r.outputs.passed).toBe('true');
    const report = JSON.parse(fs.readFileSync(r.outputs.report!, 'utf8'));
    expect(report.checks.map((c: { id: string }) => c.id)).toHaveLength(14);
    const byId = Object.fromEntries(
      report.checks.map((c: { id: string; status: string; evidence: string }) => [c.id, c]),
    );
    expect(byId['initramfs-generic'].evidence).toMatch(
      /generic \(no dracut host-only markers\): none cpio \(\d+ entries\) \+ zstd cpio \(\d+ entries\)/,
    );
    expect(byId['initramfs-contents'].evidence).toMatch(/virtio_blk \(module\), ext4 \(module\), ostree-prepare-root/);
    expect(byId['bootc-lint'].status).toBe('skip');
    expect(r.summary).toMatch(/\| one-kernel: exactly one kernel/);
  });

  it.each([
    [
      'two kernels',
      { files: { 'usr/lib/modules/6.13.0-other/vmlinuz': 'k2' } },
      'one-kernel',
      /2 kernel directories: 6\.12\.0-keel-test, 6\.13\.0-other/,
    ],
    [
      'initramfs only in /boot',
      { drop: [`usr/lib/modules/${K}/initramfs.img`], files: { [`boot/initramfs-${K}.img`]: 'x' } },
      'kernel-files',
      /initramfs\.img missing; found only in \/boot: boot\/initramfs-6\.12\.0-keel-test\.img/,
    ],
    [
      'a 1 MB initramfs (threshold 2)',
      { files: { [`usr/lib/modules/${K}/initramfs.img`]: cpio(['init'], { pad: 1024 * 1024 }) } },
      'initramfs-size',
      /1\.0 MB < 2 MB/,
    ],
    [
      'an unreadable initramfs',
      { files: { [`usr/lib/modules/${K}/initramfs.img`]: Buffer.alloc(300_000, 9) } },
      'initramfs-generic',
      /not a readable initramfs/,
    ],
    [
      'a host-only initramfs (dracut hostonly-files)',
      {
        files: {
          [`usr/lib/modules/${K}/initramfs.img`]: cpio(
            [
              `usr/lib/modules/${K}/virtio_blk.ko`,
              `usr/lib/modules/${K}/ext4.ko`,
              'usr/lib/ostree/ostree-prepare-root',
              'usr/lib/dracut/hostonly-files',
            ],
            { zstd: true, pad: 300_000 },
          ),
        },
      },
      'initramfs-generic',
      /^host-only initramfs: dracut wrote \/usr\/lib\/dracut\/hostonly-files/,
    ],
    [
      'a wrong ostree.linux label',
      { labels: { 'ostree.linux': '6.1.0-base' } },
      'ostree-linux-label',
      /ostree\.linux="6\.1\.0-base" but the kernel directory is 6\.12\.0-keel-test/,
    ],
    [
      'a missing bootc label',
      { labels: { 'containers.bootc': '' } },
      'bootc-label',
      /containers\.bootc="" \(must be "1"\)/,
    ],
    [
      'a leftover repo file',
      { files: { 'etc/yum.repos.d/_copr:copr.fedorainfracloud.org:someone:kernel.repo': '[copr]' } },
      'no-repo-files',
      /_copr:copr\.fedorainfracloud\.org:someone:kernel\.repo/,
    ],
    [
      'a leftover apt list',
      { files: { 'etc/apt/sources.list.d/thirdparty.list': 'deb http://x y main' } },
      'no-repo-files',
      /thirdparty\.list/,
    ],
    [
      'a file in /var',
      { files: { 'var/cache/apt/pkgcache.bin': 'x' } },
      'var-content',
      /non-directory\/non-symlink files in \/var: \/var\/cache\/apt\/pkgcache\.bin/,
    ],
    [
      'a missing ostree module',
      {
        files: {
          [`usr/lib/modules/${K}/initramfs.img`]: cpio(
            [`usr/lib/modules/${K}/virtio_blk.ko`, `usr/lib/modules/${K}/ext4.ko`],
            { zstd: true, pad: 300_000 },
          ),
        },
      },
      'initramfs-contents',
      /missing: ostree-prepare-root \(the image ships ostree\)/,
    ],
    [
      'no root user',
      { files: { 'etc/passwd': 'admin:x:0:0::/root:/bin/sh\n' } },
      'passwd',
      /admin has uid 0; no root user/,
    ],
  ])('fails on %s, naming check %s', async (_what, opts, id, evidence) => {
    // initramfs-size is warn-only by default: warn-checks none makes it gate.
    const extra: Record<string, string> =
      id === 'initramfs-size' && _what.includes('1 MB') ? { 'min-initramfs-mb': '2', 'warn-checks': 'none' } : {};
    const r = await validate(fixture(opts as Parameters<typeof fixture>[0]), extra);
    expect(r.code).toBe(1);
    expect(r.outputs.passed).toBe('false');
    const report = JSON.parse(fs.readFileSync(r.outputs.report!, 'utf8'));
    const failed = report.checks.filter((c: { status: string }) => c.status === 'fail');
    expect(failed.map((c: { id: string }) => c.id)).toContain(id);
    expect(failed.find((c: { id: string }) => c.id === id).evidence).toMatch(evidence);
    expect(errors(r).join('\n')).toMatch(new RegExp(`FAIL ${id}:`));
  });

  it('runs every check and lists all failures at the end', async () => {
    const r = await validate(
      fixture({
        labels: { 'ostree.linux': 'wrong', 'containers.bootc': '0' },
        files: { 'etc/apt/sources.list.d/x.list': 'deb x' },
      }),
    );
    const last = errors(r).at(-1)!;
    expect(last).toMatch(/^3 check\(s\) failed: ostree-linux-label .*; bootc-label .*; no-repo-files/);
  });

  it('passes a generic 21 MB initramfs with the defaults: the 50 MB size hint only warns', async () => {
    const image = fixture({
      files: {
        [`usr/lib/modules/${K}/initramfs.img`]: cpio(
          [
            `usr/lib/modules/${K}/virtio_blk.ko`,
            `usr/lib/modules/${K}/ext4.ko`,
            'usr/lib/ostree/ostree-prepare-root',
            'usr/lib/dracut/build-parameter.txt',
          ],
          { zstd: true, pad: 21 * 1024 * 1024 },
        ),
      },
    });
    const r = await runAction({ action: 'validate', inputs: { image, 'var-allow': 'var/lib/keel/.keep-dir-marker' } });
    expect(errors(r)).toEqual([]);
    expect([r.code, r.outputs.passed]).toEqual([0, 'true']);
    const report = JSON.parse(fs.readFileSync(r.outputs.report!, 'utf8'));
    const byId = Object.fromEntries(report.checks.map((c: { id: string }) => [c.id, c]));
    expect(byId['initramfs-generic'].status).toBe('pass');
    expect(byId['initramfs-size']).toMatchObject({
      status: 'warn',
      evidence: expect.stringMatching(/^21\.\d MB < 50 MB/),
    });
    expect(report.warnChecks).toEqual(['initramfs-size']);
    expect(warnings(r).join('\n')).toMatch(
      /WARN initramfs-size: 21\.\d MB < 50 MB .*\(warn-only: listed in warn-checks\)/,
    );
    expect(r.summary).toMatch(/⚠️ warn/);
  });

  it('a failed warn-only check keeps passed=true; the same failure gates when not listed', async () => {
    const image = fixture({ labels: { 'containers.bootc': '' } });
    const warned = await validate(image, { 'warn-checks': 'bootc-label' });
    expect([warned.code, warned.outputs.passed]).toEqual([0, 'true']);
    expect(warnings(warned).join('\n')).toMatch(/WARN bootc-label: containers\.bootc=""/);
    const gated = await validate(image);
    expect([gated.code, gated.outputs.passed]).toEqual([1, 'false']);
    expect(errors(gated).join('\n')).toMatch(/FAIL bootc-label/);
  });

  it('rejects an unknown check id naming the input', async () => {
    const r = await validate(good, { checks: 'one-kernel\nno-such-check' });
    expect(errors(r)[0]).toMatch(/^Input 'checks' has value .*item "no-such-check": expected all or one of one-kernel/);
  });
});

describe('validate on the example distro and fixtures derived from it', () => {
  let img: import('../harness/example-image.js').ExampleImage;
  beforeAll(
    async () => {
      const { ensureExampleImage } = await import('../harness/example-image.js');
      img = await ensureExampleImage({ oci: true });
    },
    40 * 60 * 1000,
  );

  it('passes the example image with the defaults: generic initramfs, the size hint only warns', async () => {
    const r = await runAction({ action: 'validate', inputs: { image: img.ociRef } });
    expect(errors(r)).toEqual([]);
    expect(r.outputs.passed).toBe('true');
    const report = JSON.parse(fs.readFileSync(r.outputs.report!, 'utf8'));
    const generic = report.checks.find((c: { id: string }) => c.id === 'initramfs-generic');
    expect(generic).toMatchObject({
      status: 'pass',
      evidence: expect.stringMatching(/generic \(no dracut host-only markers\)/),
    });
  }, 120_000);

  it('fails a real host-only initramfs (dracut --hostonly run in the example image), saying host-only', async () => {
    const out = tmpdir('keel-hostonly-');
    const ctr = spawnSync('buildah', ['from', '--pull-never', img.name], { encoding: 'utf8' }).stdout.trim();
    try {
      const dracut = spawnSync(
        'buildah',
        [
          'run',
          '--isolation',
          'chroot',
          '-v',
          `${out}:/out`,
          ctr,
          '--',
          'dracut',
          '--force',
          '--hostonly',
          '--kver',
          img.kernelVersion,
          '/out/initramfs.img',
        ],
        { encoding: 'utf8', maxBuffer: 1 << 26 },
      );
      expect([dracut.status, dracut.stderr.slice(-2000)]).toEqual([0, expect.any(String)]);
    } finally {
      spawnSync('buildah', ['rm', ctr]);
    }
    const hostOnly = fs.readFileSync(path.join(out, 'initramfs.img'));
    fs.rmSync(out, { recursive: true, force: true });
    const image = derivedImage(
      img.ociDir,
      'latest',
      layerOf({ [`usr/lib/modules/${img.kernelVersion}/initramfs.img`]: hostOnly }),
    );
    const r = await runAction({ action: 'validate', inputs: { image } });
    expect(r.code).toBe(1);
    const report = JSON.parse(fs.readFileSync(r.outputs.report!, 'utf8'));
    const generic = report.checks.find((c: { id: string }) => c.id === 'initramfs-generic');
    expect(generic.status).toBe('fail');
    expect(generic.evidence).toMatch(/^host-only initramfs: dracut wrote \/usr\/lib\/dracut\/hostonly-files/);
    expect(errors(r).at(-1)).toMatch(/initramfs-generic \(host-only initramfs/);
  }, 600_000);

  it('passes the example image read in place from containers-storage (mounted, no copy) and from its OCI layout', async () => {
    for (const image of [img.localRef, img.ociRef]) {
      const r = await runAction({
        action: 'validate',
        inputs: { image, 'min-initramfs-mb': '30', 'initramfs-modules': 'virtio_blk\next4\nsquashfs\noverlay' },
      });
      expect([image, errors(r)]).toEqual([image, []]);
      expect(r.outputs.passed).toBe('true');
    }
  }, 120_000);

  it('install-media live-iso: the example image passes; without dmsquash-live it fails by check name', async () => {
    const ok = await runAction({ action: 'validate', inputs: { image: img.ociRef, 'install-media': 'live-iso' } });
    expect([errors(ok), ok.outputs.passed]).toEqual([[], 'true']);
    const okReport = JSON.parse(fs.readFileSync(ok.outputs.report!, 'utf8'));
    expect(okReport.checks.find((c: { id: string }) => c.id === 'install-media')).toMatchObject({
      status: 'pass',
      evidence: expect.stringMatching(/dmsquash-live module, \/tmp, kernel modules squashfs, loop, isofs, overlay$/),
    });
    // The example image with dracut's dmsquash-live module whited out (as removing dracut-live would).
    const image = derivedImage(img.ociDir, 'latest', layerOf({ 'usr/lib/dracut/modules.d/.wh.90dmsquash-live': '' }));
    const r = await runAction({ action: 'validate', inputs: { image, 'install-media': 'live-iso' } });
    expect([r.code, r.outputs.passed]).toEqual([1, 'false']);
    const report = JSON.parse(fs.readFileSync(r.outputs.report!, 'utf8'));
    expect(report.checks.filter((c: { status: string }) => c.status === 'fail')).toEqual([
      expect.objectContaining({
        id: 'install-media',
        evidence: expect.stringMatching(/^live-iso: missing dracut’s dmsquash-live module/),
      }),
    ]);
    expect(errors(r).at(-1)).toMatch(/^1 check\(s\) failed: install-media \(live-iso: missing dracut’s dmsquash-live/);
  }, 240_000);

  const layerOf = (files: Record<string, string | Buffer>): Buffer => {
    const d = tmpdir('keel-neg-');
    for (const [p, c] of Object.entries(files)) {
      fs.mkdirSync(path.join(d, path.dirname(p)), { recursive: true });
      fs.writeFileSync(path.join(d, p), c);
    }
    return tarDir(d);
  };

  it.each([
    [
      'two kernels',
      () => ({ files: { 'usr/lib/modules/6.99.0-extra/vmlinuz': 'k' } }),
      'one-kernel',
      /2 kernel directories/,
    ],
    [
      'initramfs only in /boot',
      () => ({
        files: {
          [`usr/lib/modules/${img.kernelVersion}/.wh.initramfs.img`]: '',
          [`boot/initramfs-${img.kernelVersion}.img`]: 'x',
        },
      }),
      'kernel-files',
      /found only in \/boot/,
    ],
    [
      'a 1 MB initramfs',
      () => ({
        files: { [`usr/lib/modules/${img.kernelVersion}/initramfs.img`]: cpio(['init'], { pad: 1024 * 1024 }) },
      }),
      'initramfs-size',
      /1\.\d MB < 30 MB/,
    ],
    [
      'a wrong ostree.linux label',
      () => ({ files: { 'etc/motd': 'hi' }, labels: { 'ostree.linux': '6.1.0-inherited-from-base' } }),
      'ostree-linux-label',
      /6\.1\.0-inherited-from-base" but the kernel directory is/,
    ],
    [
      'a leftover repo file',
      () => ({ files: { 'etc/apt/sources.list.d/vendor.list': 'deb http://example.invalid stable main' } }),
      'no-repo-files',
      /vendor\.list/,
    ],
  ])(
    'fails on %s, naming check %s',
    async (_what, spec, id, evidence) => {
      const s = spec() as { files: Record<string, string | Buffer>; labels?: Record<string, string> };
      const image = derivedImage(img.ociDir, 'latest', layerOf(s.files), s.labels);
      const r = await runAction({
        action: 'validate',
        inputs: { image, 'min-initramfs-mb': '30', 'warn-checks': 'none' },
      });
      expect(r.code).toBe(1);
      const report = JSON.parse(fs.readFileSync(r.outputs.report!, 'utf8'));
      const failed = report.checks.filter((c: { status: string }) => c.status === 'fail');
      expect(failed.map((c: { id: string }) => c.id)).toContain(id);
      expect(failed.find((c: { id: string }) => c.id === id).evidence).toMatch(evidence);
    },
    120_000,
  );
});
