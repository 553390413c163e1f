// test-kind: unit
import { PackageDatabaseError } from '../../actions/lib/packages/types.js';
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { CommandRunner } from '../../actions/lib/exec.js';
import { memoryLogger } from '../../actions/lib/log.js';
import { assignComponents } from '../../actions/lib/rechunk/components.js';
import { DirectoryRootfs } from '../../actions/lib/rootfs/directory.js';
import { LayeredRootfs, type LayerRef } from '../../actions/lib/rootfs/layered.js';
import { HostileLayerError, UnsafePathError } from '../../actions/lib/safe-path.js';
import { readTar, TarFormatError, type TarHeader } from '../../actions/lib/tar/reader.js';
import { copyOutOf, unpackRootfs } from '../../actions/lib/vm/unpack.js';
import { rawTar, type RawEntry } from '../harness/raw-tar.js';
import { tmpdir } from '../harness/tools.js';

const made: string[] = [];
const scratch = (prefix: string): string => {
  const d = tmpdir(prefix);
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

async function headers(tar: Buffer): Promise<TarHeader[]> {
  const out: TarHeader[] = [];
  for await (const e of readTar(Readable.from([tar]))) {
    await e.buffer();
    out.push(e.header);
  }
  return out;
}

const layer = (digest: string, entries: RawEntry[]): LayerRef => {
  const tar = rawTar(entries);
  return { digest, compression: 'none', open: () => Readable.from([tar]) };
};
const L0 = `sha256:${'0'.repeat(64)}`;
const L1 = `sha256:${'1'.repeat(64)}`;
const dir = (name: string): RawEntry => ({ name, type: '5' });
const file = (name: string, body = 'x'): RawEntry => ({ name, body });
const symlink = (name: string, target: string): RawEntry => ({ name, type: '2', linkname: target });

/** GNU tar's verdict on an archive (it is the extractor other tools agree with). */
function gnuTarLists(tar: Buffer): boolean {
  return spawnSync('tar', ['-tf', '-'], { input: tar }).status === 0;
}

describe('tar reader refuses unsafe names, naming the entry', () => {
  it.each([
    ['a ".." component', [file('../x')], '../x', /"\.\." component/],
    ['a ".." inside the path', [dir('usr'), file('usr/../../x')], 'usr/../../x', /"\.\." component/],
    ['an absolute name', [file('/abs')], '/abs', /absolute/],
    ['a NUL byte (PAX path)', [{ name: 'placeholder', body: 'x', pax: { path: 'a\u0000b' } }], 'a\u0000b', /NUL/],
    [
      'an absolute hardlink target',
      [{ name: 'h', type: '1', linkname: '/etc/passwd' }],
      'h',
      /hardlink target.*absolute/,
    ],
    ['a ".." hardlink target', [{ name: 'h', type: '1', linkname: '../etc/passwd' }], 'h', /hardlink target.*"\.\."/],
  ])('%s', async (_what, entries, entry, reason) => {
    const err = await headers(rawTar(entries)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePathError);
    expect((err as UnsafePathError).entry).toBe(entry);
    expect((err as Error).message).toMatch(reason);
  });

  it('still reads "./"-prefixed names, relative and absolute symlink targets', async () => {
    const hs = await headers(
      rawTar([dir('./'), dir('./usr'), file('./usr/f'), symlink('./lib', '/usr/lib'), symlink('up', '../usr')]),
    );
    expect(hs.map((h) => `${h.path}:${h.linkname}`)).toEqual(['.:', 'usr:', 'usr/f:', 'lib:/usr/lib', 'up:../usr']);
  });
});

describe('tar reader refuses numbers that are not finite non-negative integers', () => {
  it.each([
    ['PAX size=abc', { pax: { size: 'abc' } }, /PAX size="abc"/],
    ['PAX size=-5', { pax: { size: '-5' } }, /PAX size="-5"/],
    ['PAX size=1e3', { pax: { size: '1e3' } }, /PAX size="1e3"/],
    ['PAX uid=-1', { pax: { uid: '-1' } }, /PAX uid="-1"/],
    ['PAX gid=abc', { pax: { gid: 'abc' } }, /PAX gid="abc"/],
    ['PAX mtime=-1.5', { pax: { mtime: '-1.5' } }, /PAX mtime="-1.5"/],
    ['PAX mtime=NaN', { pax: { mtime: 'NaN' } }, /PAX mtime="NaN"/],
    ['PAX devmajor=x', { pax: { 'SCHILY.devmajor': 'x' } }, /PAX SCHILY\.devmajor="x"/],
    ['header uid "12x4"', { uid: '12x4' }, /header uid field "12x4"/],
    ['header mode "rwxr-x"', { mode: 'rwxr-x' }, /header mode field/],
    ['header mtime base-256 negative', { mtime: '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe' }, /header mtime/],
  ] as [string, Partial<RawEntry>, RegExp][])('%s', async (_what, fields, reason) => {
    const tar = rawTar([dir('usr'), { name: 'usr/victim', body: 'hello', ...fields }]);
    const err = await headers(tar).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TarFormatError);
    expect((err as TarFormatError).entry).toBe('usr/victim');
    expect((err as Error).message).toMatch(reason);
  });

  it('refuses a header size that does not parse before reading on (the body would be parsed as headers)', async () => {
    const smuggled = rawTar([file('../smuggled')]).subarray(0, 1024);
    const tar = rawTar([{ name: 'usr-victim', body: smuggled, size: 'zz' }]);
    await expect(headers(tar)).rejects.toThrow(/header size field is not a non-negative integer/);
  });

  it('agrees with GNU tar on PAX size=abc: both refuse the archive', async () => {
    const tar = rawTar([{ name: 'victim', body: 'hello', pax: { size: 'abc' } }]);
    expect(gnuTarLists(tar)).toBe(false);
    await expect(headers(tar)).rejects.toMatchObject({ name: 'TarFormatError', entry: 'victim' });
    expect(gnuTarLists(rawTar([{ name: 'victim', body: 'hello' }]))).toBe(true);
  });

  it('accepts a fractional PAX mtime and large PAX ids', async () => {
    const [h] = await headers(rawTar([{ name: 'f', body: 'x', pax: { mtime: '1700000000.25', uid: '4294967294' } }]));
    expect(h).toMatchObject({ mtime: 1700000000.25, uid: 4294967294, size: 1 });
  });

  it('refuses GNU sparse entries (GNU tar would extract content this reader does not see)', async () => {
    await expect(headers(rawTar([{ name: 'sparse', type: 'S' }]))).rejects.toThrow(/sparse/);
    await expect(headers(rawTar([{ name: 'f', body: 'x', pax: { 'GNU.sparse.major': '1' } }]))).rejects.toThrow(
      /sparse/,
    );
  });
});

