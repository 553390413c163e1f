// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { processRunner } from '../../actions/lib/exec.js';
import { commitOfEntry } from '../../actions/lib/ostree.js';
import { parseBootEntry, readBootEntries, sortBootEntries, UnsafeBootEntryError } from '../../actions/lib/vm/bls.js';
import { Ext4Image } from '../../actions/lib/vm/ext4-image.js';
import { sh, tmpdir } from '../harness/tools.js';

/**
 * BLS entries and the ext4 disk they live on, read the way update-test reads them between boots
 * (debugfs on the image file: no mount, no root). What a guest wrote is hostile: these tests
 * give it paths that leave /boot, symlinks that point at the runner's files, and oversized or
 * garbled entries.
 */
const C = 'c'.repeat(64);
const P = 'a'.repeat(64);
const N = 'b'.repeat(64);
const entry = (version: number, index: number, extra = '') =>
  `title Keel OS (ostree:${index})\nversion ${version}\noptions root=UUID=1234 rw ostree=/ostree/boot.1/default/${C}/${index}\n` +
  `linux /ostree/default-${C}/vmlinuz-6.12\ninitrd /ostree/default-${C}/initramfs-6.12.img\n${extra}`;

describe('BLS entries (parse, refuse, order)', () => {
  it('parses what ostree writes', () => {
    const e = parseBootEntry(
      'ostree-2.conf',
      entry(2, 0, `aboot /ostree/deploy/default/deploy/${N}.0/usr/lib/ostree-boot/aboot.img\n`),
    );
    expect(e).toEqual({
      file: 'ostree-2.conf',
      title: 'Keel OS (ostree:0)',
      version: '2',
      sortKey: '',
      options: `root=UUID=1234 rw ostree=/ostree/boot.1/default/${C}/0`,
      linux: `/ostree/default-${C}/vmlinuz-6.12`,
      initrd: [`/ostree/default-${C}/initramfs-6.12.img`],
    });
  });

  it.each([
    ['a kernel path that climbs out of /boot', 'linux /ostree/../../etc/shadow', /"\.\." component/],
    ['a relative kernel path', 'linux vmlinuz', /not absolute/],
    ['an initrd path with a space (a second debugfs argument)', 'initrd /x /etc/shadow', /letters, digits/],
    ['an initrd path with a quote', 'initrd /x"y', /letters, digits/],
    ['a control character in the options', 'options quiet\x1b[2J', /control or non-ASCII/],
    ['two linux lines', 'linux /a\nlinux /b', /more than one linux line/],
  ])('refuses %s', (_what, line, why) => {
    const text = `title t\n${line}\n${line.startsWith('linux') ? '' : 'linux /vmlinuz\n'}`;
    expect(() => parseBootEntry('e.conf', text)).toThrow(UnsafeBootEntryError);
    expect(() => parseBootEntry('e.conf', text)).toThrow(why);
  });

  it('refuses an entry without a kernel, a huge one, and a name that is not NAME.conf', () => {
    expect(() => parseBootEntry('e.conf', 'title x\n')).toThrow(/no linux line/);
    expect(() => parseBootEntry('e.conf', `linux /v\n# ${'x'.repeat(70_000)}\n`)).toThrow(/larger than 65536 bytes/);
    expect(() => parseBootEntry('../e.conf', 'linux /v\n')).toThrow(/not a plain NAME\.conf/);
  });

  it('orders like a BLS bootloader: sort-key first, then the highest version, then the name', () => {
    const e = (file: string, version: string, sortKey = '') => ({
      ...parseBootEntry(file, `linux /v\nversion ${version}\n`),
      sortKey,
    });
    expect(
      sortBootEntries([e('ostree-1.conf', '1'), e('ostree-10.conf', '10'), e('ostree-2.conf', '2')]).map((x) => x.file),
    ).toEqual(['ostree-10.conf', 'ostree-2.conf', 'ostree-1.conf']);
    expect(sortBootEntries([e('a.conf', '9'), e('b.conf', '1', 'keel')]).map((x) => x.file)).toEqual([
      'b.conf',
      'a.conf',
    ]);
  });
});

