// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunContext } from '../../actions/lib/context.js';
import { recordingIO } from '../../actions/lib/io.js';
import { run } from '../../actions/watch/src/main.js';
import type { WatchStatus } from '../../actions/watch/src/status.js';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';
import { workflowRunsEmulator, type WorkflowRunsEmulator } from '../../emulators/github/workflow-runs.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { fakeRunner } from '../harness/fake-runner.js';

/**
 * watch's run() through recordingIO, the in-process registry and the GitHub emulator's Actions
 * runs: the state of stable (fresh, stale, critical, unreadable) in outputs, status.json and the
 * summary; the boot verdict; the one automatic re-run; a build check that fails is a warning;
 * fail-when-stale fails after writing; bad input fails before any request.
 */
const NOW = new Date('2025-03-15T12:00:00Z');
const CREATED = 'org.opencontainers.image.created';
const TOKEN = 'ghp_watchTableToken0123456789';
let reg: FakeRegistry;
let emu: GithubEmulator;
let wr: WorkflowRunsEmulator;
let work: string;
let head: string;
const d: Record<string, string> = {};

beforeAll(async () => {
  reg = await startFakeRegistry();
  wr = workflowRunsEmulator();
  emu = await startGithubEmulator({
    repos: { 'acme/os': { files: { 'README.md': '# os\n' } } },
    token: TOKEN,
    extensions: [wr.extension],
  });
  head = emu.state.repo('acme/os').resolve('main')!;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-watch-'));
  const seed = (repo: string, tag: string, image: Parameters<typeof seedImage>[4]) =>
    seedImage(reg, repo, tag, path.join(work, `${repo.replace('/', '-')}-${tag}`), image);
  d.fresh = await seed('acme/fresh', 'stable', {
    labels: { [CREATED]: '2025-03-12T08:00:00Z', 'org.opencontainers.image.version': '20250312' },
  });
  d.candidate = await seed('acme/fresh', 'candidate', { created: '2025-03-14T08:00:00Z' });
  d.stale = await seed('acme/stale', 'stable', { created: '2025-02-20T00:00:00Z' });
  d.critical = await seed('acme/critical', 'stable', { labels: { [CREATED]: '2025-01-01T00:00:00Z' } });
  d.undated = await seed('acme/undated', 'stable', { created: '1970-01-01T00:00:00Z' });
});
afterAll(async () => {
  await emu.close();
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const watch = (inputs: Record<string, string>, context: Partial<RunContext> = {}) => {
  const out = fs.mkdtempSync(path.join(work, 'out-'));
  const runner = fakeRunner();
  const io = recordingIO(
    { 'tls-verify': 'false', 'output-dir': out, token: TOKEN, 'api-url': emu.url, repository: 'acme/os', ...inputs },
    { now: () => NOW, ...context },
    runner,
  );
  const status = () => JSON.parse(fs.readFileSync(path.join(out, 'status.json'), 'utf8')) as WatchStatus;
  return { io, runner, out, status, done: run(io) };
};
const warnings = (io: ReturnType<typeof watch>['io']) =>
  io.logs.filter((l) => l.level === 'warning').map((l) => l.message);

describe('watch run()', () => {
  it('a fresh stable: outputs, status.json and the summary; a transiently failed build re-run once', async () => {
    const build = wr.addRun({
      repository: 'acme/os',
      workflow: 'build.yml',
      event: 'schedule',
      branch: 'main',
      headSha: head,
      jobs: [{ name: 'push', conclusion: 'failure', steps: [{ name: 'Push [transient]', conclusion: 'failure' }] }],
    });
    const { io, runner, status, done } = watch({ image: `${reg.host}/acme/fresh`, workflow: 'build.yml' });
    await done;
    expect(io.outputs).toMatchObject({
      state: 'fresh',
      stale: 'false',
      'age-days': '3',
      'stable-digest': d.fresh,
      'candidate-digest': d.candidate,
      'retried-run': String(build.id),
    });
    expect(io.outputs['retry-decision']).toMatch(/failed only in transient steps \('push' › 'Push \[transient\]'\)/);
    expect(wr.reruns).toEqual([{ runId: build.id, attempt: 2 }]);
    expect(status()).toMatchObject({
      schemaVersion: 1,
      generatedAt: NOW.toISOString(),
      state: 'fresh',
      stable: { tag: 'stable', digest: d.fresh, createdFrom: 'label', ageDays: 3, version: '20250312' },
      candidate: { tag: 'candidate', digest: d.candidate, createdFrom: 'config', ageDays: 1 },
      boot: null,
      build: { workflow: 'build.yml', branch: 'main', runId: build.id, rerun: true },
    });
    expect(io.groups).toEqual([`read ${reg.host}/acme/fresh`, 'check build.yml']);
    expect(io.summaries.join('')).toMatch(/\*\*stable is 3 day\(s\) old \(max-age-days 9\): fresh\*\*/);
    expect(io.secrets).toContain(TOKEN);
    expect(JSON.stringify([io.logs, io.summaries, status()])).not.toContain(TOKEN);
    expect(runner.calls).toEqual([]);

    // The next watch finds the re-run queued: nothing to decide, no second re-run.
    const again = watch({ image: `${reg.host}/acme/fresh`, workflow: 'build.yml' });
    await again.done;
    expect(again.io.outputs['retried-run']).toBe('');
    expect(again.io.outputs['retry-decision']).toBe(`run ${build.id} is queued: nothing to decide yet`);
    expect(wr.reruns).toHaveLength(1);
  });

  it.each([
    [
      'a stale stable',
      'acme/stale',
      { 'max-age-days': '14' },
      'stale',
      '23',
      /stable is 23 day\(s\) old \(max-age-days 14\): STALE/,
    ],
    [
      'a critical stable',
      'acme/critical',
      {},
      'critical',
      '73',
      /stable is 73 day\(s\) old \(max-age-days 9\): CRITICAL/,
    ],
    [
      'an undated stable (an epoch created says nothing)',
      'acme/undated',
      {},
      'unreadable',
      '',
      /has no age \(no build date/,
    ],
    [
      'a missing stable',
      'acme/none',
      {},
      'unreadable',
      '',
      /stable of .*acme\/none has no age \(not found\): treated as stale/,
    ],
  ])(
    '%s: stale outputs, and fail-when-stale fails after writing them',
    async (_what, repo, extra, state, age, verdict) => {
      const { io, status, done } = watch({
        image: `${reg.host}/${repo}`,
        token: '',
        'fail-when-stale': 'true',
        ...extra,
      });
      await expect(done).rejects.toThrow(verdict);
      expect(io.outputs).toMatchObject({ state, stale: 'true', 'age-days': age, 'retried-run': '' });
      expect(status()).toMatchObject({ state, stale: true, build: null });
      expect(io.summaries.join('')).toMatch(verdict);
      expect(io.summaries.join('')).toContain('Build workflow: not checked.');
    },
  );

  it.each([
    ['the boot-verdict input', { 'boot-verdict': 'failed' }, { verdict: 'failed', source: 'input boot-verdict' }],
    [
      "smoke-boot's outputs as a file",
      { 'boot-status': 'FILE' },
      { verdict: 'passed', digest: `sha256:${'3'.repeat(64)}`, source: expect.stringMatching(/^file \//) },
    ],
  ])('records the last boot from %s', async (_what, extra, boot) => {
    const file = path.join(work, 'smoke.json');
    fs.writeFileSync(file, JSON.stringify({ passed: 'true', digest: `sha256:${'3'.repeat(64)}` }));
    const ex = extra as Record<string, string>;
    if (ex['boot-status'] === 'FILE') ex['boot-status'] = file;
    const { io, status, done } = watch({ image: `${reg.host}/acme/fresh`, token: '', ...ex });
    await done;
    expect(status().boot).toEqual(boot);
    expect(io.summaries.join('')).toMatch(new RegExp(`Last boot: ${boot.verdict}`));
  });

  it('an unreadable boot-status file is a warning, not a failure', async () => {
    const file = path.join(work, 'garbage.json');
    fs.writeFileSync(file, '{not json');
    const { io, status, done } = watch({ image: `${reg.host}/acme/fresh`, token: '', 'boot-status': file });
    await done;
    expect(status().boot).toBeNull();
    expect(warnings(io)).toEqual([expect.stringMatching(/boot-status .* is not readable JSON/)]);
  });

  it('a build check the API refuses is a warning; the staleness verdict still stands', async () => {
    const { io, status, done } = watch({ image: `${reg.host}/acme/fresh`, workflow: 'build.yml', token: 'ghp_wrong' });
    await done;
    expect(io.outputs).toMatchObject({ state: 'fresh', 'retried-run': '', 'retry-decision': '' });
    expect(status().build).toBeNull();
    expect(warnings(io)).toEqual([expect.stringMatching(/^watch: could not check build\.yml: /)]);
  });

  it('without a token the build workflow is not checked', async () => {
    const before = emu.state.requests.length;
    const { io, done } = watch({ image: `${reg.host}/acme/fresh`, workflow: 'build.yml', token: '' });
    await done;
    expect(emu.state.requests.length).toBe(before);
    expect(io.logs).toContainEqual({ level: 'info', message: 'watch: no token, so the build workflow is not checked' });
  });

  it.each([
    ['a tag in the image', { image: 'X:stable' }, /^Input 'image'/],
    ['a workflow that is not a file name', { workflow: '../build' }, /^Input 'workflow' has value "..\/build"/],
    ['a bad repository', { repository: 'acme' }, /^Input 'repository' has value "acme"/],
    ['no repository anywhere', { workflow: 'build.yml', repository: '' }, /^Input 'repository': needed with workflow/],
    ['a bad boot verdict', { 'boot-verdict': 'maybe' }, /^Input 'boot-verdict' has value "maybe"/],
    ['max-age-days 0', { 'max-age-days': '0' }, /^Input 'max-age-days' has value "0"/],
  ])('refuses %s before any request or file', async (_what, extra, message) => {
    const ex = { image: `${reg.host}/acme/fresh`, ...extra } as Record<string, string>;
    if (ex.image === 'X:stable') ex.image = `${reg.host}/acme/fresh:stable`;
    const before = [reg.requests.length, emu.state.requests.length];
    const { io, out, done } = watch(ex, { repository: '' });
    await expect(done).rejects.toThrow(message);
    expect([reg.requests.length, emu.state.requests.length]).toEqual(before);
    expect(fs.readdirSync(out)).toEqual([]);
    expect(io.outputs).toEqual({});
  });
});
