// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseDeclarations, type Distro } from '../../actions/lib/declarations.js';
import { isValidYmd } from '../../actions/lib/inputs.js';
import { isTransientStep } from '../../actions/watch/src/rerun.js';
import { cancelled, lit, matrix, not } from '../../workflows-src/expr.js';
import {
  checkWorkflow,
  evaluateCondition,
  loadRepoDeclarations,
  renderWorkflow,
  workflows,
  type Workflow,
} from '../../workflows-src/index.js';
import { job, runStep } from '../../workflows-src/model.js';
import { sysextLegs } from '../../workflows-src/workflows/sysext.js';
import { secretsOf } from './checks.js';
import { keelHop, needsOf, readText, readWorkflow, root, type YStep } from './helpers.js';

/**
 * The operations workflows (issue 19: rollback, cleanup, watch; issue 18: sysext) as GitHub reads
 * them and as the model holds them: triggers, the guards next to them, permissions, environments,
 * concurrency, what each hop is given. The policy tests (policy*.test.ts, generated.test.ts) walk
 * these files too; here is what is particular to each.
 */
const decl = loadRepoDeclarations();
const image = `${decl.image.registry}/${decl.image.name}`;
const models = workflows(decl);
const model = (file: string) => models.find((w) => w.file === file)!;
const baseYaml = fs.readFileSync(path.join(root, 'declarations', 'distro.yaml'), 'utf8');
const keelStep = (steps: YStep[], hop: string) => steps.find((s) => keelHop(s.uses) === hop)!;
const ctx = (github: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  github: (p: string) => github[p],
  ...extra,
});

describe('rollback.yml', () => {
  const wf = readWorkflow('rollback.yml');
  const j = wf.jobs.rollback!;

  it('dispatch only, with a required date', () => {
    expect(Object.keys(wf.on)).toEqual(['workflow_dispatch']);
    const inputs = (wf.on.workflow_dispatch as { inputs: Record<string, { required: boolean; type: string }> }).inputs;
    expect(inputs).toEqual({ date: expect.objectContaining({ required: true, type: 'string' }) });
  });

  it('checks the date before it is read, resolves stable.<date> once, moves only stable, verified', () => {
    const guard = j.steps.findIndex((s) => s.env?.VALUE === '${{ inputs.date }}');
    const firstRead = j.steps.findIndex((s) => JSON.stringify(s.with ?? {}).includes('inputs.date'));
    expect(guard).toBeGreaterThanOrEqual(0);
    expect(guard).toBeLessThan(firstRead);
    expect(j.steps.filter((s) => keelHop(s.uses) === 'resolve')).toHaveLength(1);
    expect(keelStep(j.steps, 'resolve').with!.image).toBe(`${image}:stable.\${{ inputs.date }}`);
    const promote = keelStep(j.steps, 'promote');
    expect(promote.with).toMatchObject({
      'image-ref': '${{ steps.dated.outputs.image-ref }}',
      tags: 'stable',
      'require-tag': 'stable.${{ inputs.date }}',
      'public-key': decl.signing!['public-key'],
    });
    expect(promote.with!['allow-unsigned']).toBeUndefined();
  });

  it("shares the promotion's concurrency group (never cancelled) and runs in the release environment", () => {
    const promotion = readWorkflow('smoke-boot.yml').jobs.promote!;
    expect(j.concurrency).toEqual(promotion.concurrency);
    expect(j.concurrency).toEqual({ group: `keel-promote-${image}`, 'cancel-in-progress': false });
    expect(j.environment).toBe(decl.environment);
    expect(j.permissions).toEqual({ contents: 'read', packages: 'write' });
  });

  it('notifies after the move, and on failure instead', () => {
    const notify = j.steps.filter((s) => keelHop(s.uses) === 'notify');
    expect(notify.map((s) => [s.id, s.if])).toEqual([
      ['notify', undefined],
      ['notify-failed', 'failure()'],
    ]);
    for (const s of notify) expect(s.with!.url).toBe('${{ secrets.NTFY_URL }}');
    expect(String(notify[0]!.with!.message)).toContain('${{ steps.promote.outputs.digest }}');
  });

  const guardScript = j.steps.find((s) => s.env?.VALUE === '${{ inputs.date }}')!.run!;
  it.each([
    ['20260101', true],
    ['20240229', true],
    ['20250229', false],
    ['20260230', false],
    ['2026-01-01', false],
    ['202601011', false],
    ['20260101\nstable', false],
    ['20260101 ', false],
    ['$(id)', false],
    ['', false],
  ])('the date guard (bash) and the local runner (isValidYmd) agree on %j', (value, ok) => {
    const r = spawnSync('bash', ['-c', guardScript], {
      env: { PATH: process.env.PATH, VALUE: value },
      encoding: 'utf8',
    });
    expect([r.status, isValidYmd(value)]).toEqual([ok ? 0 : 1, ok]);
    if (value) expect(r.stdout).not.toContain(value);
  });
});

