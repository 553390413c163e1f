import type { Conclusion, JobSeed } from '../../emulators/github/workflow-runs.js';
import type { RunRecord } from '../runner.js';
import type { LocalServices } from './index.js';

const conclusion = (r: 'success' | 'failure' | 'skipped'): Conclusion => r;

/**
 * Records a finished local run as a completed Actions run of `repository` in the GitHub emulator
 * (its jobs and steps with their results, on main at the emulated branch head; the repository is
 * added to the emulator the first time), so a later `keel run watch` checks the build runs of
 * this invocation the way the watch checks GitHub's.
 */
export function recordRun(svc: Pick<LocalServices, 'runs' | 'github'>, repository: string, record: RunRecord): void {
  const state = svc.github.state;
  const repo = state.repos.get(repository.toLowerCase()) ?? state.addRepo(repository, { files: { 'README.md': '' } });
  const head = repo.refs.get(`refs/heads/${repo.defaultBranch}`);
  if (!head) throw new Error(`emulator: ${repository} has no ${repo.defaultBranch} branch`);
  const jobs: JobSeed[] = Object.values(record.jobs)
    // A matrix job's own record sums up its legs, which are recorded as jobs themselves.
    .filter((j) => j.order.length || j.result === 'skipped')
    .map((j) => ({
      name: j.name,
      conclusion: conclusion(j.result),
      steps: j.order.map((sid) => ({ name: j.steps[sid]!.name, conclusion: conclusion(j.steps[sid]!.result) })),
    }));
  svc.runs.addRun({
    repository,
    workflow: record.workflow,
    event: record.event,
    branch: 'main',
    headSha: head,
    jobs,
  });
}
