// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommandError } from '../../actions/lib/exec.js';
import { recordingIO } from '../../actions/lib/io.js';
import { run } from '../../actions/update-test/src/main.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { debianFiles } from '../harness/fake-images.js';
import { fakeRunner, type Call, type FakeRunner } from '../harness/fake-runner.js';
import { ok, playTools, tarExtract, toolOf } from '../harness/fake-tools.js';
import { signDigest, testKey, type TestKey } from '../harness/signing.js';

/**
 * update-test's run() through recordingIO and a fake runner, up to the seam before the boots
 * (the three boots of a real machine are test/actions/update-test.test.ts): the skips (no
 * previous release, nothing to update), both signatures checked before anything is pulled, the
 * machine prepared with the exact ostree argv (sysroot, one commit per image, deploy), and every
 * failure written to the outputs and the summary; bad input fails before any request.
 */
let reg: FakeRegistry;
let work: string;
let key: TestKey;
const d: Record<string, string> = {};

beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-update-'));
  key = testKey();
  const seed = (repo: string, tag: string, files: Record<string, string | Buffer>) =>
    seedImage(reg, repo, tag, path.join(work, `${repo.replace('/', '-')}-${tag}`), { layers: [files] });
  d.previous = await seed('acme/os', 'stable', debianFiles({ kver: '6.12.41+deb13-amd64' }));
  d.candidate = await seed('acme/os', 'candidate', debianFiles());
  d.kernelless = await seed('acme/os', 'kernelless', { 'usr/lib/os-release': 'ID=keel\n' });
  d.unsignedPrevious = await seed('acme/unsigned', 'stable', debianFiles({ extra: { 'etc/unsigned': '1\n' } }));
  // The same candidate (same digest) in the repository whose previous release is unsigned.
  expect(await seed('acme/unsigned', 'candidate', debianFiles())).toBe(d.candidate);
  for (const [repo, digest] of [
    ['acme/os', d.previous],
    ['acme/os', d.candidate],
    ['acme/os', d.kernelless],
    ['acme/unsigned', d.candidate],
  ] as const)
    await signDigest(`${reg.host}/${repo}@${digest}`, key);
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Plays ostree: prints a commit checksum (from its subject) and fails `admin deploy` when told. */
const ostree =
  (deployError?: string) =>
  (call: Call): string => {
    const { args } = toolOf(call);
    if (args.includes('commit')) {
      const subject = args.find((a) => a.startsWith('--subject='))!;
      return `${crypto.createHash('sha256').update(subject).digest('hex')}\n`;
    }
    if (args[0] === 'admin' && args[1] === 'deploy' && deployError)
      throw new CommandError(`ostree ${args.join(' ')}`, 1, deployError);
    return '';
  };
const tools = (deployError?: string) =>
  playTools({
    tar: tarExtract(),
    ostree: ostree(deployError),
    chattr: () => ok(),
    rm: (call) => {
      fs.rmSync(toolOf(call).args.at(-1)!, { recursive: true, force: true });
      return ok();
    },
  });

const update = (inputs: Record<string, string>, runner: FakeRunner = fakeRunner(tools())) => {
  const temp = fs.mkdtempSync(path.join(work, 'temp-'));
  const io = recordingIO(
    {
      'image-ref': `${reg.host}/acme/os:candidate`,
      'public-key': key.pem,
      'tls-verify': 'false',
      accel: 'tcg',
      ...inputs,
    },
    { runnerTemp: temp },
    runner,
  );
  return { io, runner, temp, done: run(io) };
};
/** ostree calls as argv with the work directory shown as WORK. */
const ostreeCalls = (runner: FakeRunner) =>
  runner.calls
    .filter((c) => toolOf(c).tool === 'ostree')
    .map((c) => toolOf(c).args.map((a) => a.replace(/\/[^ ]*\/keel-update-[^/]+/, 'WORK')));

