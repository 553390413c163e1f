// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadDeclarations } from '../../actions/lib/declarations.js';
import { ensureBaseImage, ensureExampleImage, repoRoot, type ExampleImage } from '../harness/example-image.js';

/**
 * The built example distro, inspected as files (a read-only look at a mounted working
 * container): the bootc layout, the kernel and initramfs rules, the OS identity, the staleness
 * check, the /var policy and the labels. Every check here is one the issue states for the image.
 */
const decl = loadDeclarations(path.join(repoRoot, 'declarations', 'distro.yaml'));
let img: ExampleImage;
let base: ExampleImage;
let root = '';
const ctr = `keel-test-distro-${crypto.randomUUID().slice(0, 8)}`;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const p = (rel: string) => path.join(root, rel);
const read = (rel: string) => fs.readFileSync(p(rel), 'utf8');

beforeAll(
  async () => {
    base = await ensureBaseImage({ oci: false });
    img = await ensureExampleImage({ oci: false });
    sh('buildah', ['from', '--pull=never', '--name', ctr, img.imageId]);
    root = sh('buildah', ['mount', ctr]).trim();
  },
  40 * 60 * 1000,
);

afterAll(() => {
  spawnSync('buildah', ['umount', ctr]);
  spawnSync('buildah', ['rm', ctr]);
});

describe('example image: kernel and initramfs the bootc way', () => {
  it('has exactly one /usr/lib/modules/<kver>/ with vmlinuz and initramfs.img, named by ostree.linux', () => {
    const kvers = fs.readdirSync(p('usr/lib/modules'));
    expect(kvers).toEqual([img.kernelVersion]);
    expect(img.labels['ostree.linux']).toBe(img.kernelVersion);
    const dir = `usr/lib/modules/${img.kernelVersion}`;
    expect(fs.statSync(p(`${dir}/vmlinuz`)).size).toBeGreaterThan(5 * 1024 * 1024);
    expect(fs.statSync(p(`${dir}/initramfs.img`)).size).toBeGreaterThan(
      decl.validate['min-initramfs-mb'] * 1024 * 1024,
    );
    expect(fs.readdirSync(p('boot'))).toEqual([]);
  });

  it('ships a generic initramfs with the ostree module and the drivers to find its root', () => {
    const listing = sh('chroot', [root, 'lsinitrd', `/usr/lib/modules/${img.kernelVersion}/initramfs.img`]);
    expect(listing).toMatch(/^Arguments: .*--no-hostonly .*--add 'ostree'/m);
    expect(listing).toContain('usr/lib/ostree/ostree-prepare-root');
    for (const m of decl.validate['initramfs-modules'])
      expect([m, new RegExp(`/${m}\\.ko`).test(listing)]).toEqual([m, true]);
  });

  it('persists the initramfs policy under /usr/lib/dracut/dracut.conf.d for later regenerations', () => {
    const conf = read(`usr/lib/dracut/dracut.conf.d/50-${decl.os.id}.conf`);
    expect(conf).toMatch(/^hostonly="no"$/m);
    expect(conf).toMatch(/^hostonly_cmdline="no"$/m);
    expect(conf).toMatch(/^add_dracutmodules\+=" ostree "$/m);
  });
});

