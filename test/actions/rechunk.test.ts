// test-kind: integration
import { beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { memoryLogger } from '../../actions/lib/log.js';
import { OciLayout } from '../../actions/lib/oci/layout.js';
import { ImageManifestSchema } from '../../actions/lib/oci/media.js';
import { ANNOTATION_COMPONENTS, ANNOTATION_LAYER } from '../../actions/lib/rechunk/plan.js';
import { LayeredRootfs } from '../../actions/lib/rootfs/layered.js';
import { processRunner } from '../../actions/lib/exec.js';
import { unpackRootfs } from '../../actions/lib/vm/unpack.js';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { makeOciImage, tarDir, tmpdir } from '../harness/tools.js';

const K = '6.12.0-keel-rc';

/** A small OS-like tree with a dpkg database and every kind of entry that is easy to lose. */
function osTree(version: { foo: string; withBar?: boolean; withBaz?: boolean }): string {
  const d = tmpdir('keel-rc-tree-');
  const w = (p: string, c: string | Buffer, mode = 0o644) => {
    fs.mkdirSync(path.join(d, path.dirname(p)), { recursive: true });
    fs.writeFileSync(path.join(d, p), c);
    fs.chmodSync(path.join(d, p), mode);
  };
  const pkgs: Record<string, string[]> = {
    foo: ['usr/bin/foo', 'usr/share/foo/data.txt'],
    libcore: ['usr/lib/libcore.so.1', 'usr/bin/ping', 'usr/bin/ping6'],
    ...(version.withBar ? { bar: ['usr/bin/bar'] } : {}),
    ...(version.withBaz ? { baz: ['usr/share/baz/readme'] } : {}),
  };
  w('usr/bin/foo', `foo ${version.foo}\n`, 0o755);
  w('usr/share/foo/data.txt', `data for foo ${version.foo}\n`.repeat(2000));
  w('usr/lib/libcore.so.1', crypto.createHash('sha256').update('core').digest().toString('hex').repeat(4000), 0o755);
  w('usr/bin/ping', 'ping binary', 0o4755);
  if (version.withBar) w('usr/bin/bar', 'bar 1.0\n', 0o755);
  if (version.withBaz) w('usr/share/baz/readme', 'baz\n');
  w(`usr/lib/modules/${K}/vmlinuz`, 'k'.repeat(4096));
  w(`usr/lib/modules/${K}/initramfs.img`, Buffer.alloc(8192, 3));
  w('etc/hostname', 'keel\n');
  w('usr/share/unowned/big.bin', Buffer.alloc(3 * 1024 * 1024, 9));
  fs.linkSync(path.join(d, 'usr/bin/ping'), path.join(d, 'usr/bin/ping6'));
  fs.symlinkSync('usr/lib', path.join(d, 'lib'));
  spawnSync('setcap', ['cap_net_raw+ep', path.join(d, 'usr/bin/ping')]);
  spawnSync('setfattr', [
    '-n',
    'security.selinux',
    '-v',
    'system_u:object_r:ping_exec_t:s0',
    path.join(d, 'usr/bin/ping'),
  ]);
  spawnSync('setfattr', ['-n', 'user.keel', '-v', '0x00ff', path.join(d, 'usr/share/foo/data.txt')]);
  fs.mkdirSync(path.join(d, 'dev'));
  spawnSync('mknod', [path.join(d, 'dev/null'), 'c', '1', '3']);
  fs.chownSync(path.join(d, 'etc/hostname'), 1234, 5678);
  const info = 'usr/lib/sysimage/dpkg/info';
  for (const [pkg, files] of Object.entries(pkgs)) {
    w(`${info}/${pkg}.list`, `/.\n${files.map((f) => `/${f}`).join('\n')}\n`);
    w(`${info}/${pkg}.md5sums`, files.map((f) => `00  ${f}`).join('\n'));
  }
  w(
    'usr/lib/sysimage/dpkg/status',
    Object.keys(pkgs)
      .map((p) => `Package: ${p}\nStatus: install ok installed\n`)
      .join('\n'),
  );
  return d;
}

function image(
  version: Parameters<typeof osTree>[0],
  extra: { whiteout?: boolean; labels?: Record<string, string> } = {},
): string {
  const layers: Buffer[] = [tarDir(osTree(version))];
  if (extra.whiteout) {
    const up = tmpdir('keel-rc-up-');
    fs.mkdirSync(path.join(up, 'etc'));
    fs.writeFileSync(path.join(up, 'etc/.wh.hostname'), '');
    fs.writeFileSync(path.join(up, 'etc/added-later'), 'upper');
    layers.push(tarDir(up));
  }
  const dir = tmpdir('keel-rc-img-');
  makeOciImage(dir, {
    layers,
    created: '2026-11-20T10:00:00Z',
    labels: {
      'containers.bootc': '1',
      'ostree.linux': 'stale-inherited',
      'org.opencontainers.image.version': 'candidate.20261120',
      ...(extra.labels ?? {}),
    },
  });
  return `oci:${dir}:latest`;
}

const rechunkStep = (inputs: Record<string, string>) => runAction({ action: 'rechunk', inputs });
const manifestOf = (dir: string, tag = 'keel') => {
  const l = OciLayout.open(dir);
  return { layout: l, manifest: ImageManifestSchema.parse(JSON.parse(l.readBlob(l.resolve(tag).digest).toString())) };
};

describe('rechunk (bundled)', () => {
  let v1: string;
  let out1: string;
  let r1: Awaited<ReturnType<typeof rechunkStep>>;
  beforeAll(async () => {
    v1 = image({ foo: '1.0', withBaz: true }, { whiteout: true, labels: { 'org.example.empty': '' } });
    out1 = tmpdir('keel-rc-out-');
    r1 = await rechunkStep({ image: v1, output: out1, 'max-layers': '16', 'large-file-mb': '2' });
  });

  it('produces an OCI layout whose filesystem equals the input (post-check) with per-layer component annotations', () => {
    expect(errors(r1)).toEqual([]);
    expect(r1.outputs['oci-ref']).toBe(`oci:${out1}:keel`);
    expect(r1.stdout).toMatch(/post-check: \d+ entries compared .*: 0 mismatch/);
    const { manifest } = manifestOf(out1);
    expect(manifest.layers.length).toBe(Number(r1.outputs.layers));
    expect(manifest.layers.length).toBeLessThanOrEqual(16);
    const ids = manifest.layers.map((l) => l.annotations?.[ANNOTATION_LAYER]);
    expect(ids).toContain('kernel');
    expect(ids).toContain('c:pkg:foo');
    expect(ids).toContain('c:file:usr/share/unowned/big.bin');
    const kernel = manifest.layers.find((l) => l.annotations?.[ANNOTATION_LAYER] === 'kernel')!;
    expect(JSON.parse(kernel.annotations![ANNOTATION_COMPONENTS]!)).toEqual(['kernel']);
  });

  it('keeps capabilities, SELinux labels, xattrs, setuid, hardlinks, owners and device nodes (checked after a real tar extraction)', async () => {
    const { layout, manifest } = manifestOf(out1);
    const rootfs = new LayeredRootfs(
      manifest.layers.map((l) => ({
        digest: l.digest,
        compression: 'gzip' as const,
        open: () => layout.openBlob(l.digest),
      })),
    );
    const dest = tmpdir('keel-rc-unpack-');
    await unpackRootfs(rootfs, path.join(dest, 'root'), processRunner(), memoryLogger());
    const root = path.join(dest, 'root');
    expect(spawnSync('getcap', [path.join(root, 'usr/bin/ping')], { encoding: 'utf8' }).stdout).toMatch(
      /cap_net_raw[=+]ep/,
    );
    expect(
      spawnSync('getfattr', ['-n', 'security.selinux', '--only-values', path.join(root, 'usr/bin/ping')], {
        encoding: 'utf8',
      }).stdout,
    ).toBe('system_u:object_r:ping_exec_t:s0');
    expect(fs.statSync(path.join(root, 'usr/bin/ping')).mode & 0o7777).toBe(0o4755);
    expect(fs.statSync(path.join(root, 'usr/bin/ping')).ino).toBe(fs.statSync(path.join(root, 'usr/bin/ping6')).ino);
    expect(fs.statSync(path.join(root, 'dev/null')).isCharacterDevice()).toBe(true);
    expect(fs.existsSync(path.join(root, 'etc/hostname'))).toBe(false); // whiteout honoured
    expect(fs.readFileSync(path.join(root, 'etc/added-later'), 'utf8')).toBe('upper');
    expect(fs.readlinkSync(path.join(root, 'lib'))).toBe('usr/lib');
  });

  it('preserves labels, recomputes ostree.linux from content, sets containers.bootc, drops empty values', () => {
    const { layout, manifest } = manifestOf(out1);
    const cfg = JSON.parse(layout.readBlob(manifest.config.digest).toString());
    expect(cfg.config.Labels).toEqual({
      'containers.bootc': '1',
      'ostree.linux': K,
      'org.opencontainers.image.version': 'candidate.20261120',
    });
    expect(cfg.created).toBe('2026-11-20T10:00:00Z'); // the build's creation time, not the chunker's
    expect(warnings(r1).join('\n')).toMatch(/label org\.example\.empty has an empty value/);
    expect(warnings(r1).join('\n')).toMatch(
      /ostree\.linux was stale-inherited; the image holds kernel 6\.12\.0-keel-rc/,
    );
  });

  it('is deterministic: same input, same digests, byte for byte; mtimes clamped', async () => {
    const out2 = tmpdir('keel-rc-out-');
    const r2 = await rechunkStep({ image: v1, output: out2, 'max-layers': '16', 'large-file-mb': '2' });
    expect(r2.outputs.digest).toBe(r1.outputs.digest);
    const a = manifestOf(out1).manifest.layers.map((l) => l.digest);
    const b = manifestOf(out2).manifest.layers.map((l) => l.digest);
    expect(b).toEqual(a);
    const { layout, manifest } = manifestOf(out2);
    const rootfs = new LayeredRootfs(
      manifest.layers.map((l) => ({
        digest: l.digest,
        compression: 'gzip' as const,
        open: () => layout.openBlob(l.digest),
      })),
    );
    for (const e of (await rootfs.index()).values()) expect(e.mtime).toBe(0);
  });

  it('with previous-image, unchanged groups are byte-identical; an upgrade, an addition and a removal change only their layers', async () => {
    const v2 = image({ foo: '2.0', withBar: true }, { whiteout: true }); // foo upgraded, bar added, baz removed
    const out2 = tmpdir('keel-rc-out-');
    const r2 = await rechunkStep({
      image: v2,
      output: out2,
      'max-layers': '16',
      'large-file-mb': '2',
      'previous-image': `oci:${out1}:keel`,
    });
    expect(errors(r2)).toEqual([]);
    const report = JSON.parse(fs.readFileSync(r2.outputs.report!, 'utf8'));
    const byId = Object.fromEntries(report.layers.map((l: { id: string }) => [l.id, l]));
    expect(byId.kernel.reused).toBe(true);
    expect(byId['c:pkg:libcore'].reused).toBe(true);
    expect(byId['c:file:usr/share/unowned/big.bin'].reused).toBe(true);
    expect(byId['c:pkg:foo'].reused).toBe(false);
    expect(Object.values(byId).some((l) => (l as { components: string[] }).components.includes('pkg:baz'))).toBe(false);
    expect(Object.values(byId).some((l) => (l as { components: string[] }).components.includes('pkg:bar'))).toBe(true);
    expect(report.update.downloadBytes).toBeLessThan(report.update.totalBytes / 4);
    expect(report.update.downloadBytes).toBe(
      report.layers
        .filter((l: { reused: boolean }) => !l.reused)
        .reduce((n: number, l: { size: number }) => n + l.size, 0),
    );
    expect(r2.summary).toMatch(/layers reused/);
  });

  it('falls back to a fresh plan, with a warning, when the previous image has no plan', async () => {
    const out = tmpdir('keel-rc-out-');
    const r = await rechunkStep({ image: v1, output: out, 'max-layers': '16', 'previous-image': v1 });
    expect(errors(r)).toEqual([]);
    expect(warnings(r).join('\n')).toMatch(/carries no Keel layer plan: using a fresh plan/);
  });

  it('a previous image that does not exist yet gives a fresh plan with a warning (first release)', async () => {
    const out = tmpdir('keel-rc-out-');
    const r = await rechunkStep({
      image: v1,
      output: out,
      'max-layers': '16',
      'previous-image': `oci:${path.join(tmpdir('keel-rc-none-'), 'never-published')}:keel`,
    });
    expect(errors(r)).toEqual([]);
    expect(warnings(r).join('\n')).toMatch(
      /previous image oci:.*never-published:keel does not exist \(first release\?\): using a fresh layer plan/,
    );
  });

  it('a previous image that exists but cannot be used fails the step instead of silently re-planning', async () => {
    // An index with only an arm64 child: Keel rechunks linux/amd64 and must not guess.
    const prev = tmpdir('keel-rc-prev-');
    const child = makeOciImage(path.join(prev, 'child'));
    const layout = OciLayout.create(path.join(prev, 'idx'));
    for (const f of fs.readdirSync(path.join(prev, 'child', 'blobs', 'sha256'))) {
      fs.copyFileSync(path.join(prev, 'child', 'blobs', 'sha256', f), path.join(prev, 'idx', 'blobs', 'sha256', f));
    }
    const idx = layout.writeBlob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [
            {
              mediaType: 'application/vnd.oci.image.manifest.v1+json',
              digest: child.digest,
              size: child.manifest.length,
              platform: { os: 'linux', architecture: 'arm64' },
            },
          ],
        }),
      ),
    );
    fs.writeFileSync(
      path.join(prev, 'idx', 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.index.v1+json',
            digest: idx.digest,
            size: idx.size,
            annotations: { 'org.opencontainers.image.ref.name': 'stable' },
          },
        ],
      }),
    );
    const out = tmpdir('keel-rc-out-');
    const r = await rechunkStep({ image: v1, output: out, 'previous-image': `oci:${path.join(prev, 'idx')}:stable` });
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(
      /previous image oci:.*idx:stable is an index without a linux\/amd64 image \(has: linux\/arm64\)/,
    );
    expect(fs.readdirSync(out)).toEqual([]);

    // A registry that cannot be reached is a failure too, not a "first release".
    const t0 = Date.now();
    const u = await rechunkStep({
      image: v1,
      output: out,
      'previous-image': '127.0.0.1:9/keel/os:stable',
      'tls-verify': 'false',
    });
    expect(u.code).toBe(1);
    expect(errors(u).join('\n')).toMatch(/gave up after 5 attempts: connect ECONNREFUSED 127\.0\.0\.1:9/);
    expect(warnings(u).join('\n')).not.toMatch(/fresh layer plan/);
    expect(fs.readdirSync(out)).toEqual([]);
    process.stderr.write(`unreachable previous registry failed after ${Date.now() - t0} ms\n`);

    // containers-storage holds no plan: named as the input's error.
    const c = await rechunkStep({
      image: v1,
      output: out,
      'previous-image': 'containers-storage:localhost/keel-os:candidate',
    });
    expect(errors(c)[0]).toMatch(/^Input 'previous-image'.*containers-storage holds no layer plan/);
  });

  it('names the input when image cannot be parsed', async () => {
    const r = await rechunkStep({ image: 'Not A Reference!', output: tmpdir('keel-rc-out-') });
    expect(errors(r)[0]).toMatch(/^Input 'image'/);
  });

  it('stays within a small max-layers', async () => {
    const out = tmpdir('keel-rc-out-');
    const r = await rechunkStep({ image: v1, output: out, 'max-layers': '3' });
    expect(errors(r)).toEqual([]);
    expect(manifestOf(out).manifest.layers.length).toBeLessThanOrEqual(3);
  });
});

