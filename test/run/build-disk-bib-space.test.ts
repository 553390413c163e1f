// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../actions/build-disk/src/main.js';
import type { FreeSpaceProbe } from '../../actions/lib/disk-space.js';
import { recordingIO } from '../../actions/lib/io.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { fakeRunner, type Call } from '../harness/fake-runner.js';

/**
 * build-disk's run() through recordingIO, an in-process registry and a fake podman: the bib
 * backend's outputs (boot-passed is `skipped`, never `true`), its registry logins (passwords
 * on stdin only, the auth file gone afterwards), and the space check refusing before any
 * download or tool.
 */
let reg: FakeRegistry;
let work: string;
let digest: string;
const repo = 'keel/disk';

beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-disk-'));
  digest = await seedImage(reg, repo, 'candidate', path.join(work, 'seed'));
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const podmanArgs = (c: Call) => (c.cmd === 'sudo' ? c.args.slice(2) : c.args);

/** A fake podman whose `run` (the builder) writes what bootc-image-builder writes. */
const bibPodman = () =>
  fakeRunner((c) => {
    const a = podmanArgs(c);
    if (a[0] === 'login') fs.writeFileSync(a[a.indexOf('--authfile') + 1]!, '{"auths":{}}');
    if (a[0] === 'run') {
      const out = a[a.indexOf('-v', a.indexOf('-v') + 1) + 1]!.split(':')[0]!;
      const type = a[a.indexOf('--type') + 1]!;
      const file =
        type === 'anaconda-iso' ? path.join(out, 'bootiso', 'install.iso') : path.join(out, type, `disk.${type}`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, `built by bib (${type})`);
    }
    return '';
  });

async function buildDisk(inputs: Record<string, string>, runner = bibPodman(), freeSpace?: FreeSpaceProbe) {
  const temp = fs.mkdtempSync(path.join(work, 'temp-'));
  const workspace = fs.mkdtempSync(path.join(work, 'ws-'));
  const io = recordingIO(
    {
      'image-ref': `${reg.host}/${repo}@${digest}`,
      'allow-unsigned': 'true',
      'tls-verify': 'false',
      ...inputs,
    },
    { runnerTemp: temp, workspace, ...(freeSpace ? { freeSpace } : {}) },
    runner,
  );
  let error: Error | undefined;
  await run(io).catch((e: Error) => void (error = e));
  return { io, error, runner, temp, workspace };
}