describe('layered index refuses hostile layers, naming the layer digest and the entry', () => {
  const refusal = async (layers: LayerRef[]) => {
    const err = await new LayeredRootfs(layers).index().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostileLayerError);
    return err as HostileLayerError;
  };

  it('adds the layer digest to what the reader refuses', async () => {
    const e = await refusal([layer(L0, [dir('usr')]), layer(L1, [dir('usr'), file('../x')])]);
    expect(e).toMatchObject({ layer: L1, entry: '../x' });
    expect(e.message).toContain(L1);
    const n = await refusal([layer(L0, [{ name: 'usr-f', body: 'x', pax: { size: '-5' } }])]);
    expect(n).toMatchObject({ layer: L0, entry: 'usr-f' });
    expect(n.message).toMatch(/PAX size="-5"/);
  });

  it('refuses a write through a symlink earlier in the same layer', async () => {
    const e = await refusal([layer(L0, [symlink('evil', '/tmp'), file('evil/x')])]);
    expect(e).toMatchObject({ layer: L0, entry: 'evil/x' });
    expect(e.message).toMatch(/evil is a symlink earlier in this layer/);
  });

  it('refuses a write through a symlink from a lower layer (the final view)', async () => {
    const e = await refusal([layer(L0, [symlink('evil', '/etc')]), layer(L1, [file('evil/cron.d/x')])]);
    expect(e).toMatchObject({ layer: L1, entry: 'evil/cron.d/x' });
    expect(e.message).toMatch(/evil is a symlink in the final filesystem/);
  });

  it('refuses a write into a regular file, a hardlink through a symlink, and a root that is a symlink', async () => {
    expect((await refusal([layer(L0, [file('a'), file('a/b')])])).message).toMatch(/a is a file/);
    const h = await refusal([
      layer(L0, [symlink('etc', '/etc'), { name: 'shadow', type: '1', linkname: 'etc/shadow' }]),
    ]);
    expect(h).toMatchObject({ entry: 'shadow' });
    expect(h.message).toMatch(/hardlink target "etc\/shadow" goes through a non-directory: etc is a symlink/);
    expect((await refusal([layer(L0, [symlink('./', '/'), file('x')])])).message).toMatch(/the root is a symlink/);
  });

  it('still accepts an upper symlink that replaces a lower directory (the subtree is hidden, not written)', async () => {
    const idx = await new LayeredRootfs([
      layer(L0, [dir('lib'), file('lib/old')]),
      layer(L1, [symlink('lib', 'usr/lib')]),
    ]).index();
    expect(idx.get('lib')?.type).toBe('symlink');
    expect(idx.has('lib/old')).toBe(false);
  });
});

