import type { Distro } from '../actions/lib/declarations.js';
import { checkout, notifyStep, type Params } from './common.js';
import { and, concat, eq, failure, github, jobResult, lit, ne, or, success, type Expr, type Value } from './expr.js';
import { job, jobOutputFor, withStepsAppended, type Job, type KeelStep } from './model.js';

/**
 * The notifications of the release workflows (issue 19): a failed build or sign job, a failed
 * boot, update test or promotion, and a promotion. They go through the notify hop (ntfy; an
 * empty NTFY_URL skips with a notice, a failed delivery is a warning), whose secrets live in the
 * release environment: a job that notifies declares it and never runs for a pull request.
 */

/** Id of the job that reports a failed job of its workflow. */
export const FAILURE_NOTIFY_JOB = 'notify';
/** Id of the step, in that job, that sends the report. */
export const FAILURE_NOTIFY_STEP = 'notify';
/** Id of the step at the end of the promote job that announces the promotion. */
export const PROMOTED_NOTIFY_STEP = 'notify-promoted';

const failed = (j: Job) => eq(jobResult(j.id), 'failure');

/** The first of `jobs` that failed, as `<id> (<name>)`; `fallback` when none did. */
export function failedJobName(jobs: Job[], fallback = 'a job'): Expr {
  return or(...jobs.map((j) => and(failed(j), lit(`${j.id} (${j.name})`))), lit(fallback));
}

export interface FailureNotifySpec {
  p: Params;
  decl: Distro;
  name: string;
  /** The jobs watched: the notification goes out when one of them failed. */
  jobs: Job[];
  /** A further condition of the job (e.g. the workflow_run gate of the watched jobs). */
  if?: Expr;
  title: Value;
  message: Value;
}

/**
 * One final job that sends one notification when a watched job failed: `failure()` (so not on a
 * cancelled run, and the job is not skipped because a need failed) and a watched job's result
 * `failure` (a skipped job is no failure), never for a pull request (a PR run must not see the
 * release environment's secrets). It needs no token permission: in a dogfood workflow the
 * checkout (to run ./actions/notify) reads the contents, a reusable one runs the released action.
 */
export function failureNotifyJob(spec: FailureNotifySpec): Job {
  const { p } = spec;
  return job(FAILURE_NOTIFY_JOB, {
    name: spec.name,
    needs: spec.jobs,
    if: and(
      ne(github('event_name'), 'pull_request'),
      ...(spec.if ? [spec.if] : []),
      failure(),
      or(...spec.jobs.map(failed)),
    ),
    runsOn: p.runsOn(),
    timeoutMinutes: 5,
    permissions: p.reusable ? {} : { contents: 'read' },
    // The ntfy topic URL and token are secrets of the release environment.
    environment: p.environment(spec.decl),
    steps: [
      !p.reusable && checkout(),
      notifyStep(FAILURE_NOTIFY_STEP, {
        name: 'Notify: the run failed',
        title: spec.title,
        message: spec.message,
        priority: 4,
        tags: 'rotating_light',
      }),
    ],
  });
}

/** build.yml: one notification naming the failed job (build or sign), the click opening the run. */
export function buildFailureNotifyJob(p: Params, decl: Distro, jobs: Job[]): Job {
  return failureNotifyJob({
    p,
    decl,
    name: 'Notify: the build failed',
    jobs,
    title: concat('Build failed: ', github('repository')),
    message: concat(
      'Job ',
      failedJobName(jobs),
      ' of ',
      github('workflow'),
      ' failed (',
      github('event_name'),
      ' on ',
      github('ref_name'),
      ', commit ',
      github('sha'),
      '); nothing new was released.',
    ),
  });
}

/** A step output of `j` by step id and output name (undefined when the job has no such step). */
function stepOutput(j: Job, stepId: string, output: string): Expr | undefined {
  const s = j.steps.find((x) => x.id === stepId);
  return s ? (s.outputs as Record<string, Expr | undefined>)[output] : undefined;
}

/** Adds (or reuses) a job output for `stepId.output`; undefined when the job has no such step. */
function exported(holder: { job: Job }, stepId: string, output: string, name: string): Expr | undefined {
  const value = stepOutput(holder.job, stepId, output);
  if (!value) return undefined;
  const r = jobOutputFor(holder.job, name, value);
  holder.job = r.job;
  return r.ref;
}

