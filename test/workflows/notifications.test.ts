// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import type { Distro } from '../../actions/lib/declarations.js';
import { NOTIFY_SECRETS, Params } from '../../workflows-src/common.js';
import { evaluateCondition, evaluateString, type EvalContext, type Expr } from '../../workflows-src/expr.js';
import { loadRepoDeclarations, workflows, type Workflow } from '../../workflows-src/index.js';
import { job, type Job, type KeelStep } from '../../workflows-src/model.js';
import {
  bootFailureWhat,
  buildFailureNotifyJob,
  FAILURE_NOTIFY_JOB,
  FAILURE_NOTIFY_STEP,
  PROMOTED_NOTIFY_STEP,
} from '../../workflows-src/notify.js';
import { runnableOnPullRequest, secretsOf, WORKFLOW_RUN_CONDITIONS } from './checks.js';
import { keelHop, needsOf, readWorkflow, type YJob } from './helpers.js';

/**
 * Issue 19's notifications in the generated workflows: build.yml reports a failed build or sign
 * job, smoke-boot.yml a failed boot, update test or promotion, and announces a promotion. Each
 * through the notify hop, in the release environment (the ntfy secrets live there), never for a
 * pull request, with no token permission of its own. The conditions and messages are evaluated
 * with the reference semantics (evaluate(), what `keel run` does), the files read as GitHub does.
 */
const decl = loadRepoDeclarations();
const models = workflows(decl);
const model = (file: string) => models.find((w) => w.file === file)!;
const jobOf = (wf: Workflow, id: string) => wf.jobs.find((j) => j.id === id)!;
const notifySteps = (j: Job) => j.steps.filter((s): s is KeelStep<'notify'> => s.type === 'keel' && s.hop === 'notify');

/** GitHub's view of a finished run: the event, and each needed job's result. */
function finished(event: string, results: Record<string, string>, outputs: Record<string, string> = {}): EvalContext {
  const failedNeed = Object.values(results).includes('failure');
  const cancelledNeed = Object.values(results).includes('cancelled');
  return {
    github: (p) => (p === 'event_name' ? event : p === 'workflow' ? 'Keel build' : `<${p}>`),
    jobResult: (j) => results[j],
    jobOutput: (j, o) => outputs[`${j}.${o}`],
    input: () => undefined,
    secret: () => '',
    status: cancelledNeed ? 'cancelled' : failedNeed ? 'failure' : 'success',
  };
}

const SIGN_FAILED = { build: 'success', sign: 'failure' };
const BUILD_FAILED = { build: 'failure', sign: 'skipped' };

