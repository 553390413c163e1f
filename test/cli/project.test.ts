// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { parseDeclarations } from '../../actions/lib/declarations.js';
import { BASE_HASH_LABEL, bootstrapBase } from '../../cli/base-bootstrap.js';
import { repositoryOf } from '../../cli/commands/run.js';
import { projectFiles } from '../../cli/runner.js';
import { renderInit } from '../../cli/commands/init.js';
import { findKeelHome, findProjectDir, keelHome, keelSource, PACKAGE_SOURCE_FILE } from '../../cli/home.js';
import { fakeRunner, type Call } from '../harness/fake-runner.js';
import { tmpdir } from '../harness/tools.js';
import { root } from '../workflows/helpers.js';

/**
 * `keel run` outside Keel's repository: Keel's installation and the project are found
 * separately; the base bootstrap runs the installed Keel's script and reuses a base built from
 * the same inputs under another name.
 */
const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = tmpdir('keel-project-');
  scratch.push(d);
  return d;
};

describe('Keel installation and project directory', () => {
  it("Keel's home is the package root, from the sources and from the CLI bundle's place alike", () => {
    expect(keelHome).toBe(root);
    expect(findKeelHome(path.join(root, 'dist', 'cli'))).toBe(root);
    expect(() => findKeelHome(tempDir())).toThrow(/cannot find Keel's installation/);
  });

  it('the project is the nearest directory with declarations/distro.yaml, or --dir', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'declarations'));
    fs.writeFileSync(path.join(dir, 'declarations', 'distro.yaml'), 'version: 1\n');
    fs.mkdirSync(path.join(dir, 'build_files', 'deep'), { recursive: true });
    expect(findProjectDir({ cwd: path.join(dir, 'build_files', 'deep') })).toBe(dir);
    expect(findProjectDir({ dir, cwd: '/' })).toBe(dir);
    const empty = tempDir();
    expect(() => findProjectDir({ cwd: empty })).toThrow(/no declarations\/distro.yaml in .* or above/);
    expect(() => findProjectDir({ dir: empty })).toThrow(/--dir .*: no declarations\/distro.yaml/);
  });

  it("an installed Keel's commit is the one recorded when it was packed; without a record there is none", () => {
    const home = tempDir();
    fs.writeFileSync(path.join(home, 'package.json'), JSON.stringify({ name: 'keel', version: '9.8.7' }));
    expect(keelSource(home)).toEqual({ dirty: false, version: '9.8.7' });
    fs.writeFileSync(path.join(home, PACKAGE_SOURCE_FILE), JSON.stringify({ commit: 'b'.repeat(40), dirty: false }));
    expect(keelSource(home)).toEqual({ commit: 'b'.repeat(40), dirty: false, version: '9.8.7' });
    // keel init then pins that commit.
    const r = renderInit({ dir: '.', image: 'ghcr.io/acme/acme-os', debian: 'trixie', home: withStamp(home) });
    expect(r.files.get('.github/workflows/build.yml')!.text).toContain(`reusable-build.yml@${'b'.repeat(40)} #`);
    fs.rmSync(path.join(home, PACKAGE_SOURCE_FILE));
    expect(() => renderInit({ dir: '.', image: 'ghcr.io/acme/acme-os', debian: 'trixie', home })).toThrow(
      /does not record the commit it was packed from: pass --keel-ref/,
    );
  });

  it("the GitHub repository a local run pretends to be: the image's source, the OS home URL, else namespace/name", () => {
    const decl = (extra: string) =>
      parseDeclarations(
        `version: 1\nimage: {registry: ghcr.io/acme, name: acme-os, title: A, description: A, vendor: a${extra}}\nos: {id: a, name: A, pretty-name: A}\nbase: {image: x:1}\n`,
      );
    expect(repositoryOf(decl(''))).toBe('acme/acme-os');
    expect(repositoryOf(decl(', source: https://github.com/acme-corp/os.git'))).toBe('acme-corp/os');
  });
});

