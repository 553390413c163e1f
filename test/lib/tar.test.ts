// test-kind: integration
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { readTar } from '../../actions/lib/tar/reader.js';
import { writeTar, type WriteEntry } from '../../actions/lib/tar/writer.js';
import { tmpdir } from '../harness/tools.js';

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

function gnuTar(args: string[], cwd: string): Buffer {
  const r = spawnSync('tar', args, { cwd, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('tar reader', () => {
  it('reads GNU tar archives with PAX xattrs (binary capability), long names, hardlinks, symlinks, devices', async () => {
    const dir = tmpdir();
    const long = `${'d'.repeat(120)}/${'f'.repeat(130)}`;
    fs.mkdirSync(path.join(dir, 'd'.repeat(120)));
    fs.writeFileSync(path.join(dir, long), 'long name content');
    fs.writeFileSync(path.join(dir, 'ping'), 'binary');
    spawnSync('setcap', ['cap_net_raw+ep', path.join(dir, 'ping')]);
    spawnSync('setfattr', ['-n', 'user.keel', '-v', '0x00ff10', path.join(dir, 'ping')]);
    fs.linkSync(path.join(dir, 'ping'), path.join(dir, 'ping-hard'));
    fs.symlinkSync(`../${'x'.repeat(150)}`, path.join(dir, 'longlink'));
    fs.chmodSync(path.join(dir, 'ping'), 0o4755);
    spawnSync('mknod', [path.join(dir, 'null'), 'c', '1', '3']);
    const tar = gnuTar(['--format=posix', '--xattrs', '--xattrs-include=*', '--sort=name', '-cf', '-', '.'], dir);
    const seen = new Map<string, { h: import('../../actions/lib/tar/reader.js').TarHeader; body: Buffer }>();
    for await (const e of readTar(Readable.from([tar])))
      seen.set(e.header.path, { h: e.header, body: await e.buffer() });
    expect(seen.get('.')?.h.type).toBe('dir');
    expect(seen.get(long)?.body.toString()).toBe('long name content');
    const ping = seen.get('ping')!;
    expect(ping.h.mode).toBe(0o4755);
    const cap = ping.h.xattrs?.get('security.capability');
    expect(cap).toBeDefined();
    // VFS_CAP_REVISION_2 header with CAP_NET_RAW (bit 13) in permitted.
    expect(cap!.readUInt32LE(0) & 0xff000000).toBe(0x02000000);
    expect(cap!.readUInt32LE(4)).toBe(1 << 13);
    expect(ping.h.xattrs?.get('user.keel')).toEqual(Buffer.from([0x00, 0xff, 0x10]));
    expect(seen.get('ping-hard')?.h).toMatchObject({ type: 'hardlink', linkname: 'ping' });
    expect(seen.get('longlink')?.h).toMatchObject({ type: 'symlink', linkname: `../${'x'.repeat(150)}` });
    expect(seen.get('null')?.h).toMatchObject({ type: 'char', devmajor: 1, devminor: 3 });
  });

  it('rejects a corrupt header', async () => {
    const buf = Buffer.alloc(1024);
    buf.write('garbage', 0);
    await expect(
      collect(
        (async function* () {
          for await (const e of readTar(Readable.from([buf]))) yield e.header.path as unknown as Buffer;
        })(),
      ),
    ).rejects.toThrow(/checksum/);
  });
});

describe('tar writer', () => {
  const entries = (): WriteEntry[] => [
    {
      header: {
        path: 'usr',
        type: 'dir',
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 5,
        linkname: '',
        devmajor: 0,
        devminor: 0,
      },
    },
    {
      header: {
        path: 'usr/bin/ping',
        type: 'file',
        mode: 0o4755,
        uid: 0,
        gid: 0,
        mtime: 1_900_000_000.7,
        linkname: '',
        devmajor: 0,
        devminor: 0,
        size: 4,
        xattrs: new Map([
          ['security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex')],
          ['user.z', Buffer.from([0, 1, 2])],
        ]),
      },
      body: Buffer.from('ping'),
    },
    {
      header: {
        path: 'usr/bin/ping6',
        type: 'hardlink',
        mode: 0o4755,
        uid: 0,
        gid: 0,
        mtime: 5,
        linkname: 'usr/bin/ping',
        devmajor: 0,
        devminor: 0,
      },
    },
    {
      header: {
        path: `usr/${'n'.repeat(200)}`,
        type: 'file',
        mode: 0o644,
        uid: 70000000,
        gid: 3,
        mtime: 5,
        linkname: '',
        devmajor: 0,
        devminor: 0,
        size: 3,
      },
      body: Buffer.from('abc'),
    },
    {
      header: {
        path: 'usr/l',
        type: 'symlink',
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: 5,
        linkname: `/${'t'.repeat(150)}`,
        devmajor: 0,
        devminor: 0,
      },
    },
    {
      header: {
        path: 'dev/console',
        type: 'char',
        mode: 0o600,
        uid: 0,
        gid: 0,
        mtime: 5,
        linkname: '',
        devmajor: 5,
        devminor: 1,
      },
    },
  ];

  it('round-trips through its own reader', async () => {
    const tar = await collect(writeTar(entries()));
    const back = [];
    for await (const e of readTar(Readable.from([tar])))
      back.push({ ...e.header, body: (await e.buffer()).toString() });
    expect(back.map((b) => b.path)).toEqual([
      'usr',
      'usr/bin/ping',
      'usr/bin/ping6',
      `usr/${'n'.repeat(200)}`,
      'usr/l',
      'dev/console',
    ]);
    expect(back[1]).toMatchObject({ mode: 0o4755, mtime: 1_900_000_000, body: 'ping' });
    expect(back[1]!.xattrs?.get('user.z')).toEqual(Buffer.from([0, 1, 2]));
    expect(back[3]).toMatchObject({ uid: 70000000, gid: 3, body: 'abc' });
    expect(back[4]!.linkname).toBe(`/${'t'.repeat(150)}`);
  });

  it('is deterministic and readable by GNU tar with xattrs', async () => {
    const a = await collect(writeTar(entries()));
    const b = await collect(writeTar(entries()));
    expect(crypto.createHash('sha256').update(a).digest('hex')).toBe(
      crypto.createHash('sha256').update(b).digest('hex'),
    );
    const dir = tmpdir();
    const r = spawnSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', '-', '-C', dir], {
      input: a,
    });
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'usr/bin/ping'), 'utf8')).toBe('ping');
    expect(fs.statSync(path.join(dir, 'usr/bin/ping')).ino).toBe(fs.statSync(path.join(dir, 'usr/bin/ping6')).ino);
    expect(fs.statSync(path.join(dir, `usr/${'n'.repeat(200)}`)).uid).toBe(70000000);
    const attr = spawnSync('getfattr', ['-n', 'user.z', '-e', 'hex', path.join(dir, 'usr/bin/ping')], {
      encoding: 'utf8',
    });
    expect(attr.stdout).toContain('user.z=0x000102');
    const caps = spawnSync('getcap', [path.join(dir, 'usr/bin/ping')], { encoding: 'utf8' });
    expect(caps.stdout).toMatch(/cap_net_raw[=+]ep/);
  });

  it('refuses a body whose length differs from the header', async () => {
    const bad: WriteEntry = {
      header: {
        path: 'f',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        linkname: '',
        devmajor: 0,
        devminor: 0,
        size: 10,
      },
      body: Buffer.from('short'),
    };
    await expect(collect(writeTar([bad]))).rejects.toThrow(/declared 10 bytes but got 5/);
  });
});