describe.each(['build.yml', 'reusable-build.yml'])('%s: the failure notification', (file) => {
  const wf = model(file);
  const notify = jobOf(wf, FAILURE_NOTIFY_JOB);
  const y = readWorkflow(file).jobs[FAILURE_NOTIFY_JOB] as YJob;
  const reusable = file.startsWith('reusable-');

  it('is the last job, needs build and sign, and sends exactly one notification through ntfy', () => {
    expect(wf.jobs.at(-1)!.id).toBe(FAILURE_NOTIFY_JOB);
    expect(needsOf(y)).toEqual(['build', 'sign']);
    expect(y.steps.map((s) => keelHop(s.uses)).filter(Boolean)).toEqual(['notify']);
    const step = y.steps.find((s) => s.id === FAILURE_NOTIFY_STEP)!;
    expect(step.with).toMatchObject({
      url: `\${{ secrets.${NOTIFY_SECRETS.url} }}`,
      token: `\${{ secrets.${NOTIFY_SECRETS.token} }}`,
      click: '${{ github.server_url }}/${{ github.repository }}/actions/runs/${{ github.run_id }}',
    });
    expect(y.if).toContain('failure()');
  });

  it('runs when build or sign failed, never when both passed, on a cancelled run, or for a pull request', () => {
    const runs = (event: string, results: Record<string, string>) =>
      evaluateCondition(notify.if!, finished(event, results));
    for (const event of ['push', 'schedule', 'workflow_dispatch']) {
      expect([event, runs(event, BUILD_FAILED), runs(event, SIGN_FAILED)]).toEqual([event, true, true]);
      expect(runs(event, { build: 'success', sign: 'success' })).toBe(false);
      expect(runs(event, { build: 'cancelled', sign: 'skipped' })).toBe(false);
      expect(runs(event, { build: 'skipped', sign: 'skipped' })).toBe(false);
    }
    expect(runs('pull_request', BUILD_FAILED)).toBe(false);
    expect(runnableOnPullRequest(wf, notify)).toBe(false);
  });

  it('names the failed job in the message and links the run', () => {
    const message = notifySteps(notify)[0]!.with.message!;
    const text = (results: Record<string, string>) => evaluateString(message, finished('push', results));
    expect(text(BUILD_FAILED)).toMatch(/^Job build \(Build, validate, rechunk, push\) of Keel build failed \(push on/);
    expect(text(SIGN_FAILED)).toMatch(/^Job sign \(Sign the pushed digest \(release key\)\) of Keel build failed/);
  });

  it('declares the release environment for the ntfy secrets, and no token permission beyond a checkout', () => {
    expect(secretsOf(notify)).toEqual(new Set([NOTIFY_SECRETS.url, NOTIFY_SECRETS.token]));
    expect(y.environment).toBe(reusable ? '${{ inputs.environment }}' : decl.environment);
    // A reusable workflow runs the released action: no checkout, no permission at all.
    expect(y.permissions).toEqual(reusable ? {} : { contents: 'read' });
  });

  it('a reusable workflow takes NTFY_URL and NTFY_TOKEN as optional secrets of the call', () => {
    const call = readWorkflow(file).on.workflow_call as { secrets: Record<string, { required: boolean }> } | undefined;
    expect(Boolean(call)).toBe(reusable);
    if (!call) return;
    const secrets = call.secrets;
    expect(secrets[NOTIFY_SECRETS.url]).toMatchObject({ required: false });
    expect(secrets[NOTIFY_SECRETS.token]).toMatchObject({ required: false });
  });
});

describe('the failure job of any watched jobs', () => {
  it('a job result other than failure is no failure (skipped, cancelled), whatever failure() says', () => {
    const a = job('a', { name: 'A', runsOn: 'x', timeoutMinutes: 1, permissions: {}, steps: [] });
    const b = job('b', { name: 'B', runsOn: 'x', timeoutMinutes: 1, permissions: {}, steps: [] });
    const j = buildFailureNotifyJob(new Params('dogfood'), decl as Distro, [a, b]);
    // keel run decides failure() from "a needed job did not succeed": a skipped need must not count.
    expect(evaluateCondition(j.if!, { ...finished('push', { a: 'success', b: 'skipped' }), status: 'failure' })).toBe(
      false,
    );
    expect(evaluateCondition(j.if!, finished('push', { a: 'success', b: 'failure' }))).toBe(true);
  });
});

describe.each(['smoke-boot.yml', 'reusable-smoke-boot.yml'])('%s: notifications', (file) => {
  const wf = model(file);
  const y = readWorkflow(file);
  const reusable = file.startsWith('reusable-');
  const promote = jobOf(wf, 'promote');
  const notify = jobOf(wf, FAILURE_NOTIFY_JOB);

  it('the promote job announces stable → digest with the release date, as its last step, only on success', () => {
    const steps = y.jobs.promote!.steps;
    const last = steps.at(-1)!;
    expect(last.id).toBe(PROMOTED_NOTIFY_STEP);
    expect(keelHop(last.uses)).toBe('notify');
    expect(last.if).toBe('success()');
    expect(promote.steps.at(-1)).toMatchObject({ id: PROMOTED_NOTIFY_STEP, if: { kind: 'status', fn: 'success' } });
    expect(steps.findIndex((s) => s.id === 'promote')).toBeLessThan(steps.length - 1);
    const message = notifySteps(promote).at(-1)!.with.message!;
    const ctx: EvalContext = {
      stepOutput: (s, o) =>
        (({ 'promote.digest': `sha256:${'ab'.repeat(32)}`, 'promote.tags': 'stable' }) as Record<string, string>)[
          `${s}.${o}`
        ],
      jobOutput: (j, o) => (j === 'boot' && o === 'release-date' ? '20261204' : undefined),
      input: (n) => (n === 'stable-tag' ? 'stable' : undefined),
    };
    expect(evaluateString(message, ctx)).toMatch(/^stable → sha256:(ab){32}\nRelease date: 20261204\n/);
    expect(y.jobs.promote!.environment).toBe(reusable ? '${{ inputs.environment }}' : decl.environment);
  });

  it('one failure job: needs boot and promote, gated like the boot job, never for a pull request', () => {
    expect(y.jobs[FAILURE_NOTIFY_JOB]).toBeDefined();
    expect(needsOf(y.jobs[FAILURE_NOTIFY_JOB]!)).toEqual(['boot', 'promote']);
    for (const c of WORKFLOW_RUN_CONDITIONS) expect(y.jobs[FAILURE_NOTIFY_JOB]!.if).toContain(c);
    expect(runnableOnPullRequest(wf, notify)).toBe(false);
    expect(y.jobs[FAILURE_NOTIFY_JOB]!.permissions).toEqual(reusable ? {} : { contents: 'read' });
    expect(y.jobs[FAILURE_NOTIFY_JOB]!.environment).toBe(reusable ? '${{ inputs.environment }}' : decl.environment);
    const runs = (event: string, results: Record<string, string>, payload: Record<string, string> = {}) =>
      evaluateCondition(notify.if!, {
        ...finished(event, results),
        github: (p) => (p === 'event_name' ? event : (payload[p] ?? '')),
      });
    const goodRun = {
      'event.workflow_run.conclusion': 'success',
      'event.workflow_run.event': 'push',
      'event.workflow_run.head_repository.full_name': 'o/r',
      repository: 'o/r',
    };
    expect(runs('workflow_run', { boot: 'failure', promote: 'skipped' }, goodRun)).toBe(true);
    expect(runs('workflow_run', { boot: 'success', promote: 'failure' }, goodRun)).toBe(true);
    expect(runs('workflow_dispatch', { boot: 'failure', promote: 'skipped' })).toBe(true);
    expect(runs('workflow_run', { boot: 'success', promote: 'success' }, goodRun)).toBe(false);
    expect(runs('workflow_run', { boot: 'success', promote: 'skipped' }, goodRun)).toBe(false);
    expect(runs('pull_request', { boot: 'failure', promote: 'skipped' })).toBe(false);
    // A fork's run: the boot job never ran, and neither does its report.
    const fork = { ...goodRun, 'event.workflow_run.head_repository.full_name': 'fork/r' };
    expect(runs('workflow_run', { boot: 'failure', promote: 'skipped' }, fork)).toBe(false);
  });

  it('says which failed: the boot (its reason), the promotion, or a step before the verdict', () => {
    const message = notifySteps(notify)[0]!.with.message!;
    const say = (results: Record<string, string>, outputs: Record<string, string>) =>
      evaluateString(message, { ...finished('workflow_run', results, outputs), input: () => 'ghcr.io/o/os' });
    const ref = `ghcr.io/o/os@sha256:${'cd'.repeat(32)}`;
    expect(
      say(
        { boot: 'failure', promote: 'skipped' },
        { 'boot.passed': 'false', 'boot.boot-reason': 'emergency mode', 'boot.image-ref': ref },
      ),
    ).toBe(`the boot failed: emergency mode. Image: ${ref}.`);
    expect(say({ boot: 'success', promote: 'failure' }, { 'boot.passed': 'true', 'boot.image-ref': ref })).toBe(
      `the promotion failed; stable did not move. Image: ${ref}.`,
    );
    expect(say({ boot: 'failure', promote: 'skipped' }, {})).toMatch(/^the boot job failed before a boot verdict/);
    const y2 = y.jobs.boot!.outputs!;
    expect(y2['boot-reason']).toBe('${{ steps.boot.outputs.reason }}');
  });
});

describe('the update test (step update in the boot job) in the failure message', () => {
  const boot = jobOf(model('smoke-boot.yml'), 'boot');
  const bootStep = boot.steps.find((s): s is KeelStep<'smoke-boot'> => s.id === 'boot')!;
  // The generated boot job has the update step, and its verdict already as the output `updated`.
  const update = boot.steps.find((s): s is KeelStep<'update-test'> => s.id === 'update')!;
  const withUpdate: Job = boot;

  it('exports its verdict from the boot job and reports its reason once the step exists', () => {
    const { boot: exported, what } = bootFailureWhat(withUpdate);
    expect(exported.outputs).toMatchObject({
      updated: update.outputs.passed,
      'update-reason': update.outputs.reason,
      'boot-reason': bootStep.outputs.reason,
    });
    expect(Object.keys(exported.outputs)).not.toContain('update-passed');
    const say = (o: Record<string, string>) =>
      evaluateString(what, { jobOutput: (j, name) => (j === 'boot' ? o[name] : undefined) });
    expect(say({ passed: 'true', updated: 'false', 'update-reason': '/var data lost' })).toBe(
      'the update test failed: /var data lost',
    );
    expect(say({ passed: 'false', 'boot-reason': 'kernel panic' })).toBe('the boot failed: kernel panic');
    expect(say({ passed: 'true', updated: 'true' })).toBe('the boot job failed after the boot passed');
  });

  it('reuses an output the boot job already has for the same step output (no duplicate)', () => {
    const already = { ...withUpdate, outputs: { ...withUpdate.outputs, verdict: update.outputs.passed } } as Job;
    const { boot: exported } = bootFailureWhat(already);
    expect(Object.keys(exported.outputs)).toContain('verdict');
    expect(Object.keys(exported.outputs)).not.toContain('update-passed');
  });

  it('a boot job without a boot step is a generator error, not a silent report', () => {
    const bare = { ...boot, steps: boot.steps.filter((s) => s.id !== 'boot') };
    expect(() => bootFailureWhat(bare as Job)).toThrow(/no step 'boot'/);
  });
});

/** The expressions above are Exprs the YAML is rendered from: one spot check that they agree. */
describe('rendered', () => {
  it('build.yml names the jobs in the rendered message', () => {
    const msg = String(readWorkflow('build.yml').jobs.notify!.steps.at(-1)!.with!.message);
    expect(msg).toContain("needs.build.result == 'failure' && 'build (Build, validate, rechunk, push)'");
    const e: Expr = notifySteps(jobOf(model('build.yml'), 'notify'))[0]!.with.message!;
    expect(e.kind).toBe('concat');
  });
});