/** What keel init needs of a Keel installation: the release stamp and the templates. */
function withStamp(home: string): string {
  fs.mkdirSync(path.join(home, 'workflows-src'), { recursive: true });
  fs.copyFileSync(
    path.join(root, 'workflows-src', 'keel-release.json'),
    path.join(home, 'workflows-src', 'keel-release.json'),
  );
  fs.cpSync(path.join(root, 'templates'), path.join(home, 'templates'), { recursive: true });
  return home;
}

describe("keel run's base bootstrap", () => {
  const HASH = 'c'.repeat(64);
  const req = {
    script: 'build_files/base/bootstrap.sh',
    args: ['--image', 'localhost/acme-os-base:trixie'],
    image: 'localhost/acme-os-base:trixie',
  };
  const isInspectLabel = (c: Call) =>
    c.cmd === 'buildah' && c.args.includes(`{{index .OCIv1.Config.Labels "${BASE_HASH_LABEL}"}}`);

  /** Plays bootstrap.sh and buildah: `images` lists ids with the hash label, `layers` their layer counts. */
  const play = (current: string, images: string[], layers: Record<string, string>) => (c: Call) => {
    if (c.cmd === 'bash') return c.args.includes('--print-hash') ? `${HASH}\n` : 'image-id\n';
    if (isInspectLabel(c)) return current ? `${current}\n` : { code: 125, stdout: Buffer.from(''), stderr: 'no image' };
    if (c.args[0] === 'images') return images.map((i) => `sha256:${i}`).join('\n');
    if (c.args.includes('{{len .OCIv1.RootFS.DiffIDs}}')) return `${layers[c.args[c.args.length - 1]!]}\n`;
    if (c.args[0] === 'tag') return '';
    throw new Error(`unexpected ${c.cmd} ${c.args.join(' ')}`);
  };

  it("runs the installed Keel's script, and tags a base built from the same inputs instead of bootstrapping again", async () => {
    // 'derived' carries the inherited label but has more layers: it is an image built FROM the base.
    const r = fakeRunner(play('', ['derived', 'base1'], { derived: '3', base1: '1' }));
    const log: string[] = [];
    await bootstrapBase(req, (s) => log.push(s), r);
    expect(r.calls[0]).toMatchObject({
      cmd: 'bash',
      args: [path.join(keelHome, req.script), ...req.args, '--print-hash'],
    });
    expect(r.calls.find((c) => c.args[0] === 'images')!.args).toContain(`label=${BASE_HASH_LABEL}=${HASH}`);
    expect(r.lines()).toContain('buildah tag base1 localhost/acme-os-base:trixie');
    expect(r.lines()).not.toContain('buildah tag derived localhost/acme-os-base:trixie');
    const last = r.calls[r.calls.length - 1]!;
    expect(last).toMatchObject({ cmd: 'bash', args: [path.join(keelHome, req.script), ...req.args] });
    expect(last.opts.cwd).toBe(keelHome);
    expect(log.join('\n')).toMatch(/same inputs found \(base1\)/);
  });

  it('tags nothing when the named base is current, or when no base has these inputs (the script builds it)', async () => {
    const current = fakeRunner(play(HASH, ['base1'], { base1: '1' }));
    await bootstrapBase(req, () => undefined, current);
    expect(current.calls.filter((c) => c.args[0] === 'images' || c.args[0] === 'tag')).toEqual([]);
    const none = fakeRunner(play('d'.repeat(64), ['derived'], { derived: '4' }));
    await bootstrapBase(req, () => undefined, none);
    expect(none.calls.filter((c) => c.args[0] === 'tag')).toEqual([]);
    expect(none.calls[none.calls.length - 1]!.args).not.toContain('--print-hash');
  });
});

describe("keel run's checkout of a project", () => {
  it('without git: every file but .git/ and .keel/ (hidden ones such as .github/ included)', () => {
    const dir = tempDir();
    for (const f of [
      'Containerfile',
      '.github/workflows/build.yml',
      '.keel/keys/cosign.key',
      '.git/config',
      'build_files/a/b.sh',
    ]) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), 'x');
    }
    expect(projectFiles(dir).sort()).toEqual(['.github/workflows/build.yml', 'Containerfile', 'build_files/a/b.sh']);
  });
});