describe('build-disk run(), bib backend', () => {
  it('builds the ISO, logs in first, and reports boot-passed skipped (never true)', async () => {
    const r = await buildDisk({
      backend: 'bib',
      type: 'iso',
      name: 'os',
      username: 'octocat',
      password: 'ghp_secret_token',
      'bib-username': 'rh-user',
      'bib-password': 'bib-secret-pw',
    });
    expect(r.error).toBeUndefined();
    expect(r.io.outputs['boot-passed']).toBe('skipped');
    expect(r.io.outputs['boot-seconds']).toBeUndefined();
    expect(fs.readFileSync(r.io.outputs.path!, 'utf8')).toBe('built by bib (anaconda-iso)');
    expect(r.io.logs.filter((l) => l.level === 'notice').map((l) => l.message)).toEqual([
      expect.stringMatching(
        /boot test skipped \(bootc-image-builder media are not boot-tested.*'skipped', never 'true'/,
      ),
    ]);
    expect(r.io.summaries.join('\n')).toMatch(/skipped: bootc-image-builder media/);
    const verbs = r.runner.calls.map((c) => podmanArgs(c)[0]);
    expect(verbs).toEqual(['login', 'login', 'pull', 'run']);
    expect(podmanArgs(r.runner.calls[0]!).slice(-2)).toEqual(['--', reg.host]);
    expect(podmanArgs(r.runner.calls[1]!).slice(-2)).toEqual(['--', 'quay.io']);
    expect(r.runner.calls.slice(0, 2).map((c) => c.opts.input)).toEqual(['ghp_secret_token', 'bib-secret-pw']);
    for (const c of r.runner.calls) expect(c.args.join(' ')).not.toMatch(/ghp_secret_token|bib-secret-pw/);
    // Secrets masked, and nothing (auth file, work directory) left in the runner's temp.
    expect(r.io.secrets).toEqual(expect.arrayContaining(['ghp_secret_token', 'bib-secret-pw']));
    expect(fs.readdirSync(r.temp)).toEqual([]);
  });

  it('boot-test: false says so as the reason; still skipped', async () => {
    const r = await buildDisk({ backend: 'bib', type: 'qcow2', name: 'os', 'boot-test': 'false' });
    expect(r.error).toBeUndefined();
    expect(r.io.outputs['boot-passed']).toBe('skipped');
    expect(r.io.summaries.join('\n')).toMatch(/skipped: boot-test: false/);
    // No credentials: no login, no auth file.
    expect(r.runner.calls.map((c) => podmanArgs(c)[0])).toEqual(['pull', 'run']);
  });

  it('a builder failure leaves no auth file behind and sets no boot-passed', async () => {
    const runner = fakeRunner((c) => {
      const a = podmanArgs(c);
      if (a[0] === 'login') fs.writeFileSync(a[a.indexOf('--authfile') + 1]!, '{}');
      if (a[0] === 'run') throw new Error('bootc-image-builder: exit status 1');
      return '';
    });
    const r = await buildDisk({ backend: 'bib', username: 'u', password: 'pw' }, runner);
    expect(r.error?.message).toMatch(/exit status 1/);
    expect(r.io.outputs['boot-passed']).toBeUndefined();
    expect(fs.readdirSync(r.temp)).toEqual([]);
  });

  it.each([
    [{ password: 'pw' }, /^Input 'username': a password is given/],
    [{ 'bib-password': 'pw' }, /^Input 'bib-username'/],
  ])('refuses half a login before any side effect (%j)', async (extra, message) => {
    const r = await buildDisk({ backend: 'bib', ...extra });
    expect(r.error?.message).toMatch(message);
    expect(r.runner.calls).toEqual([]);
    expect(fs.readdirSync(r.temp)).toEqual([]);
  });
});

describe('build-disk run(), disk space checked first', () => {
  const tiny: FreeSpaceProbe = () => ({ bytes: 64 * 1024 ** 2, filesystem: 'tiny' });

  it('live backend: refuses before downloading a layer, with what it needs and what is free', async () => {
    const before = reg.requests.length;
    const r = await buildDisk({ type: 'iso' }, fakeRunner(), tiny);
    expect(r.error?.message).toMatch(
      /^not enough disk space: build-disk needs 1\.0 GiB in .*keel-blobs \(for the image layers 0\.0 GiB, and a 1 GiB margin \(space-margin-gib\)\), 0\.1 GiB free/,
    );
    const layers = (JSON.parse(reg.manifest(repo, digest)!.body.toString()) as { layers: { digest: string }[] }).layers;
    const fetched = reg.requests.slice(before).filter((q) => layers.some((l) => q.includes(l.digest)));
    expect([layers.length, fetched]).toEqual([1, []]);
    expect(r.runner.calls).toEqual([]);
    expect(fs.readdirSync(r.temp)).toEqual([]);
  });

  it('bib backend: refuses before any podman call (the pulled image and the ISO are estimated)', async () => {
    const r = await buildDisk({ backend: 'bib', type: 'iso' }, bibPodman(), tiny);
    expect(r.error?.message).toMatch(
      /^not enough disk space: build-disk needs \d+\.\d GiB in \/var\/lib\/containers\/storage \(for the image pulled into containers-storage \(estimated\) .* \+ the installer ISO \(estimated\)/,
    );
    expect(r.runner.calls).toEqual([]);
  });

  it('space-margin-gib: off skips the check with a warning; a bad value is refused naming the input', async () => {
    const off = await buildDisk({ backend: 'bib', 'space-margin-gib': 'off' }, bibPodman(), tiny);
    expect(off.error).toBeUndefined();
    expect(off.io.logs.filter((l) => l.level === 'warning').map((l) => l.message)).toContainEqual(
      expect.stringMatching(/^disk space check off \(space-margin-gib: off\): build-disk will write about/),
    );
    const bad = await buildDisk({ 'space-margin-gib': 'lots' });
    expect(bad.error?.message).toMatch(/^Input 'space-margin-gib' has value "lots": expected a number of GiB/);
  });
});
