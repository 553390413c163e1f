// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordingIO } from '../../actions/lib/io.js';
import { run } from '../../actions/changelog/src/main.js';
import { seedImage, startFakeRegistry, tagManifest, type FakeRegistry } from '../harness/fake-registry.js';
import { debianFiles, KVER } from '../harness/fake-images.js';
import { fakeRunner } from '../harness/fake-runner.js';
import { makeOciImage } from '../harness/tools.js';

/**
 * changelog's run() through recordingIO: the candidate's packages against stable's (the kernel
 * first, then changed, added, removed) as Markdown and JSON files, outputs and summary; a first
 * release when the previous image does not exist; the previous image given as a tag, a digest or
 * a reference of its own; bad input fails before any request or file.
 */
const OLD_KVER = '6.12.41+deb13-amd64';
const candidateFiles = debianFiles({
  packages: [
    { name: 'bash', version: '5.2.37-2' },
    { name: 'curl', version: '8.14.1-2' },
    { name: 'libc6', version: '2.41-12', source: 'glibc' },
    { name: `linux-image-${KVER}`, version: '6.12.48-1', source: 'linux-signed-amd64' },
  ],
});
let reg: FakeRegistry;
let work: string;
let stable: string;
let candidate: string;

beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-changelog-'));
  stable = await seedImage(reg, 'acme/os', 'stable', path.join(work, 'stable'), {
    layers: [
      debianFiles({
        kver: OLD_KVER,
        packages: [
          { name: 'bash', version: '5.2.37-1' },
          { name: 'libc6', version: '2.41-12', source: 'glibc' },
          { name: 'nano', version: '8.4-1' },
          { name: `linux-image-${OLD_KVER}`, version: '6.12.41-1', source: 'linux-signed-amd64' },
        ],
      }),
    ],
  });
  tagManifest(reg, 'acme/os', stable, 'v1');
  candidate = await seedImage(reg, 'acme/os', 'candidate', path.join(work, 'candidate'), {
    layers: [candidateFiles],
  });
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const changelog = (inputs: Record<string, string>) => {
  const workspace = fs.mkdtempSync(path.join(work, 'ws-'));
  const runner = fakeRunner();
  const io = recordingIO(
    { 'image-ref': `${reg.host}/acme/os@${candidate}`, 'tls-verify': 'false', ...inputs },
    { workspace, runnerTemp: work },
    runner,
  );
  return { io, runner, workspace, done: run(io) };
};

describe('changelog run()', () => {
  it.each([
    ['stable of the same repository (the default)', {}, 'stable'],
    ['a tag', { 'previous-image': 'v1' }, 'v1'],
    ['a digest', { 'previous-image': 'DIGEST' }, 'DIGEST'],
    ['a full reference', { 'previous-image': 'FULL' }, 'FULL'],
  ])('compares with %s: kernel first, then changed, added, removed', async (_what, extra, shown) => {
    const ex = { ...extra } as Record<string, string>;
    if (ex['previous-image'] === 'DIGEST') ex['previous-image'] = stable;
    if (ex['previous-image'] === 'FULL') ex['previous-image'] = `${reg.host}/acme/os:stable`;
    const { io, runner, workspace, done } = changelog(ex);
    await done;
    const out = path.join(workspace, 'changelog-out');
    expect(io.outputs).toEqual({
      markdown: path.join(out, 'changelog.md'),
      json: path.join(out, 'changelog.json'),
      added: '2',
      removed: '2',
      changed: '1',
      'previous-digest': stable,
      'first-release': 'false',
      'kernel-changed': 'true',
    });
    const prevRef =
      shown === 'DIGEST'
        ? `${reg.host}/acme/os@${stable}`
        : shown === 'FULL'
          ? `${reg.host}/acme/os:stable`
          : `${reg.host}/acme/os:${shown}`;
    const md = fs.readFileSync(io.outputs.markdown!, 'utf8');
    expect(md).toContain(`## Changes since \`${prevRef}\``);
    expect(md).toContain(`**Kernel:** \`${OLD_KVER}\` → \`${KVER}\``);
    expect(md).toMatch(/### Changed[\s\S]*\| bash \| 5\.2\.37-1 \| 5\.2\.37-2 \|/);
    expect(md).toMatch(/### Added[\s\S]*\| curl \| 8\.14\.1-2 \|/);
    expect(md).toMatch(/### Removed[\s\S]*\| nano \| 8\.4-1 \|/);
    expect(md.indexOf('**Kernel:**')).toBeLessThan(md.indexOf('### Changed'));
    const json = JSON.parse(fs.readFileSync(io.outputs.json!, 'utf8')) as Record<string, unknown>;
    expect(json).toMatchObject({
      image: { digest: candidate },
      previous: { ref: prevRef, digest: stable },
      firstRelease: false,
      kernel: { changed: true, from: [OLD_KVER], to: [KVER] },
      counts: { added: 2, removed: 2, changed: 1 },
    });
    expect(io.summaries).toEqual([`### changelog\n\n${md}`]);
    expect(io.groups).toEqual([`read ${reg.host}/acme/os@${candidate}`, `read ${prevRef}`]);
    expect(runner.calls).toEqual([]);
  });

  it('a previous image that does not exist makes a first release listing every package', async () => {
    const { io, done } = changelog({ 'previous-image': 'never', 'output-dir': 'notes' });
    await done;
    expect(io.outputs).toMatchObject({
      added: '4',
      removed: '0',
      changed: '0',
      'previous-digest': '',
      'first-release': 'true',
      'kernel-changed': 'true',
    });
    expect(io.outputs.markdown).toMatch(/\/notes\/changelog\.md$/);
    const md = fs.readFileSync(io.outputs.markdown!, 'utf8');
    expect(md).toContain(`There is no previous image at \`${reg.host}/acme/os:never\``);
    expect(md).toContain('<details><summary>4 packages</summary>');
    expect(io.logs).toContainEqual({
      level: 'info',
      message: `${reg.host}/acme/os:never does not exist: this is the first release`,
    });
  });

  it('an OCI layout against the same packages in a registry image: nothing changed', async () => {
    const layout = makeOciImage(path.join(work, 'layout'), { tag: 'keel', layers: [candidateFiles] });
    const { io, done } = changelog({
      'image-ref': `oci:${layout.dir}:keel`,
      'previous-image': `${reg.host}/acme/os@${candidate}`,
    });
    await done;
    expect(io.outputs).toMatchObject({ added: '0', removed: '0', changed: '0', 'kernel-changed': 'false' });
    expect(fs.readFileSync(io.outputs.markdown!, 'utf8')).toContain('(unchanged)');
  });

  it.each([
    [
      'a bare tag without a registry image',
      { 'image-ref': 'oci:/nonexistent:keel', 'previous-image': 'stable' },
      /^Input 'previous-image' has value "stable": image-ref is not a registry reference/,
    ],
    [
      'a previous tag outside the grammar',
      { 'previous-image': 'latest' },
      /^Input 'previous-image' has value "latest": expected a tag/,
    ],
    ['a malformed previous reference', { 'previous-image': 'a/b:c:d' }, /^Input 'previous-image' has value "a\/b:c:d"/],
    ['no image', { 'image-ref': '' }, /^Input 'image-ref'.*required/],
  ])('refuses %s before any request or file', async (_what, extra, message) => {
    const before = reg.requests.length;
    const { io, runner, workspace, done } = changelog(extra);
    await expect(done).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(runner.calls).toEqual([]);
    expect(fs.readdirSync(workspace)).toEqual([]);
    expect(io.outputs).toEqual({});
  });
});