describe('writers of image content refuse before writing', () => {
  it('unpackRootfs runs no tar and creates nothing for a hostile image', async () => {
    const calls: string[][] = [];
    const runner: CommandRunner = {
      run: async (cmd, args) => {
        calls.push([cmd, ...args]);
        return { code: 0, stdout: Buffer.alloc(0), stderr: '' } as never;
      },
    };
    const dest = path.join(scratch('keel-hostile-unpack-'), 'root');
    const rootfs = new LayeredRootfs([layer(L0, [symlink('evil', '/tmp')]), layer(L1, [file('evil/x')])]);
    await expect(unpackRootfs(rootfs, dest, runner, memoryLogger())).rejects.toThrow(HostileLayerError);
    expect(calls).toEqual([]);
    expect(fs.existsSync(dest)).toBe(false);
  });

  it('the rpm database copy stays in its temp dir whatever the entry names say', async () => {
    const marker = `keel-hostile-rpm-${process.pid}-${Date.now()}`;
    const db = 'usr/lib/sysimage/rpm';
    const evil = `${db}/../../../../../../../../tmp/${marker}`;
    const h = (p: string, type: TarHeader['type']): TarHeader => ({
      path: p,
      type,
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 1,
      mtime: 0,
      linkname: '',
      uname: '',
      gname: '',
      devmajor: 0,
      devminor: 0,
    });
    const index = new Map([db, `${db}/rpmdb.sqlite`, evil].map((p, i) => [p, h(p, i ? 'file' : 'dir')]));
    const runner: CommandRunner = { run: async () => ({ code: 0, stdout: Buffer.alloc(0), stderr: '' }) as never };
    const err = await assignComponents(index, {
      largeFileBytes: 1 << 20,
      log: memoryLogger(),
      runner,
      readFiles: async (paths) => new Map(paths.map((p) => [p, Buffer.from('x')])),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PackageDatabaseError);
    expect((err as Error).message).toMatch(/its path is unsafe: it has a "\.\." component/);
    expect(fs.existsSync(`/tmp/${marker}`)).toBe(false);
  });

  it('copyOutOf refuses symlinks (the file or a parent) and non-regular files, and copies a regular file', () => {
    const root = scratch('keel-hostile-tree-');
    const outside = scratch('keel-hostile-outside-');
    fs.writeFileSync(path.join(outside, 'secret'), 'runner secret');
    fs.mkdirSync(path.join(root, 'k'));
    fs.symlinkSync(path.join(outside, 'secret'), path.join(root, 'k/vmlinuz'));
    fs.symlinkSync(outside, path.join(root, 'linkdir'));
    spawnSync('mkfifo', [path.join(root, 'k/fifo')]);
    fs.writeFileSync(path.join(root, 'k/initramfs.img'), 'initrd');
    const dest = path.join(scratch('keel-hostile-dest-'), 'out');
    expect(() => copyOutOf(root, 'k/vmlinuz', dest)).toThrow(/k\/vmlinuz is a symlink/);
    expect(() => copyOutOf(root, 'linkdir/secret', dest)).toThrow(/linkdir is a symlink/);
    expect(() => copyOutOf(root, 'k/fifo', dest)).toThrow(/not a regular file/);
    expect(() => copyOutOf(root, '../x', dest)).toThrow(UnsafePathError);
    expect(fs.existsSync(dest)).toBe(false);
    copyOutOf(root, 'k/initramfs.img', dest);
    expect(fs.readFileSync(dest, 'utf8')).toBe('initrd');
  });

  it('DirectoryRootfs reads refuse a directory that became a symlink after the walk', async () => {
    const root = scratch('keel-hostile-mount-');
    const outside = scratch('keel-hostile-outside-');
    fs.mkdirSync(path.join(root, 'etc'));
    fs.writeFileSync(path.join(root, 'etc/os-release'), 'ID=keel');
    fs.writeFileSync(path.join(outside, 'os-release'), 'runner file');
    const rootfs = new DirectoryRootfs(root);
    await rootfs.index();
    fs.rmSync(path.join(root, 'etc'), { recursive: true });
    fs.symlinkSync(outside, path.join(root, 'etc'));
    await expect(rootfs.readFiles(['etc/os-release'])).rejects.toThrow(/etc is a symlink/);
  });
});
