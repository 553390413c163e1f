// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { LayeredRootfs, type LayerRef } from '../../actions/lib/rootfs/layered.js';
import { writeTar, type WriteEntry } from '../../actions/lib/tar/writer.js';

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 1, linkname: '', devmajor: 0, devminor: 0 };
const dir = (path: string): WriteEntry => ({ header: { ...base, path, type: 'dir', mode: 0o755 } });
const file = (path: string, content: string, extra: Partial<WriteEntry['header']> = {}): WriteEntry => ({
  header: { ...base, path, type: 'file', size: Buffer.byteLength(content), ...extra },
  body: Buffer.from(content),
});
const link = (path: string, target: string): WriteEntry => ({
  header: { ...base, path, type: 'symlink', linkname: target, mode: 0o777 },
});
const hard = (path: string, target: string): WriteEntry => ({
  header: { ...base, path, type: 'hardlink', linkname: target },
});

async function layer(entries: WriteEntry[], gzip = true): Promise<LayerRef> {
  const parts: Buffer[] = [];
  for await (const c of writeTar(entries)) parts.push(c);
  const tar = Buffer.concat(parts);
  const blob = gzip ? zlib.gzipSync(tar) : tar;
  return { digest: 'sha256:x', compression: gzip ? 'gzip' : 'none', open: () => Readable.from([blob]) };
}

describe('layered rootfs (OCI whiteouts)', () => {
  it('applies whiteouts, opaque dirs, replacement and duplicates like the runtime does', async () => {
    const l0 = await layer([
      dir('etc'),
      file('etc/a', 'a0'),
      file('etc/b', 'b0'),
      dir('opt'),
      dir('opt/x'),
      file('opt/x/keep-not', 'gone'),
      dir('var'),
      dir('var/d'),
      file('var/d/f', 'f0'),
      dir('usr'),
      dir('usr/lib'),
      file('usr/lib/os-release', 'ID=keel'),
      link('lib', 'usr/lib'),
      dir('data'),
      file('data/inner', 'inner'),
    ]);
    const l1 = await layer(
      [
        file('etc/.wh.a', ''),
        file('etc/b', 'b1'),
        dir('opt/x'),
        file('opt/x/.wh..wh..opq', ''),
        file('opt/x/new', 'new'),
        file('data', 'now a file'),
        file('etc/dup', 'first'),
        file('etc/dup', 'second'),
      ],
      false,
    );
    const l2 = await layer([file('etc/a', 'a2-recreated'), file('var/.wh.d', '')]);
    const fs = new LayeredRootfs([l0, l1, l2]);
    const idx = await fs.index();
    expect(idx.get('etc/a')?.layer).toBe(2); // recreated above its whiteout
    expect(idx.get('etc/b')?.layer).toBe(1);
    expect(idx.has('opt/x/keep-not')).toBe(false); // opaque
    expect(idx.get('opt/x/new')?.layer).toBe(1);
    expect(idx.has('var/d')).toBe(false);
    expect(idx.has('var/d/f')).toBe(false);
    expect(idx.get('data')?.type).toBe('file');
    expect(idx.has('data/inner')).toBe(false); // a file replaced the directory
    expect([...idx.keys()].some((k) => k.includes('.wh.'))).toBe(false);

    const files = await fs.readFiles(['etc/a', 'etc/b', '/lib/os-release', 'etc/dup', 'missing']);
    expect(Object.fromEntries([...files].map(([k, v]) => [k, v.toString()]))).toEqual({
      'etc/a': 'a2-recreated',
      'etc/b': 'b1',
      '/lib/os-release': 'ID=keel',
      'etc/dup': 'second',
    });

    const flat: string[] = [];
    for await (const { entry, body } of fs.flatten()) {
      let content = '';
      if (body) for await (const c of body) content += c.toString();
      flat.push(`${entry.path}${content ? `=${content}` : ''}`);
    }
    expect(flat).toEqual([
      'etc',
      'opt',
      'var',
      'usr',
      'usr/lib',
      'usr/lib/os-release=ID=keel',
      'lib',
      'etc/b=b1',
      'opt/x',
      'opt/x/new=new',
      'data=now a file',
      'etc/dup=second',
      'etc/a=a2-recreated',
    ]);
  });

  it('resolves absolute and relative symlinks inside the image and follows hardlinks', async () => {
    const l0 = await layer([
      dir('usr'),
      dir('usr/lib'),
      file('usr/lib/os-release', 'ID=keel'),
      dir('etc'),
      link('etc/os-release', '../usr/lib/os-release'),
      link('bin', '/usr/bin'),
      dir('usr/bin'),
      file('usr/bin/tool', 'tool'),
      hard('usr/bin/tool2', 'usr/bin/tool'),
      link('loop', 'loop'),
    ]);
    const fs = new LayeredRootfs([l0]);
    expect(await fs.resolve('/etc/os-release')).toBe('usr/lib/os-release');
    expect(await fs.resolve('bin/tool')).toBe('usr/bin/tool');
    expect(await fs.resolve('loop')).toBeUndefined();
    expect(await fs.resolve('etc/../usr/lib/../lib/os-release')).toBe('usr/lib/os-release');
    const got = await fs.readFiles(['etc/os-release', 'bin/tool2']);
    expect(got.get('etc/os-release')?.toString()).toBe('ID=keel');
    expect(got.get('bin/tool2')?.toString()).toBe('tool');
  });
});