describe('cleanup.yml', () => {
  const wf = readWorkflow('cleanup.yml');
  const j = wf.jobs.cleanup!;

  it('on a closed pull request, weekly, and on dispatch with dry-run (a boolean, on by default)', () => {
    expect(wf.on.pull_request).toEqual({ types: ['closed'], branches: ['main'] });
    expect(wf.on.schedule).toHaveLength(1);
    const inputs = (wf.on.workflow_dispatch as { inputs: Record<string, unknown> }).inputs;
    expect(inputs['dry-run']).toMatchObject({ type: 'boolean', default: true });
    expect(keelStep(j.steps, 'cleanup').with!['dry-run']).toBe('${{ inputs.dry-run || false }}');
    const text = readText('cleanup.yml');
    expect(text).toMatch(/# pull_request closed[^\n]*Guards:\n( {2}#[^\n]*\n)+ {2}pull_request:\n/);
  });

  it("checks out nothing and runs the released action: never the pull request's code", () => {
    expect(j.steps).toHaveLength(1);
    expect(j.steps.some((s) => s.uses?.startsWith('actions/checkout@'))).toBe(false);
    expect(keelStep(j.steps, 'cleanup').uses).toMatch(/^keel-project\/keel\/actions\/cleanup@[0-9a-f]{40}$/);
  });

  it('holds only GITHUB_TOKEN with packages: write, no environment', () => {
    expect(j.permissions).toEqual({ packages: 'write' });
    expect(j.environment).toBeUndefined();
    expect(secretsOf(model('cleanup.yml').jobs[0]!)).toEqual(new Set(['GITHUB_TOKEN']));
    expect(j.concurrency).toEqual({ group: `keel-cleanup-${image}`, 'cancel-in-progress': false });
  });

  it('keep-days from the declarations; released tags named for the hop', () => {
    expect(keelStep(j.steps, 'cleanup').with).toMatchObject({
      image,
      'keep-days': decl.cleanup['keep-days'],
      'stable-tag': decl.tags.stable,
      'candidate-tag': decl.tags.candidate,
    });
    const d = parseDeclarations(`${baseYaml}\ncleanup:\n  keep-days: 7\n`);
    const w = workflows(d, { mode: 'dogfood' }).find((x) => x.file === 'cleanup.yml')!;
    const s = w.jobs[0]!.steps[0]!;
    expect(s.type === 'keel' && s.with['keep-days']).toEqual(lit(7));
  });

  it("runs for this repository's pull requests only (a fork never had a pr-<N>)", () => {
    const cond = model('cleanup.yml').jobs[0]!.if!;
    const pr = (repo: string) => ({
      event_name: 'pull_request',
      repository: 'keel-project/keel',
      'event.pull_request.head.repo.full_name': repo,
    });
    expect(evaluateCondition(cond, ctx(pr('keel-project/keel')))).toBe(true);
    expect(evaluateCondition(cond, ctx(pr('someone/keel')))).toBe(false);
    expect(evaluateCondition(cond, ctx({ event_name: 'schedule' }))).toBe(true);
  });
});

describe('watch.yml', () => {
  const wf = readWorkflow('watch.yml');
  const j = wf.jobs.watch!;

  it('daily and on dispatch', () => {
    expect(Object.keys(wf.on).sort()).toEqual(['schedule', 'workflow_dispatch']);
    expect((wf.on.schedule as { cron: string }[])[0]!.cron).toMatch(/^\d+ \d+ \* \* \*$/);
  });

  it('max-age-days is staleness.server-days; red while stale; the build workflow for the retry', () => {
    expect(decl.staleness['server-days']).toBe(9);
    const watch = keelStep(j.steps, 'watch');
    expect(watch.with).toMatchObject({
      image,
      'max-age-days': decl.staleness['server-days'],
      'fail-when-stale': true,
      workflow: 'build.yml',
      token: '${{ secrets.GITHUB_TOKEN }}',
    });
    expect(j.permissions).toEqual({ actions: 'write', contents: 'read', packages: 'read' });
    const d = parseDeclarations(
      baseYaml.replace('  warn-after-days: 14\n', '  warn-after-days: 14\n  server-days: 3\n'),
    );
    const w = workflows(d, { mode: 'dogfood' }).find((x) => x.file === 'watch.yml')!;
    const s = w.jobs[0]!.steps.find((x) => x.type === 'keel' && x.hop === 'watch')!;
    expect(s.type === 'keel' && s.with['max-age-days']).toEqual(lit(3));
  });

  it('keeps status.json as an artifact even when the watch step fails', () => {
    const up = j.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(up.if).toBe('always()');
    expect(up.with).toMatchObject({ name: 'keel-watch-status', path: 'watch-out/status.json' });
  });

  it('notifies from its own job in the release environment, after a red watch too', () => {
    const notify = wf.jobs.notify!;
    expect(needsOf(notify)).toEqual(['watch']);
    expect(notify.environment).toBe(decl.environment);
    expect(j.environment).toBeUndefined();
    const cond = model('watch.yml').jobs.find((x) => x.id === 'notify')!.if!;
    const at = (event: string, stale: string, status: 'success' | 'failure' | 'cancelled') =>
      evaluateCondition(cond, { ...ctx({ event_name: event }), jobOutput: () => stale, status });
    expect(at('schedule', 'true', 'failure')).toBe(true);
    expect(at('schedule', 'false', 'success')).toBe(false);
    expect(at('schedule', 'true', 'cancelled')).toBe(false);
    expect(at('pull_request', 'true', 'failure')).toBe(false);
  });

  it("build.yml's network-bound steps carry the marker the watch's retry rule reads, and only those", () => {
    const steps = Object.values(readWorkflow('build.yml').jobs).flatMap((x) => x.steps);
    const transient = steps
      .filter((s) => isTransientStep(s.name ?? '', new Set()))
      .map((s) => keelHop(s.uses) ?? s.run);
    expect(transient).toEqual([expect.stringContaining('bootstrap.sh'), 'push', 'sign']);
  });
});

describe('sysext.yml', () => {
  const wf = readWorkflow('sysext.yml');
  const build = wf.jobs.sysext!;
  const base = wf.jobs.base!;

  it('after a promotion (smoke-boot of main), on a change of an extension tree, on dispatch; guards written', () => {
    const on = wf.on as { workflow_run: { workflows: string[]; types: string[]; branches: string[] } } & Record<
      string,
      { paths?: string[] }
    >;
    expect(on.workflow_run).toEqual({
      workflows: [readWorkflow('smoke-boot.yml').name],
      types: ['completed'],
      branches: ['main'],
    });
    expect(on.push!.paths).toContain('sysexts/keel-hello/**');
    expect(readText('sysext.yml')).toMatch(/Guards:\n( {2}#[^\n]*\n)+ {2}workflow_run:\n/);
    expect(base.if).toContain("github.event.workflow_run.conclusion == 'success'");
    expect(needsOf(build)).toEqual(['base']);
  });

  it('pins stable once; every leg builds on that digest, verified, signed, boot-tested', () => {
    expect(
      Object.values(wf.jobs)
        .flatMap((j) => j.steps)
        .filter((s) => keelHop(s.uses) === 'resolve'),
    ).toHaveLength(1);
    expect(keelStep(base.steps, 'resolve').with!.image).toBe(`${image}:stable`);
    expect(keelStep(build.steps, 'sysext').with).toMatchObject({
      'base-image-ref': '${{ needs.base.outputs.image-ref }}',
      name: '${{ matrix.name }}',
      'source-dir': '${{ matrix.tree }}',
      packages: '${{ matrix.packages }}',
      'boot-test': true,
      'public-key': decl.signing!['public-key'],
      'gpg-private-key': '${{ secrets.SYSEXT_GPG_PRIVATE_KEY }}',
      'base-url': '${{ matrix.base-url }}',
    });
  });

  it('one matrix leg per declared extension; the base URL is its item download URL', () => {
    expect(build.strategy).toEqual({ 'fail-fast': false, matrix: { include: sysextLegs(decl) } });
    expect(sysextLegs(decl)).toEqual([
      {
        name: 'keel-hello',
        tree: 'sysexts/keel-hello',
        packages: '',
        version: '1.0',
        format: 'squashfs',
        'probe-command': decl.sysexts[0]!['probe-command'],
        exclude: '',
        'allow-overrides': '',
        identifier: 'keel-os-sysext-keel-hello',
        'base-url': 'https://archive.org/download/keel-os-sysext-keel-hello/',
      },
    ]);
  });

  it('publishes the flat directory to the item (SHA256SUMS last), from the release environment, one per extension', () => {
    const ia = keelStep(build.steps, 'ia-upload');
    expect(String(ia.with!.files).split('\n')).toEqual([
      '${{ steps.sysext.outputs.path }}',
      '${{ steps.sysext.outputs.transfer-file }}',
      '${{ steps.sysext.outputs.feature-file }}',
      'sysext-out/SHA256SUMS.gpg',
      '${{ steps.sysext.outputs.sha256sums }}',
    ]);
    expect(ia.with!.identifier).toBe('${{ matrix.identifier }}');
    expect(build.environment).toBe(decl.environment);
    expect(base.environment).toBeUndefined();
    expect(build.concurrency).toEqual({
      group: `keel-sysext-${image}-\${{ matrix.name }}`,
      'cancel-in-progress': false,
    });
  });

  const twoExtensions = (yaml: string) =>
    `${yaml}  - name: tools\n    packages: [htop, strace]\n    ia-identifier: my-tools-sysext\n    base-url: https://example.org/tools/\n`;

  it('a package-based extension: its packages as lines, its own item and base URL', () => {
    const d = parseDeclarations(twoExtensions(baseYaml));
    expect(sysextLegs(d)[1]).toMatchObject({
      name: 'tools',
      tree: '',
      packages: 'htop\nstrace',
      version: '',
      identifier: 'my-tools-sysext',
      'base-url': 'https://example.org/tools/',
    });
    const w = workflows(d, { mode: 'dogfood' }).find((x) => x.file === 'sysext.yml')!;
    expect(checkWorkflow(w)).toEqual([]);
    expect(w.on.push!.paths).toEqual(['sysexts/keel-hello/**', 'declarations/**', '.github/workflows/sysext.yml']);
  });

  it('no sysext.yml without declared extensions; a leg value holding an expression is refused', () => {
    const none = parseDeclarations(baseYaml.replace(/\nsysexts:\n(?: {2}.*\n)+/, '\n'));
    expect(none.sysexts).toEqual([]);
    expect(workflows(none).map((w) => w.file)).not.toContain('sysext.yml');
    const evil: Distro = {
      ...decl,
      sysexts: [{ ...decl.sysexts[0]!, 'probe-command': 'echo ${{ secrets.IA_SECRET_KEY }}' }],
    };
    expect(() => renderWorkflow(workflows(evil).find((w) => w.file === 'sysext.yml')!)).toThrow(
      /matrix value probe-command .* contains an expression/,
    );
  });
});

describe('the model holds matrix jobs to what GitHub allows', () => {
  const wf = (j: ReturnType<typeof job>): Workflow => ({
    file: 'm.yml',
    source: 'test',
    name: 'm',
    on: { workflow_dispatch: {} },
    permissions: {},
    actions: { kind: 'local' },
    jobs: [j],
  });
  const step = (e = matrix('name')) =>
    runStep({ name: 's', run: 'true', env: { X: e }, local: { local: 'skip', reason: 'test' } });
  const base = { name: 'j', runsOn: 'x', timeoutMinutes: 1, permissions: {} };

  it('a matrix value every leg defines is fine', () => {
    expect(checkWorkflow(wf(job('j', { ...base, strategy: { include: [{ name: 'a' }] }, steps: [step()] })))).toEqual(
      [],
    );
  });

  it('refuses a value not every leg defines, a matrix read outside a matrix job or in its condition, and outputs', () => {
    const legs = { include: [{ name: 'a' }, { other: 'b' }] as Record<string, string>[] };
    expect(checkWorkflow(wf(job('j', { ...base, strategy: legs, steps: [step()] })))).toEqual([
      "m.yml: job j, step 's': reads matrix.name, which not every leg of the job's matrix defines",
    ]);
    expect(checkWorkflow(wf(job('j', { ...base, steps: [step()] })))).toHaveLength(1);
    const cond = job('j', { ...base, if: not(cancelled()), strategy: { include: [{ name: 'a' }] }, steps: [step()] });
    expect(checkWorkflow(wf({ ...cond, if: matrix('name') }))).toEqual([
      'm.yml: job j: a job condition cannot read matrix (it is decided before the legs exist)',
    ]);
    const withOutputs = job('j', {
      ...base,
      strategy: { include: [{ name: 'a' }] },
      outputs: { x: matrix('name') },
      steps: [step()],
    });
    expect(checkWorkflow(wf(withOutputs))).toEqual([
      "m.yml: job j: a matrix job has no outputs (GitHub keeps only one leg's)",
    ]);
  });
});

describe('declarations', () => {
  it('staleness.server-days (default 9) and cleanup.keep-days (default 30), validated', () => {
    expect(decl.staleness).toEqual({ 'warn-after-days': 14, 'server-days': 9 });
    expect(decl.cleanup).toEqual({ 'keep-days': 30 });
    expect(() => parseDeclarations(`${baseYaml}\ncleanup:\n  keep-days: 0\n`)).toThrow(/cleanup\.keep-days/);
    expect(() =>
      parseDeclarations(baseYaml.replace('  warn-after-days: 14\n', '  warn-after-days: 14\n  server-days: soon\n')),
    ).toThrow(/staleness\.server-days: expected number/);
  });
});
