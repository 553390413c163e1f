// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { parseDeclarations } from '../../actions/lib/declarations.js';
import { checkVariant } from '../../cli/commands/run.js';
import { eventFor } from '../../cli/events.js';
import { runWorkflow, type RunRecord } from '../../cli/runner.js';
import { and, cancelled, eq, jobResult, lit, matrix, not } from '../../workflows-src/expr.js';
import { loadRepoDeclarations, workflows } from '../../workflows-src/index.js';
import { job, runStep, type Workflow } from '../../workflows-src/model.js';
import { repoRoot } from '../../workflows-src/action-specs.js';
import { variantLegs } from '../../workflows-src/variants.js';
import { fakeServices } from '../harness/local-services.js';
import { tmpdir } from '../harness/tools.js';

/**
 * What `keel run` needs for the operations workflows, without a service: matrix legs run one by
 * one with their own values (one failing leg fails the job, not its siblings), a job whose
 * condition holds a status function runs after a failed job it needs (the watch's notify job),
 * and the event each workflow gets (a closed pull request for cleanup, a labelled one for build).
 */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const tmp = (p: string) => {
  const d = tmpdir(p);
  dirs.push(d);
  return d;
};

const run = (workflow: Workflow, variant?: string) =>
  runWorkflow({
    ...(variant ? { variant } : {}),
    workflow,
    event: 'workflow_dispatch',
    services: fakeServices(tmp('keel-runner-ops-')),
    runsDir: tmp('keel-runs-'),
    repository: 'keel-project/keel',
    log: () => undefined,
  });

const base = { runsOn: 'local', timeoutMinutes: 1, permissions: {} };
const wf = (jobs: ReturnType<typeof job>[]): Workflow => ({
  file: 'ops.yml',
  source: 'test',
  name: 'ops',
  on: { workflow_dispatch: {} },
  permissions: {},
  actions: { kind: 'local' },
  jobs,
});
/** Keeps `value` and reads it back as the step output `value` (what a leg saw). */
const keep = (value: ReturnType<typeof matrix>) => [
  runStep({ name: 'keep', run: 'true', local: { local: 'write-files', dir: 'out', files: { v: value } } }),
  runStep({
    id: 'read',
    name: 'read',
    run: 'true',
    local: { local: 'read-files', dir: 'out', outputs: { value: { file: 'v', pattern: '.*' } } },
    outputs: ['value'],
  }),
];

describe('keel run: matrix jobs', () => {
  it('runs each leg with its own values, in its own workspace; a failing leg fails only itself and the job', async () => {
    const legs = [
      { name: 'a', date: '20260101' },
      { name: 'b', date: '20260230' },
      { name: 'c', date: '20260102' },
    ];
    const record = await run(
      wf([
        job('legs', {
          ...base,
          name: 'legs',
          strategy: { include: legs },
          steps: [
            runStep({ name: 'date', run: 'true', local: { local: 'check-date', value: matrix('date'), name: 'date' } }),
            ...keep(matrix('name')),
          ],
        }),
      ]),
    );
    const leg = (n: string) => record.jobs[`legs (${n})`]!;
    expect(['a', 'b', 'c'].map((n) => leg(n).result)).toEqual(['success', 'failure', 'success']);
    expect(leg('a').steps.read!.outputs.value).toBe('a');
    expect(leg('c').steps.read!.outputs.value).toBe('c');
    expect(leg('b').steps.read!.result).toBe('skipped');
    expect(record.jobs.legs!.result).toBe('failure');
    expect(record.ok).toBe(false);
    expect(fs.readdirSync(path.join(record.dir, 'jobs')).sort()).toEqual(['legs-a', 'legs-b', 'legs-c']);
  });
});

