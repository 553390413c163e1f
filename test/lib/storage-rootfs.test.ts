// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { processRunner, type CommandRunner } from '../../actions/lib/exec.js';
import { DirectoryRootfs } from '../../actions/lib/rootfs/directory.js';
import {
  mountStorageImage,
  PrivilegedTreeRootfs,
  readTreeFiles,
  scanTree,
  storageConfig,
} from '../../actions/lib/rootfs/storage.js';
import { fakeRunner } from '../harness/fake-runner.js';
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

/** Runs the real tools; `sudo -n` (a non-root test run) is dropped: the tree is the test's own. */
const tools: CommandRunner = {
  run: (cmd, args, opts) =>
    cmd === 'sudo' ? processRunner().run(args[1]!, args.slice(2), opts) : processRunner().run(cmd, args, opts),
};

/** A small tree with what an image holds: nested dirs, a symlink, a hardlink, odd names, setuid. */
function tree(): string {
  const root = scratch('keel-storage-tree-');
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc/os-release'), 'ID=keel\n');
  fs.writeFileSync(path.join(root, 'usr/bin/tool'), Buffer.alloc(200_000, 7));
  fs.chmodSync(path.join(root, 'usr/bin/tool'), 0o4755);
  fs.linkSync(path.join(root, 'usr/bin/tool'), path.join(root, 'usr/bin/tool-link'));
  fs.writeFileSync(path.join(root, 'etc/-dash name\nnewline'), 'odd');
  fs.writeFileSync(path.join(root, 'etc/empty'), '');
  fs.symlinkSync('../usr/bin', path.join(root, 'etc/bin'));
  return root;
}

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

describe('PrivilegedTreeRootfs (a mounted image read through root tools)', () => {
  it('lists and reads the same tree as DirectoryRootfs', async () => {
    const root = tree();
    const direct = new DirectoryRootfs(root);
    const viaTools = new PrivilegedTreeRootfs(root, tools);
    const pick = (m: Map<string, { type: string; mode: number; uid: number; size: number; linkname: string }>) =>
      [...m.values()].map(({ type, mode, uid, size, linkname }) => ({ type, mode, uid, size, linkname }));
    const a = await direct.index();
    const b = await viaTools.index();
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [p, h] of a) expect(pick(new Map([[p, b.get(p)!]]))).toEqual(pick(new Map([[p, h]])));
    expect(b.get('usr/bin/tool')!.mode).toBe(0o4755);

    const want = ['etc/os-release', 'etc/bin/tool', 'etc/-dash name\nnewline', 'etc/empty', 'etc/missing', 'usr/bin'];
    const got = await viaTools.readFiles(want);
    expect(got).toEqual(await direct.readFiles(want));
    expect(got.get('etc/bin/tool')!.length).toBe(200_000);
    expect(got.has('usr/bin')).toBe(false);
  });

  it('scanTree yields every entry once, hardlinks as links, bodies intact', async () => {
    const root = tree();
    const seen = new Map<string, { type: string; linkname: string; sha?: string }>();
    for await (const { entry, body } of scanTree(root, tools)) {
      const sha = body
        ? crypto
            .createHash('sha256')
            .update(await collect(body))
            .digest('hex')
        : undefined;
      expect(seen.has(entry.path)).toBe(false);
      seen.set(entry.path, { type: entry.type, linkname: entry.linkname, sha });
    }
    expect(seen.get('etc/os-release')!.sha).toBe(crypto.createHash('sha256').update('ID=keel\n').digest('hex'));
    const links = ['usr/bin/tool', 'usr/bin/tool-link'].map((p) => seen.get(p)!);
    expect(links.map((l) => l.type).sort()).toEqual(['file', 'hardlink']);
    expect(seen.has('.')).toBe(false); // the mount point is not image content
    expect(seen.get('etc/bin')).toMatchObject({ type: 'symlink', linkname: '../usr/bin' });
  });

  it('readTreeFiles refuses an answer that is not the regular file asked for', async () => {
    const root = tree();
    const read = async (paths: string[]) => {
      for await (const f of readTreeFiles(root, paths, tools)) await collect(f.body);
    };
    await expect(read(['etc/bin'])).rejects.toThrow(/tar answered symlink "etc\/bin"/);
    await expect(read(['etc/nope'])).rejects.toThrow(/nope/);
  });
});

describe('mountStorageImage / storageConfig', () => {
  const id = 'a'.repeat(64);
  it('mounts and unmounts by image ID, never by the (movable) name', async () => {
    const runner = fakeRunner(({ args }) => {
      const a = args[0] === '-n' ? args.slice(2) : args;
      if (a[1] === 'inspect')
        return JSON.stringify([{ Id: id, Digest: 'sha256:' + 'b'.repeat(64), Labels: { x: 'y' } }]);
      if (a[1] === 'mount') return '/var/lib/containers/storage/overlay/x/merged\n';
      return '';
    });
    const img = await mountStorageImage('localhost/keel:latest', runner);
    expect(img).toMatchObject({ id, labels: { x: 'y' }, root: '/var/lib/containers/storage/overlay/x/merged' });
    await img.unmount();
    const lines = runner.lines().map((l) => l.replace(/^sudo -n /, ''));
    expect(lines).toEqual([
      'podman image inspect --format json -- localhost/keel:latest',
      `podman image mount -- ${id}`,
      `podman image unmount -- ${id}`,
    ]);
  });

  it('refuses a name that is not exactly one image, and a config that does not hash to the ID', async () => {
    const two = fakeRunner(() => JSON.stringify([{ Id: id }, { Id: 'c'.repeat(64) }]));
    await expect(mountStorageImage('x', two)).rejects.toThrow(/not exactly one local image/);
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const good = crypto.createHash('sha256').update(config).digest('hex');
    const answer = fakeRunner(() => ({ code: 0, stdout: config, stderr: '' }));
    await expect(storageConfig(good, answer)).resolves.toMatchObject({ architecture: 'amd64' });
    await expect(storageConfig(id, answer)).rejects.toThrow(
      new RegExp(`config of local image ${id} hashes to ${good}`),
    );
  });
});
