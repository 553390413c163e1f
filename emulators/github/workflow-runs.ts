import {
  apiError,
  pageOf,
  requiresAuth,
  type EmulatedAnswer,
  type EmulatedRequest,
  type GithubExtension,
} from './extension.js';

/**
 * The GitHub Actions run endpoints a staleness watch uses: list the runs of a workflow (by file
 * name or id; branch, event and status filters; newest first), get a run, list its jobs with
 * their steps and conclusions (latest attempt, or all), and re-run its failed jobs (a new
 * attempt: run_attempt + 1, the run and its failed jobs queued again, successful jobs carried
 * over, as GitHub does). Runs are seeded by the test, which also finishes attempts.
 */
export type Conclusion = 'success' | 'failure' | 'cancelled' | 'timed_out' | 'skipped' | 'neutral';
export type Status = 'queued' | 'in_progress' | 'completed';

export interface StepSeed {
  name: string;
  conclusion: Conclusion | null;
}

export interface JobSeed {
  name: string;
  conclusion: Conclusion | null;
  steps: StepSeed[];
}

export interface RunSeed {
  /** 'owner/name' */
  repository: string;
  /** Workflow file name, e.g. build.yml. */
  workflow: string;
  event: string;
  branch: string;
  headSha: string;
  /** Jobs of the first attempt; the run's conclusion follows from them. */
  jobs: JobSeed[];
  /** Default: completed. */
  status?: Status;
  createdAt?: string;
}

interface Job extends JobSeed {
  id: number;
  attempt: number;
  status: Status;
}

export interface EmulatedRun {
  id: number;
  repository: string;
  workflow: string;
  workflowId: number;
  event: string;
  branch: string;
  headSha: string;
  runNumber: number;
  attempt: number;
  status: Status;
  createdAt: string;
  jobs: Job[];
}

export interface WorkflowRunsEmulator {
  extension: GithubExtension;
  runs: EmulatedRun[];
  /** Re-run requests accepted: run id and the attempt they started. */
  reruns: { runId: number; attempt: number }[];
  addRun(seed: RunSeed): EmulatedRun;
  /** Ends the run's current attempt with these job conclusions (by job name; others keep theirs). */
  finishAttempt(runId: number, conclusions: Record<string, Conclusion>): void;
}

const FAILED: (Conclusion | null)[] = ['failure', 'cancelled', 'timed_out'];

/** The run's conclusion from its current attempt's jobs (GitHub: any failure fails the run). */
function conclusionOf(run: EmulatedRun): Conclusion | null {
  if (run.status !== 'completed') return null;
  const jobs = run.jobs.filter((j) => j.attempt === run.attempt);
  for (const c of ['failure', 'timed_out', 'cancelled'] as const) if (jobs.some((j) => j.conclusion === c)) return c;
  return 'success';
}