describe('keel run --variant', () => {
  const decl = (list: string) =>
    parseDeclarations(`${fs.readFileSync(path.join(repoRoot, 'declarations/distro.yaml'), 'utf8')}\n${list}`);
  const two = decl('variants:\n  - { name: main }\n  - { name: nvidia }\n');
  const legs = variantLegs(two);
  const build = job('build', {
    ...base,
    name: 'build',
    strategy: { include: legs },
    steps: keep(matrix('image')),
  });
  const sysext = job('sysext', { ...base, name: 'sysext', strategy: { include: [{ name: 'hello' }] }, steps: [] });

  it('runs only the named variant’s leg of a variant matrix; other matrices run whole', async () => {
    const record = await run(wf([build, sysext]), 'nvidia');
    expect(Object.keys(record.jobs).sort()).toEqual(['build', 'build (nvidia)', 'sysext', 'sysext (hello)']);
    expect(record.jobs['build (nvidia)']!.steps.read!.outputs.value).toBe(`${two.image.registry}/keel-os-nvidia`);
    const all = await run(wf([build]));
    expect(Object.keys(all.jobs).sort()).toEqual(['build', 'build (main)', 'build (nvidia)']);
    expect(all.jobs['build (main)']!.steps.read!.outputs.value).toBe(`${two.image.registry}/keel-os`);
  });

  it('an unknown variant is refused before anything runs, naming the known ones', () => {
    expect(checkVariant(two, 'nvidia')).toBe('nvidia');
    expect(checkVariant(two, undefined)).toBeUndefined();
    expect(() => checkVariant(two, 'amd')).toThrow("keel run: unknown variant 'amd' (known: main, nvidia)");
    expect(() => checkVariant(decl(''), 'amd')).toThrow(/declare no variants/);
  });
});

describe('keel run: job conditions with a status function', () => {
  const failing = job('first', {
    ...base,
    name: 'first',
    steps: [runStep({ name: 'fail', run: 'false', local: { local: 'check-date', value: lit('soon'), name: 'x' } })],
  });
  const skip = runStep({ name: 'nothing', run: 'true', local: { local: 'skip', reason: 'test' } });
  const plain = job('plain', { ...base, name: 'plain', needs: [failing], steps: [skip] });
  const after = job('after', {
    ...base,
    name: 'after',
    needs: [failing],
    if: and(not(cancelled()), eq(jobResult('first'), 'failure')),
    steps: [skip],
  });

  it('decide by the condition alone (run after a failed need); a plain job is skipped', async () => {
    const record: RunRecord = await run(wf([failing, plain, after]));
    expect(record.jobs.first!.result).toBe('failure');
    expect(record.jobs.plain!.result).toBe('skipped');
    expect(record.jobs.after!.result).toBe('success');
  });
});

describe('keel run: the event of each workflow', () => {
  const decl = loadRepoDeclarations();
  const wfs = workflows(decl, { mode: 'dogfood' });
  const named = (n: string) => wfs.find((w) => w.file === `${n}.yml`)!;
  const ctx = { runs: [] as RunRecord[], decl, repository: 'keel-project/keel' };

  it('cleanup --event pull_request: pull request N closed, of this repository', () => {
    expect(eventFor(named('cleanup'), 'pull_request', { ...ctx, pr: 7 })).toEqual({
      event: 'pull_request',
      payload: {
        action: 'closed',
        number: 7,
        pull_request: {
          number: 7,
          state: 'closed',
          labels: [{ name: decl.tags['pr-label'] }],
          head: { repo: { full_name: 'keel-project/keel' } },
        },
      },
    });
  });

  it('build --event pull_request: labelled with the build label; defaults: push for build, dispatch otherwise', () => {
    const pr = eventFor(named('build'), 'pull_request', ctx);
    expect(pr.payload).toMatchObject({ action: 'labeled', label: { name: decl.tags['pr-label'] }, number: 1 });
    expect(eventFor(named('build'), undefined, ctx).event).toBe('push');
    for (const n of ['rollback', 'cleanup', 'watch', 'sysext'])
      expect(eventFor(named(n), undefined, ctx)).toEqual({ event: 'workflow_dispatch', payload: {} });
  });

  it("smoke-boot after a successful build of this invocation: that build's workflow_run", () => {
    const build = { id: 'b1', workflow: 'build.yml', event: 'push', ok: true } as RunRecord;
    expect(eventFor(named('smoke-boot'), undefined, { ...ctx, runs: [build] })).toMatchObject({
      event: 'workflow_run',
      payload: {
        workflow_run: { id: 'b1', conclusion: 'success', head_repository: { full_name: 'keel-project/keel' } },
      },
    });
  });
});