describe('update-test run()', () => {
  it.each([
    [
      'no previous release',
      { 'previous-image': 'never' },
      '',
      /no previous release to update from: .*acme\/os:never does not exist/,
    ],
    [
      'the candidate already released',
      { 'previous-image': 'candidate' },
      'CANDIDATE',
      /the candidate .* is the previous release .*: nothing to update/,
    ],
  ])('skips when there is %s, with a notice and nothing run', async (_what, extra, previousDigest, why) => {
    const { io, runner, temp, done } = update(extra);
    await done;
    expect(io.outputs).toEqual({
      skipped: 'true',
      passed: 'true',
      reason: expect.stringMatching(why),
      'previous-digest': previousDigest === 'CANDIDATE' ? d.candidate : '',
      boots: '[]',
      'serial-log': '',
    });
    expect(io.logs).toContainEqual({ level: 'notice', message: expect.stringMatching(/^update-test skipped: /) });
    expect(io.summaries.join('')).toMatch(/^### update-test ⏭️ skipped/);
    expect(runner.calls).toEqual([]);
    expect(fs.readdirSync(temp)).toEqual([]);
  });

  it('prepares the machine with ostree (sysroot, both commits, deploy) and reports a failed deploy', async () => {
    const runner = fakeRunner(tools('error: Bootloader write config: boom'));
    const { io, temp, done } = update({}, runner);
    await expect(done).rejects.toThrow(
      /ostree admin deploy .* exited with code 1:\nerror: Bootloader write config: boom/,
    );
    const sum = (subject: string) => crypto.createHash('sha256').update(`--subject=${subject}`).digest('hex');
    expect(ostreeCalls(runner)).toEqual([
      ['admin', 'init-fs', '--modern', 'WORK/sysroot'],
      ['admin', 'os-init', '--sysroot=WORK/sysroot', 'default'],
      ['--repo=WORK/sysroot/ostree/repo', 'config', 'set', 'sysroot.bootloader', 'none'],
      [
        '--repo=WORK/sysroot/ostree/repo',
        'commit',
        '--consume',
        '--branch=keel/update-test/previous',
        `--subject=previous ${d.previous}`,
        '--tree=dir=WORK/tree',
      ],
      ['--repo=WORK/candidate-disk/repo', 'init', '--mode=bare'],
      [
        '--repo=WORK/candidate-disk/repo',
        'commit',
        '--consume',
        '--branch=keel/update-test/candidate',
        `--subject=candidate ${d.candidate}`,
        '--tree=dir=WORK/tree',
      ],
      [
        'admin',
        'deploy',
        '--sysroot=WORK/sysroot',
        '--os=default',
        expect.stringMatching(/^--karg=root=UUID=[0-9a-f-]{36}$/),
        '--karg=rw',
        sum(`previous ${d.previous}`),
      ],
    ]);
    expect(io.groups).toEqual(['verify the signatures', 'prepare the machine']);
    expect(io.outputs).toEqual({
      skipped: 'false',
      'previous-digest': d.previous,
      passed: 'false',
      reason: expect.stringMatching(/Bootloader write config: boom/),
      boots: '[]',
      'serial-log': '',
    });
    const summary = io.summaries.join('');
    expect(summary).toMatch(/^### update-test ❌ failed/);
    expect(summary).toContain(`\`${reg.host}/acme/os@${d.previous}\` → \`${reg.host}/acme/os@${d.candidate}\``);
    expect(summary).toMatch(/Signatures: previous: verified .*; candidate: verified/);
    // The work directory (sysroot, trees, blobs) is gone.
    expect(fs.readdirSync(temp)).toEqual([]);
  });

  it('a candidate without a kernel fails the preparation, named, before its tree is committed', async () => {
    const { io, runner, done } = update({ 'image-ref': `${reg.host}/acme/os@${d.kernelless}` });
    await expect(done).rejects.toThrow(/the candidate cannot be deployed: the image must hold exactly one kernel/);
    expect(ostreeCalls(runner).map((a) => a.find((x) => x.startsWith('--subject=')) ?? a[1])).toEqual([
      'init-fs',
      'os-init',
      'config',
      `--subject=previous ${d.previous}`,
      'init',
    ]);
    expect(io.outputs).toMatchObject({ passed: 'false', reason: expect.stringMatching(/exactly one kernel/) });
  });

  it('refuses a previous release whose signature does not verify, before anything is pulled', async () => {
    const before = reg.requests.length;
    const { io, runner, temp, done } = update({ 'image-ref': `${reg.host}/acme/unsigned:candidate` });
    await expect(done).rejects.toThrow(
      /refusing .*acme\/unsigned@sha256:.*: its signature does not verify with public-key/,
    );
    expect(runner.calls).toEqual([]);
    const layers = JSON.parse(reg.manifest('acme/unsigned', d.unsignedPrevious!)!.body.toString()) as {
      layers: { digest: string }[];
    };
    expect(reg.requests.slice(before).filter((r) => layers.layers.some((l) => r.endsWith(l.digest)))).toEqual([]);
    expect(io.outputs).toMatchObject({ passed: 'false', boots: '[]', reason: expect.stringMatching(/^refusing /) });
    expect(io.summaries.join('')).toMatch(/### update-test ❌ failed[\s\S]*\*\*refusing [\s\S]*Signatures: —\./);
    expect(fs.readdirSync(temp)).toEqual([]);
  });

  it.each([
    ['no public-key', { 'public-key': '' }, /^Input 'public-key': it is required: update-test refuses to run without/],
    [
      'a malformed previous image',
      { 'previous-image': 'a b' },
      /^Input 'previous-image' has value "a b": expected an image reference, or a tag or sha256 digest/,
    ],
    ['a timeout under a minute', { timeout: '30' }, /^Input 'timeout' has value "30"/],
    ['a bad accelerator', { accel: 'hvf' }, /^Input 'accel' has value "hvf": expected one of: auto, kvm, tcg/],
    ['an artifact name with a colon', { 'artifact-name': 'a:b' }, /^Input 'artifact-name' has value "a:b"/],
    ['a bad rollback flag', { rollback: 'sometimes' }, /^Input 'rollback' has value "sometimes"/],
  ])('refuses %s before any request or command', async (_what, extra, message) => {
    const before = reg.requests.length;
    const { io, runner, done } = update(extra);
    await expect(done).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(runner.calls).toEqual([]);
    expect(io.outputs).toEqual({});
  });
});