/** Step ids in smoke-boot.yml's boot job whose verdicts the failure notification reports. */
export const BOOT_STEP = 'boot';
export const UPDATE_STEP = 'update';

/**
 * What failed in smoke-boot.yml, in words: the boot (its reason), the update test (step
 * `update`, when the boot job has one), the promotion, or an earlier step of the boot job.
 * Returns the boot job with the verdicts it must export and the expression.
 */
export function bootFailureWhat(boot: Job, promote?: Job): { boot: Job; what: Expr } {
  const holder = { job: boot };
  const bootPassed = exported(holder, BOOT_STEP, 'passed', 'passed');
  const bootReason = exported(holder, BOOT_STEP, 'reason', 'boot-reason');
  if (!bootPassed || !bootReason) throw new Error(`job ${boot.id} has no step '${BOOT_STEP}' with passed and reason`);
  const updatePassed = exported(holder, UPDATE_STEP, 'passed', 'update-passed');
  const updateReason = exported(holder, UPDATE_STEP, 'reason', 'update-reason');
  const what = or(
    and(eq(bootPassed, 'false'), concat('the boot failed: ', bootReason)),
    ...(updatePassed && updateReason
      ? [and(eq(updatePassed, 'false'), concat('the update test failed: ', updateReason))]
      : []),
    ...(promote ? [and(failed(promote), lit('the promotion failed; stable did not move'))] : []),
    and(eq(bootPassed, 'true'), lit('the boot job failed after the boot passed')),
    lit('the boot job failed before a boot verdict (hand-off, signature and attestation check, or VM setup)'),
  );
  return { boot: holder.job, what };
}

/**
 * What failed in smoke-boot.yml with a variant matrix, in words. A matrix job exports no outputs
 * (GitHub keeps one leg's), so the leg and its reason are left to the run's summary.
 */
function variantFailureWhat(promote?: Job): Expr {
  return or(
    ...(promote ? [and(failed(promote), lit("a variant's promotion failed; its stable did not move"))] : []),
    lit(
      "a variant's boot or update test failed (the run's summary names the leg and the reason); no variant was promoted",
    ),
  );
}

/**
 * smoke-boot.yml: the boot job with the verdicts it exports, and the job that reports a failed
 * boot, update test (or promotion, when `promote` is given) in one notification.
 */
export function bootFailureNotify(spec: {
  p: Params;
  decl: Distro;
  boot: Job;
  promote?: Job;
  image: Expr;
  /** The boot job's own condition (the workflow_run gate): the report runs only where it ran. */
  gate?: Expr;
}): { boot: Job; notify: Job } {
  const { boot, what } = spec.boot.strategy
    ? { boot: spec.boot, what: variantFailureWhat(spec.promote) }
    : bootFailureWhat(spec.boot, spec.promote);
  const watched = spec.promote ? [boot, spec.promote] : [boot];
  const imageRef = (boot.refs as Record<string, Expr | undefined>)['image-ref'];
  const notify = failureNotifyJob({
    p: spec.p,
    decl: spec.decl,
    name: 'Notify: the boot, update test or promotion failed',
    jobs: watched,
    ...(spec.gate ? { if: spec.gate } : {}),
    title: concat('Not promoted: ', spec.image),
    message: concat(what, '. Image: ', imageRef ? or(imageRef, spec.image) : spec.image, '.'),
  });
  return { boot, notify };
}

/**
 * The promote job with a last step announcing the promotion, `stable → <digest>` and the release
 * date, only when everything before it succeeded.
 */
export function withPromotionNotice(promote: Job, spec: { image: Expr; stable: Expr; releaseDate: Expr }): Job {
  const step = promote.steps.find((s): s is KeelStep<'promote'> => s.type === 'keel' && s.hop === 'promote');
  if (!step) throw new Error(`job ${promote.id} has no promote step`);
  return withStepsAppended(promote, [
    notifyStep(PROMOTED_NOTIFY_STEP, {
      name: 'Notify: promoted',
      if: success(),
      title: concat('Promoted: ', spec.image),
      message: concat(
        spec.stable,
        ' → ',
        step.outputs.digest,
        '\nRelease date: ',
        or(spec.releaseDate, 'today (UTC)'),
        '\nTags: ',
        step.outputs.tags,
      ),
      priority: 3,
      tags: 'tada',
    }),
  ]);
}