describe('an ext4 disk image read and written with debugfs', () => {
  let dir: string;
  let img: Ext4Image;
  const runner = processRunner();
  beforeAll(() => {
    dir = tmpdir('keel-bls-');
    const root = path.join(dir, 'root');
    const mk = (rel: string, content: string | Buffer) => {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), content);
    };
    // An ostree-like /boot: loader -> loader.1, the deployment links, a kernel and initramfs.
    mk('boot/loader.1/entries/ostree-2.conf', entry(2, 0));
    mk('boot/loader.1/entries/ostree-1.conf', entry(1, 1));
    fs.symlinkSync('loader.1', path.join(root, 'boot/loader'));
    mk(`boot/ostree/default-${C}/vmlinuz-6.12`, 'KERNEL');
    mk(`boot/ostree/default-${C}/initramfs-6.12.img`, Buffer.alloc(5000, 7));
    fs.mkdirSync(path.join(root, `ostree/boot.1.0/default/${C}`), { recursive: true });
    fs.symlinkSync('boot.1.0', path.join(root, 'ostree/boot.1'));
    fs.symlinkSync(`../../../deploy/default/deploy/${N}.0`, path.join(root, `ostree/boot.1.0/default/${C}/0`));
    fs.symlinkSync(`../../../deploy/default/deploy/${P}.0`, path.join(root, `ostree/boot.1.0/default/${C}/1`));
    fs.mkdirSync(path.join(root, `ostree/deploy/default/deploy/${N}.0/etc/systemd`), { recursive: true });
    // Hostile: a boot file that is a symlink to the runner's /etc/passwd, and a deployment whose
    // /etc/systemd/system is a symlink to an absolute path.
    fs.symlinkSync('/etc/passwd', path.join(root, 'boot/ostree/passwd'));
    fs.symlinkSync('/etc/host-escape', path.join(root, `ostree/deploy/default/deploy/${N}.0/etc/systemd/system`));
    fs.mkdirSync(path.join(root, 'etc/host-escape'), { recursive: true });
    sh('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', root, path.join(dir, 'disk.img'), '16M']);
    img = new Ext4Image(path.join(dir, 'disk.img'), runner);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lists the entries through the loader symlink, default first, and maps each to its deployment', async () => {
    const entries = await readBootEntries(img);
    expect(entries.map((e) => e.file)).toEqual(['ostree-2.conf', 'ostree-1.conf']);
    expect(await commitOfEntry(img, entries[0]!)).toBe(N);
    expect(await commitOfEntry(img, entries[1]!)).toBe(P);
  });

  it('copies a kernel out, and refuses a symlink, a missing file, an oversized one and a path outside the grammar', async () => {
    const out = path.join(dir, 'k');
    expect(await img.copyOut(`/boot/ostree/default-${C}/initramfs-6.12.img`, out, 10_000)).toBe(5000);
    expect(fs.readFileSync(out).equals(Buffer.alloc(5000, 7))).toBe(true);
    await expect(img.copyOut('/boot/ostree/passwd', out, 10_000)).rejects.toThrow(/is a symlink, not a regular file/);
    await expect(img.copyOut('/boot/nope', out, 10_000)).rejects.toThrow(/does not exist/);
    await expect(img.copyOut(`/boot/ostree/default-${C}/initramfs-6.12.img`, out, 4999)).rejects.toThrow(
      /at most 4999/,
    );
    await expect(img.copyOut('/boot/../etc/passwd', out, 10_000)).rejects.toThrow(/"\.\." component/);
    expect(await img.readLink('/boot/ostree/passwd')).toBe('/etc/passwd'); // read, never followed on the runner
  });

  it('writes files owned by root, and refuses to write through a symlinked directory of the image', async () => {
    const etc = `/ostree/deploy/default/deploy/${N}.0/etc`;
    await img.writeFiles(
      [{ dest: `${etc}/keel-update-test/probe.sh`, content: '#!/bin/sh\necho hi\n', mode: 0o755 }],
      [{ dest: `${etc}/keel-update-test/link`, target: '../probe.sh' }],
      path.join(dir, 'scratch'),
    );
    expect((await img.readFile(`${etc}/keel-update-test/probe.sh`, 100)).toString()).toBe('#!/bin/sh\necho hi\n');
    expect(await img.stat(`${etc}/keel-update-test/probe.sh`)).toMatchObject({
      type: 'regular',
      uid: 0,
      gid: 0,
      mode: 0o755,
    });
    expect(await img.readLink(`${etc}/keel-update-test/link`)).toBe('../probe.sh');

    const canary = '/etc/host-escape/keel-probe.service';
    fs.rmSync(canary, { force: true });
    await expect(
      img.writeFiles(
        [{ dest: `${etc}/systemd/system/keel-probe.service`, content: '[Unit]\n', mode: 0o644 }],
        [],
        path.join(dir, 'scratch'),
      ),
    ).rejects.toThrow(/refusing to write into .*\/etc\/systemd\/system of .*: it is a symlink, not a directory/);
    expect(fs.existsSync(canary)).toBe(false);
    expect(await img.stat('/etc/host-escape/keel-probe.service')).toBeUndefined();
  });
});
