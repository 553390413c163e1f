// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { memoryLogger } from '../../actions/lib/log.js';
import { assignComponents, VOLATILE_MAX_FILE } from '../../actions/lib/rechunk/components.js';
import { bucketOf, makePlan, planFromAnnotations, reserveOf } from '../../actions/lib/rechunk/plan.js';
import type { TarHeader } from '../../actions/lib/tar/reader.js';

const h = (path: string, type: TarHeader['type'], size = 0, mtime = 1000): TarHeader => ({
  path,
  type,
  size,
  mtime,
  mode: 0o644,
  uid: 0,
  gid: 0,
  linkname: '',
  uname: '',
  gname: '',
  devmajor: 0,
  devminor: 0,
});

describe('rechunk components', () => {
  it('groups by owner, kernel, package database, build products and directory', async () => {
    const index = new Map<string, TarHeader>(
      [
        h('usr', 'dir'),
        h('usr/bin', 'dir'),
        h('usr/bin/jq', 'file', 100),
        h('usr/lib/sysimage/dpkg', 'dir'),
        h('usr/lib/sysimage/dpkg/info', 'dir'),
        h('usr/lib/sysimage/dpkg/info/jq.list', 'file', 20),
        h('usr/lib/sysimage/dpkg/info/jq.md5sums', 'file', 20),
        h('usr/lib/sysimage/dpkg/status', 'file', 5000, 9_000_000),
        h('usr/lib/modules/6.1.0-x/vmlinuz', 'file', 5000),
        h('usr/lib/modules/6.1.0-x/initramfs.img', 'file', 9000, 9_000_000),
        h('etc/ld.so.cache', 'file', 8000, 9_000_000),
        h('usr/lib/udev/hwdb.bin', 'file', VOLATILE_MAX_FILE + 1, 9_000_000),
        h('etc/old-config', 'file', 10, 1000),
        h('usr/share/big/blob', 'file', 50 << 20, 1000),
      ].map((e) => [e.path, e]),
    );
    const lists = new Map([['usr/lib/sysimage/dpkg/info/jq.list', Buffer.from('/.\n/usr/bin/jq\n')]]);
    const c = await assignComponents(index, {
      largeFileBytes: 16 << 20,
      volatileSince: 8_000_000,
      log: memoryLogger(),
      readFiles: async (ps) => new Map(ps.filter((p) => lists.has(p)).map((p) => [p, lists.get(p)!])),
    });
    expect(Object.fromEntries(c)).toMatchObject({
      'usr/bin/jq': 'pkg:jq',
      'usr/lib/sysimage/dpkg/info/jq.md5sums': 'pkg:jq',
      'usr/lib/sysimage/dpkg/status': 'db:usr/lib/sysimage/dpkg',
      'usr/lib/modules/6.1.0-x/initramfs.img': 'kernel',
      'etc/ld.so.cache': 'volatile',
      'usr/lib/udev/hwdb.bin': 'file:usr/lib/udev/hwdb.bin',
      'etc/old-config': 'dir:etc',
      'usr/share/big/blob': 'file:usr/share/big/blob',
    });
  });
});

describe('rechunk plan', () => {
  const sizes = (n: number) =>
    new Map([
      ['kernel', 1e8],
      ['db:usr/lib/sysimage/dpkg', 10],
      ['volatile', 5],
      ...Array.from({ length: n }, (_, i) => [`pkg:p${i}`, 1000 + i] as [string, number]),
    ]);

  it('gives kernel, database and build products their own layers, keeps slots free, stays bounded', () => {
    const { plan } = makePlan(sizes(200), 64);
    const ids = plan.layers.map((l) => l.id);
    expect(ids).toEqual(expect.arrayContaining(['kernel', 'c:db:usr/lib/sysimage/dpkg', 'c:volatile']));
    expect(plan.layers.length).toBeLessThanOrEqual(64 - reserveOf(64));
    expect(new Set(plan.layers.flatMap((l) => l.components)).size).toBe(203);
  });

  it('with a previous plan, kept components keep their layer and new ones take the reserved slots', () => {
    const first = makePlan(sizes(200), 64).plan;
    const next = new Map(sizes(200));
    next.set('pkg:new-one', 50);
    next.delete('pkg:p3');
    const { plan, notes } = makePlan(next, 64, first);
    expect(plan.layers.find((l) => l.components.includes('pkg:new-one'))?.id).toBe('c:pkg:new-one');
    const where = (p: Parameters<typeof makePlan>[2], c: string) => p!.layers.find((l) => l.components.includes(c))?.id;
    for (const c of ['kernel', 'pkg:p100', 'pkg:p5', 'volatile']) expect(where(plan, c)).toBe(where(first, c));
    expect(notes[0]).toMatch(/202 components keep their layer, 1 new, 1 removed/);
    expect(plan.layers.length).toBeLessThanOrEqual(64);
  });

  it('buckets depend only on the component name; plans round-trip through annotations', () => {
    expect(bucketOf('pkg:x', 8)).toBe(bucketOf('pkg:x', 8));
    const { plan } = makePlan(sizes(20), 8);
    const back = planFromAnnotations(
      plan.layers.map((l) => ({
        annotations: { 'dev.keel.rechunk.layer': l.id, 'dev.keel.rechunk.components': JSON.stringify(l.components) },
      })),
    );
    expect(back).toEqual(plan);
    expect(planFromAnnotations([{ annotations: {} }])).toBeUndefined();
  });
});