describe('example image: identity and shipped files', () => {
  it('names the distro from the declarations in /usr/lib/os-release, /etc/os-release linking to it', () => {
    const osr = read('usr/lib/os-release');
    expect(osr).toMatch(new RegExp(`^ID=${decl.os.id}$`, 'm'));
    expect(osr).toContain(`NAME="${decl.os.name}"`);
    expect(osr).toContain(`PRETTY_NAME="${decl.os['pretty-name']}"`);
    expect(osr).toContain(`VARIANT_ID=${decl.os['variant-id']}`);
    expect(osr).toContain(`ID_LIKE="${decl.os['id-like']}"`);
    expect(osr).toMatch(/^VERSION_CODENAME=trixie$/m);
    expect(fs.readlinkSync(p('etc/os-release'))).toBe('../usr/lib/os-release');
  });

  it('stamps the creation label and the staleness policy into /usr for the user timer', () => {
    const info = read('usr/lib/keel/image-info.env');
    expect(info).toContain(`IMAGE_CREATED=${img.labels['org.opencontainers.image.created']}\n`);
    expect(info).toContain(`IMAGE_VERSION=${img.labels['org.opencontainers.image.version']}\n`);
    expect(info).toContain(`STALENESS_WARN_DAYS=${decl.staleness['warn-after-days']}\n`);
    expect(fs.statSync(p('usr/bin/keel-os-staleness')).mode & 0o777).toBe(0o755);
    expect(fs.existsSync(p('usr/lib/systemd/user/timers.target.wants/keel-os-staleness.timer'))).toBe(true);
    expect(fs.realpathSync(p('usr/lib/systemd/user/timers.target.wants/keel-os-staleness.timer'))).toBe(
      p('usr/lib/systemd/user/keel-os-staleness.timer'),
    );
  });

  it('merges system extensions at boot: systemd-sysext.service enabled in /usr', () => {
    const link = 'usr/lib/systemd/system/sysinit.target.wants/systemd-sysext.service';
    expect(fs.readlinkSync(p(link))).toBe('../systemd-sysext.service');
    expect(fs.existsSync(p('usr/lib/systemd/system/systemd-sysext.service'))).toBe(true);
  });

  it('runs its staleness check against its own stamp', () => {
    const r = spawnSync('chroot', [root, '/usr/bin/keel-os-staleness'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`within the ${decl.staleness['warn-after-days']}-day policy`);
  });

  it('keeps root locked: no password in any layer (debug a boot with systemd.debug_shell or init=/bin/sh)', () => {
    expect(read('etc/shadow')).toMatch(/^root:[*!][^:]*:/m);
    expect(read('etc/machine-id')).toBe('');
  });
});

describe('example image: bootc layout and cleanup', () => {
  it('has the ostree root layout and writable locations as links into /var', () => {
    expect(fs.statSync(p('sysroot')).isDirectory()).toBe(true);
    expect(fs.readlinkSync(p('ostree'))).toBe('sysroot/ostree');
    for (const [l, t] of [
      ['home', 'var/home'],
      ['root', 'var/roothome'],
      ['opt', 'var/opt'],
      ['srv', 'var/srv'],
      ['mnt', 'var/mnt'],
      ['usr/local', '../var/usrlocal'],
    ]) {
      expect([l, fs.readlinkSync(p(l!))]).toEqual([l, t]);
    }
    expect(read('usr/lib/ostree/prepare-root.conf')).toMatch(/^\[composefs\]$/m);
    for (const d of ['dev', 'proc', 'sys', 'run', 'tmp', 'var'])
      expect([d, fs.statSync(p(d)).isDirectory()]).toEqual([d, true]);
    expect(fs.existsSync(p('usr/etc'))).toBe(false);
  });

  it('has nothing under /var but empty directories and tmpfiles.d-declared links', () => {
    const entries = sh('find', [p('var'), '-mindepth', '1', '!', '-type', 'd', '-printf', '/var/%P %y %l\n'])
      .trim()
      .split('\n');
    const tmpfiles = sh('sh', ['-c', 'cat "$1"/usr/lib/tmpfiles.d/*.conf', 'sh', root]);
    const declared = new Set([...tmpfiles.matchAll(/^\S+\s+(\/var\/\S*)/gm)].map((m) => m[1]));
    for (const e of entries) {
      const [file, type] = e.split(' ');
      expect([file, type, declared.has(file)]).toEqual([file, 'l', true]);
    }
    expect(fs.readlinkSync(p('var/lib/dpkg'))).toBe('../../usr/lib/sysimage/dpkg');
    expect(read('usr/lib/sysimage/dpkg/status')).toMatch(/^Package: systemd$/m);
  });

  it('carries no package caches, apt lists or third-party repository definitions', () => {
    expect(sh('find', [p('var/cache'), p('var/lib/apt'), p('var/log'), '-type', 'f'])).toBe('');
    expect(fs.readdirSync(p('etc/apt/sources.list.d')).filter((f) => f !== 'debian.sources')).toEqual([]);
    expect(fs.readdirSync(p('etc/apt/trusted.gpg.d')).filter((f) => !f.startsWith('debian-archive-'))).toEqual([]);
    expect(fs.readdirSync(p('tmp'))).toEqual([]);
  });
});

describe('example image: labels', () => {
  it('carries containers.bootc, ostree.linux and the OCI set, base.digest naming the base built from', () => {
    const l = img.labels;
    expect(l['containers.bootc']).toBe('1');
    expect(l['ostree.linux']).toBe(img.kernelVersion);
    for (const k of [
      'created',
      'version',
      'revision',
      'source',
      'title',
      'description',
      'vendor',
      'licenses',
      'base.name',
      'base.digest',
    ]) {
      expect([k, (l[`org.opencontainers.image.${k}`] ?? '').length > 0]).toEqual([k, true]);
    }
    expect(l['org.opencontainers.image.title']).toBe(decl.image.title);
    expect(l['org.opencontainers.image.base.name']).toBe(decl.base.image);
    const baseDigest = sh('buildah', [
      'inspect',
      '--type',
      'image',
      '--format',
      '{{.FromImageDigest}}',
      base.imageId,
    ]).trim();
    expect(l['org.opencontainers.image.base.digest']).toBe(baseDigest);
    expect(l['org.opencontainers.image.created']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});
