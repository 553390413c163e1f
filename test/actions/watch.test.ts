// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import type { WatchStatus } from '../../actions/watch/src/status.js';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';
import { workflowRunsEmulator, type JobSeed, type WorkflowRunsEmulator } from '../../emulators/github/workflow-runs.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction, warnings } from '../harness/run-action.js';
import { makeOciImage, skopeoPush, tmpdir } from '../harness/tools.js';

/**
 * The bundled watch against a real registry (ages from the created label or config) and the
 * GitHub emulator's Actions runs (the automatic retry: once, transient steps only, never for a
 * pull request, never a superseded commit).
 */
const NOW = '2026-03-15T12:00:00Z';
const CREATED = 'org.opencontainers.image.created';
const TOKEN = 'ghp_watchTestToken77';

describe('watch (bundled, real registry, GitHub emulator)', () => {
  let reg: Registry;
  let emu: GithubEmulator;
  let wr: WorkflowRunsEmulator;
  let head: string;

  beforeAll(async () => {
    reg = await startRegistry();
    wr = workflowRunsEmulator();
    emu = await startGithubEmulator({
      repos: { 'acme/os': { files: { 'README.md': '# os\n' } } },
      token: TOKEN,
      extensions: [wr.extension],
    });
    head = emu.state.repo('acme/os').resolve('main')!;
  });
  afterAll(async () => {
    await emu.close();
    await reg.stop();
  });

  const push = (ref: string, opts: Parameters<typeof makeOciImage>[1]) =>
    skopeoPush(`oci:${makeOciImage(tmpdir(), opts).dir}:latest`, `${reg.host}/${ref}`);
  const watch = (inputs: Record<string, string>) => {
    const out = tmpdir('keel-watch-out-');
    return runAction({
      action: 'watch',
      inputs: {
        'tls-verify': 'false',
        token: TOKEN,
        'api-url': emu.url,
        repository: 'acme/os',
        'output-dir': out,
        ...inputs,
      },
      env: { KEEL_NOW: NOW },
    });
  };
  const status = (r: { outputs: Record<string, string> }) =>
    JSON.parse(fs.readFileSync(r.outputs['status-file']!, 'utf8')) as WatchStatus;
  const failedPush: JobSeed[] = [
    { name: 'build', conclusion: 'success', steps: [{ name: 'Build', conclusion: 'success' }] },
    {
      name: 'push',
      conclusion: 'failure',
      steps: [
        { name: 'Push [transient]', conclusion: 'failure' },
        { name: 'Sign', conclusion: 'skipped' },
      ],
    },
  ];

  it('reports a fresh stable, writes status.json, and re-runs a transiently failed build exactly once', async () => {
    const stable = push('acme/fresh:stable', {
      labels: { [CREATED]: '2026-03-12T08:00:00Z', 'org.opencontainers.image.version': '20260312' },
    });
    const candidate = push('acme/fresh:candidate', { created: '2026-03-14T08:00:00Z' });
    const run = wr.addRun({
      repository: 'acme/os',
      workflow: 'build.yml',
      event: 'schedule',
      branch: 'main',
      headSha: head,
      jobs: failedPush,
    });

    const first = await watch({ image: `${reg.host}/acme/fresh`, workflow: 'build.yml' });
    expect(errors(first)).toEqual([]);
    expect(first.outputs).toMatchObject({
      stale: 'false',
      state: 'fresh',
      'age-days': '3',
      'stable-digest': stable,
      'candidate-digest': candidate,
      'retried-run': String(run.id),
    });
    expect(first.outputs['retry-decision']).toMatch(/failed only in transient steps \('push' › 'Push \[transient\]'\)/);
    expect(wr.reruns).toEqual([{ runId: run.id, attempt: 2 }]);
    const s = status(first);
    expect(s).toMatchObject({
      schemaVersion: 1,
      generatedAt: '2026-03-15T12:00:00.000Z',
      image: `${reg.host}/acme/fresh`,
      state: 'fresh',
      stale: false,
      maxAgeDays: 9,
      stable: {
        tag: 'stable',
        digest: stable,
        created: '2026-03-12T08:00:00.000Z',
        createdFrom: 'label',
        ageDays: 3,
        version: '20260312',
      },
      candidate: { tag: 'candidate', digest: candidate, createdFrom: 'config', ageDays: 1 },
      boot: null,
      build: { workflow: 'build.yml', branch: 'main', runId: run.id, attempt: 1, rerun: true },
    });
    expect(first.summary).toMatch(/stable is 3 day\(s\) old \(max-age-days 9\): fresh/);
    expect(first.summary).toMatch(/\| `stable` \| `sha256:/);

    // The re-run is queued: nothing to decide. It fails again: never a second re-run.
    const queued = await watch({ image: `${reg.host}/acme/fresh`, workflow: 'build.yml' });
    expect(queued.outputs['retried-run']).toBe('');
    expect(queued.outputs['retry-decision']).toBe(`run ${run.id} is queued: nothing to decide yet`);
    wr.finishAttempt(run.id, { push: 'failure' });
    const twice = await watch({ image: `${reg.host}/acme/fresh`, workflow: 'build.yml' });
    expect(twice.outputs['retry-decision']).toBe(`run ${run.id} was already re-run (attempt 2): never twice`);
    expect(wr.reruns).toHaveLength(1);
  });

  it('never re-runs a pull request run, a superseded commit, or a non-transient failure', async () => {
    const image = `${reg.host}/acme/fresh`;
    wr.addRun({
      repository: 'acme/os',
      workflow: 'pr.yml',
      event: 'pull_request',
      branch: 'main',
      headSha: head,
      jobs: failedPush,
    });
    const pr = await watch({ image, workflow: 'pr.yml' });
    expect(pr.outputs['retry-decision']).toBe('no run of pr.yml on main outside pull requests');

    const repo = emu.state.repo('acme/os');
    repo.refs.set('refs/heads/release', head);
    const old = wr.addRun({
      repository: 'acme/os',
      workflow: 'rel.yml',
      event: 'push',
      branch: 'release',
      headSha: head,
      jobs: failedPush,
    });
    const next = repo.writeCommit({
      tree: repo.commit(head)!.tree,
      parents: [head],
      message: 'next',
      author: { name: 'a', email: 'a@example.com' },
      committer: { name: 'a', email: 'a@example.com' },
    });
    repo.refs.set('refs/heads/release', next);
    const superseded = await watch({ image, workflow: 'rel.yml', branch: 'release' });
    expect(superseded.outputs['retry-decision']).toBe(
      `run ${old.id} built ${head.slice(0, 12)}, but the branch head is now ${next.slice(0, 12)}: superseded, not re-run`,
    );

    const lint = wr.addRun({
      repository: 'acme/os',
      workflow: 'lint.yml',
      event: 'push',
      branch: 'main',
      headSha: head,
      jobs: [{ name: 'lint', conclusion: 'failure', steps: [{ name: 'Lint', conclusion: 'failure' }] }],
    });
    const notTransient = await watch({ image, workflow: 'lint.yml' });
    expect(notTransient.outputs['retry-decision']).toBe(
      `run ${lint.id} failed in 'lint' › 'Lint', which is not marked transient`,
    );
    // Listing the step name makes it transient.
    const listed = await watch({ image, workflow: 'lint.yml', 'transient-steps': 'Lint' });
    expect(listed.outputs['retried-run']).toBe(String(lint.id));
    expect(wr.reruns.map((r) => r.runId)).not.toContain(old.id);
  });

  it('stable older than max-age-days is stale (config created when there is no label); fail-when-stale fails after writing', async () => {
    push('acme/old:stable', { created: '2026-02-20T00:00:00Z' });
    const boot = path.join(tmpdir(), 'smoke.json');
    fs.writeFileSync(boot, JSON.stringify({ passed: 'true', digest: `sha256:${'3'.repeat(64)}`, reason: '' }));
    const r = await watch({
      image: `${reg.host}/acme/old`,
      'max-age-days': '14',
      'boot-status': boot,
      'fail-when-stale': 'true',
      token: '',
    });
    expect(r.code).toBe(1);
    expect(errors(r).join('')).toBe('watch: stable is 23 day(s) old (max-age-days 14): STALE');
    expect(r.outputs).toMatchObject({
      stale: 'true',
      state: 'stale',
      'age-days': '23',
      'candidate-digest': '',
      'retry-decision': '',
    });
    const s = status(r);
    expect(s.stable).toMatchObject({ createdFrom: 'config', ageDays: 23 });
    expect(s.candidate).toEqual({ tag: 'candidate', problem: 'not found' });
    expect(s.boot).toEqual({ verdict: 'passed', digest: `sha256:${'3'.repeat(64)}`, source: `file ${boot}` });
    expect(s.build).toBeNull();
  });

  it('a missing stable is unreadable, which counts as stale; a build check that cannot run is only a warning', async () => {
    const r = await watch({ image: `${reg.host}/acme/none`, workflow: 'missing.yml', 'api-url': 'http://127.0.0.1:9' });
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({ stale: 'true', state: 'unreadable', 'age-days': '', 'retried-run': '' });
    expect(warnings(r).join('')).toMatch(/watch: could not check missing\.yml/);
    expect(status(r).stable).toEqual({ tag: 'stable', problem: 'not found' });
  });
});
