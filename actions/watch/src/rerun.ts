import type { Octokit } from '../../lib/github.js';
import { api } from '../../lib/github.js';
import type { Logger } from '../../lib/log.js';

/**
 * The automatic retry of a failed build, once: the newest run of the build workflow on the
 * branch is re-run (failed jobs only) when, and only when, every failed step is marked transient
 * (its name is listed in `transient-steps`, or contains `[transient]`), the run is not a pull
 * request's, it has not been re-run before (run_attempt 1), and its commit is still the branch
 * head (re-running a superseded build would cancel the newer one in the shared concurrency
 * group). The rules are a pure function so each is tested on its own.
 */
export const TRANSIENT_MARKER = '[transient]';
const FAILED = ['failure', 'cancelled', 'timed_out'];
const PR_EVENTS = ['pull_request', 'pull_request_target'];

export interface RunView {
  id: number;
  event: string;
  status: string | null;
  conclusion: string | null;
  run_attempt?: number;
  head_sha: string;
  html_url: string;
}

export interface JobView {
  name: string;
  conclusion: string | null;
  steps?: { name: string; conclusion: string | null }[];
}

export interface Decision {
  rerun: boolean;
  reason: string;
}

export function isTransientStep(name: string, listed: ReadonlySet<string>): boolean {
  return listed.has(name) || name.toLowerCase().includes(TRANSIENT_MARKER);
}

export function decideRerun(run: RunView, jobs: JobView[], branchHead: string, listed: ReadonlySet<string>): Decision {
  const no = (reason: string): Decision => ({ rerun: false, reason });
  if (run.status !== 'completed') return no(`run ${run.id} is ${run.status ?? 'not finished'}: nothing to decide yet`);
  if (!FAILED.includes(run.conclusion ?? ''))
    return no(`run ${run.id} concluded ${run.conclusion ?? 'without a conclusion'}`);
  if (PR_EVENTS.includes(run.event)) return no(`run ${run.id} is a ${run.event} run: never re-run`);
  if ((run.run_attempt ?? 1) > 1)
    return no(`run ${run.id} was already re-run (attempt ${run.run_attempt}): never twice`);
  if (run.head_sha !== branchHead) {
    return no(
      `run ${run.id} built ${run.head_sha.slice(0, 12)}, but the branch head is now ${branchHead.slice(0, 12)}: superseded, not re-run`,
    );
  }
  const failedJobs = jobs.filter((j) => FAILED.includes(j.conclusion ?? ''));
  if (!failedJobs.length) return no(`run ${run.id} failed but lists no failed job`);
  const failedSteps: string[] = [];
  for (const j of failedJobs) {
    const steps = (j.steps ?? []).filter((s) => FAILED.includes(s.conclusion ?? ''));
    if (!steps.length) return no(`job '${j.name}' of run ${run.id} failed outside any step: not known to be transient`);
    for (const s of steps) {
      if (!isTransientStep(s.name, listed))
        return no(`run ${run.id} failed in '${j.name}' › '${s.name}', which is not marked transient`);
      failedSteps.push(`'${j.name}' › '${s.name}'`);
    }
  }
  return {
    rerun: true,
    reason: `run ${run.id} failed only in transient steps (${failedSteps.join(', ')}): re-running its failed jobs once`,
  };
}

export interface BuildCheck {
  workflow: string;
  branch: string;
  run?: { id: number; url: string; conclusion: string | null; attempt: number; event: string };
  decision: Decision;
  /** True when the re-run was requested. */
  rerun: boolean;
}

/** Looks at the newest non-pull-request run of `workflow` on `branch` and re-runs it when decideRerun says so. */
export async function checkBuild(
  octokit: Octokit,
  req: { owner: string; repo: string; workflow: string; branch?: string; transientSteps: string[] },
  log: Logger,
): Promise<BuildCheck> {
  const { owner, repo } = req;
  const branch =
    req.branch ||
    (await api(`GET /repos/${owner}/${repo}`, () => octokit.rest.repos.get({ owner, repo }))).data.default_branch;
  const runs = await api(`list runs of ${req.workflow}`, () =>
    octokit.rest.actions.listWorkflowRuns({ owner, repo, workflow_id: req.workflow, branch, per_page: 20 }),
  );
  const run = runs.data.workflow_runs.find((r) => !PR_EVENTS.includes(r.event));
  if (!run) {
    return {
      workflow: req.workflow,
      branch,
      decision: { rerun: false, reason: `no run of ${req.workflow} on ${branch} outside pull requests` },
      rerun: false,
    };
  }
  const view = {
    id: run.id,
    url: run.html_url,
    conclusion: run.conclusion,
    attempt: run.run_attempt ?? 1,
    event: run.event,
  };
  const head = await api(`GET ref heads/${branch}`, () =>
    octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` }),
  );
  const jobs = await api(`list jobs of run ${run.id}`, () =>
    octokit.rest.actions.listJobsForWorkflowRun({ owner, repo, run_id: run.id, filter: 'latest', per_page: 100 }),
  );
  const decision = decideRerun(run, jobs.data.jobs, head.data.object.sha, new Set(req.transientSteps));
  log.info(`build: ${decision.reason}`);
  if (!decision.rerun) return { workflow: req.workflow, branch, run: view, decision, rerun: false };
  await api(`re-run failed jobs of run ${run.id}`, () =>
    octokit.rest.actions.reRunWorkflowFailedJobs({ owner, repo, run_id: run.id }),
  );
  return { workflow: req.workflow, branch, run: view, decision, rerun: true };
}