export function workflowRunsEmulator(): WorkflowRunsEmulator {
  const runs: EmulatedRun[] = [];
  const reruns: { runId: number; attempt: number }[] = [];
  const workflowIds = new Map<string, number>();
  let nextJob = 7_000_001;
  const at = (iso?: string) => iso ?? new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');

  const runJson = (req: EmulatedRequest, r: EmulatedRun) => {
    const url = `${req.api}/repos/${r.repository}/actions/runs/${r.id}`;
    return {
      id: r.id,
      name: r.workflow.replace(/\.ya?ml$/, ''),
      node_id: `WFR_${Buffer.from(String(r.id)).toString('base64url')}`,
      head_branch: r.branch,
      head_sha: r.headSha,
      path: `.github/workflows/${r.workflow}`,
      display_title: `${r.workflow} on ${r.branch}`,
      run_number: r.runNumber,
      event: r.event,
      status: r.status,
      conclusion: conclusionOf(r),
      workflow_id: r.workflowId,
      url,
      html_url: `${req.web}/${r.repository}/actions/runs/${r.id}`,
      jobs_url: `${url}/jobs`,
      logs_url: `${url}/logs`,
      rerun_url: `${url}/rerun`,
      workflow_url: `${req.api}/repos/${r.repository}/actions/workflows/${r.workflowId}`,
      created_at: r.createdAt,
      updated_at: r.createdAt,
      run_attempt: r.attempt,
      run_started_at: r.createdAt,
      repository: { full_name: r.repository, name: r.repository.split('/')[1] },
    };
  };

  const jobJson = (req: EmulatedRequest, r: EmulatedRun, j: Job) => ({
    id: j.id,
    run_id: r.id,
    run_attempt: j.attempt,
    node_id: `CR_${Buffer.from(String(j.id)).toString('base64url')}`,
    head_sha: r.headSha,
    head_branch: r.branch,
    url: `${req.api}/repos/${r.repository}/actions/jobs/${j.id}`,
    html_url: `${req.web}/${r.repository}/actions/runs/${r.id}/job/${j.id}`,
    status: j.status,
    conclusion: j.status === 'completed' ? j.conclusion : null,
    created_at: r.createdAt,
    started_at: r.createdAt,
    completed_at: j.status === 'completed' ? r.createdAt : null,
    name: j.name,
    workflow_name: r.workflow.replace(/\.ya?ml$/, ''),
    labels: ['ubuntu-24.04'],
    runner_name: j.status === 'queued' ? null : 'GitHub Actions 1',
    steps: j.steps.map((s, i) => ({
      name: s.name,
      status: j.status === 'completed' ? 'completed' : 'queued',
      conclusion: j.status === 'completed' ? s.conclusion : null,
      number: i + 1,
      started_at: r.createdAt,
      completed_at: j.status === 'completed' ? r.createdAt : null,
    })),
  });

  const route = async (req: EmulatedRequest, m: RegExpExecArray): Promise<EmulatedAnswer> => {
    const repository = `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`.toLowerCase();
    const rest = m[3]!;
    let x: RegExpExecArray | null;
    const mine = runs.filter((r) => r.repository.toLowerCase() === repository);
    if (req.method === 'GET' && (x = /^workflows\/([^/]+)\/runs$/.exec(rest))) {
      const wf = decodeURIComponent(x[1]!);
      const q = req.query;
      const list = mine
        .filter((r) => r.workflow === wf || String(r.workflowId) === wf)
        .filter((r) => !q.get('branch') || r.branch === q.get('branch'))
        .filter((r) => !q.get('event') || r.event === q.get('event'))
        .filter((r) => !q.get('status') || r.status === q.get('status') || conclusionOf(r) === q.get('status'))
        .sort((a, b) => b.id - a.id);
      const page = pageOf(req, list, `${req.api}/repos/${repository}/actions/workflows/${x[1]}/runs`);
      return {
        status: 200,
        body: { total_count: list.length, workflow_runs: page.items.map((r) => runJson(req, r)) },
        headers: page.headers,
      };
    }
    const r = /^runs\/(\d+)(\/.*)?$/.exec(rest);
    const run = r ? mine.find((c) => c.id === Number(r[1])) : undefined;
    if (!r || !run) return apiError(404, 'Not Found');
    const sub = r[2] ?? '';
    if (req.method === 'GET' && sub === '') return { status: 200, body: runJson(req, run) };
    if (req.method === 'GET' && sub === '/jobs') {
      const all = req.query.get('filter') === 'all';
      const jobs = run.jobs.filter((j) => all || j.attempt === run.attempt);
      const page = pageOf(req, jobs, `${req.api}/repos/${repository}/actions/runs/${run.id}/jobs`);
      return {
        status: 200,
        body: { total_count: jobs.length, jobs: page.items.map((j) => jobJson(req, run, j)) },
        headers: page.headers,
      };
    }
    if (req.method === 'POST' && sub === '/rerun-failed-jobs') {
      if (!req.authorized) return requiresAuth();
      if (run.status !== 'completed') return apiError(403, 'This workflow run is not completed');
      const current = run.jobs.filter((j) => j.attempt === run.attempt);
      if (!current.some((j) => FAILED.includes(j.conclusion)))
        return apiError(403, 'This workflow run has no failed jobs');
      run.attempt++;
      run.status = 'queued';
      for (const j of current) {
        const again = FAILED.includes(j.conclusion);
        run.jobs.push({
          ...j,
          id: nextJob++,
          attempt: run.attempt,
          status: again ? 'queued' : 'completed',
          steps: j.steps.map((s) => ({ ...s })),
        });
      }
      reruns.push({ runId: run.id, attempt: run.attempt });
      return { status: 201, body: {} };
    }
    return apiError(404, 'Not Found');
  };

  const extension: GithubExtension = (req) => {
    const m = /^\/repos\/([^/]+)\/([^/]+)\/actions\/(.+)$/.exec(req.path);
    return m ? route(req, m) : undefined;
  };

  return {
    extension,
    runs,
    reruns,
    addRun(seed) {
      if (!workflowIds.has(seed.workflow)) workflowIds.set(seed.workflow, 50_000 + workflowIds.size);
      const id = 900_000_000 + runs.length + 1;
      const run: EmulatedRun = {
        id,
        repository: seed.repository,
        workflow: seed.workflow,
        workflowId: workflowIds.get(seed.workflow)!,
        event: seed.event,
        branch: seed.branch,
        headSha: seed.headSha,
        runNumber: runs.filter((r) => r.workflow === seed.workflow).length + 1,
        attempt: 1,
        status: seed.status ?? 'completed',
        createdAt: at(seed.createdAt),
        jobs: seed.jobs.map((j) => ({
          ...j,
          id: nextJob++,
          attempt: 1,
          status: seed.status ?? 'completed',
          steps: j.steps.map((s) => ({ ...s })),
        })),
      };
      runs.push(run);
      return run;
    },
    finishAttempt(runId, conclusions) {
      const run = runs.find((r) => r.id === runId);
      if (!run) throw new Error(`emulator: no run ${runId}`);
      for (const j of run.jobs.filter((jj) => jj.attempt === run.attempt)) {
        j.status = 'completed';
        const c = conclusions[j.name];
        if (!c) continue;
        j.conclusion = c;
        // A job that now succeeds ran every step successfully.
        if (c === 'success') j.steps = j.steps.map((s) => ({ ...s, conclusion: 'success' }));
      }
      run.status = 'completed';
    },
  };
}