describe('rechunk on the example image', () => {
  let img: import('../harness/example-image.js').ExampleImage;
  beforeAll(
    async () => {
      const { ensureExampleImage } = await import('../harness/example-image.js');
      img = await ensureExampleImage({ oci: true });
    },
    40 * 60 * 1000,
  );

  it('reads a local image in place (read-only mount, no export) into the same layout as from its OCI layout', async () => {
    const run = async (image: string) => {
      const output = tmpdir('keel-rc-ex-out-');
      const r = await rechunkStep({ image, output, 'max-layers': '12', 'source-date-epoch': '1764000000' });
      expect([image, errors(r)]).toEqual([image, []]);
      return r;
    };
    const local = await run(img.localRef);
    expect(local.stdout).toMatch(/reading [0-9a-f]{64} in place: .* \(read-only podman image mount; no copy\)/);
    expect(local.stdout).not.toMatch(/store of its files/);
    const layout = await run(img.ociRef);
    expect(local.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(local.outputs.digest).toBe(layout.outputs.digest);
    const mounts = spawnSync('podman', ['image', 'mount'], { encoding: 'utf8' }).stdout;
    expect(mounts).not.toContain(img.name);
  }, 900_000);
});

describe('rechunk post-check', () => {
  it('reports a changed mode, a lost xattr and a missing file', async () => {
    const { flattenToStore, verifyOutput } = await import('../../actions/lib/rechunk/write.js');
    const { openImage, parseImageLocation } = await import('../../actions/lib/image/open.js');
    const src = image({ foo: '1.0' });
    const out = tmpdir('keel-rc-out-');
    const r = await rechunkStep({ image: src, output: out, 'max-layers': '8' });
    expect(errors(r)).toEqual([]);
    const opened = await openImage(parseImageLocation(src), {
      log: memoryLogger(),
      runner: processRunner(),
      tmpDir: tmpdir(),
    });
    const meta = await flattenToStore(opened, tmpdir('keel-rc-cas-'), memoryLogger());
    const { layout, manifest } = manifestOf(out);
    const layers = manifest.layers.map((l) => ({
      id: '',
      digest: l.digest,
      diffId: '',
      size: l.size,
      uncompressedSize: 0,
      files: 0,
      components: [],
    }));
    const same = await verifyOutput(
      layout,
      layers,
      meta,
      new Map([
        ['usr/bin/ping', 'usr/bin/ping'],
        ['usr/bin/ping6', 'usr/bin/ping'],
      ]),
      0,
      memoryLogger(),
    );
    expect(same.mismatches).toEqual([]);
    meta.get('usr/bin/foo')!.mode = 0o700;
    meta.get('usr/bin/ping')!.xattrs?.delete('security.capability');
    meta.set('usr/bin/ghost', { ...meta.get('usr/bin/foo')!, path: 'usr/bin/ghost' });
    const bad = await verifyOutput(
      layout,
      layers,
      meta,
      new Map([
        ['usr/bin/ping', 'usr/bin/ping'],
        ['usr/bin/ping6', 'usr/bin/ping'],
      ]),
      0,
      memoryLogger(),
    );
    expect(bad.mismatches).toEqual(
      expect.arrayContaining(['usr/bin/foo differs', 'usr/bin/ping differs', 'usr/bin/ghost missing']),
    );
  });
});
