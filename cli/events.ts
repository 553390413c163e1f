import type { Distro } from '../actions/lib/declarations.js';
import type { Workflow } from '../workflows-src/model.js';
import type { EventName, RunRecord } from './runner.js';

/**
 * The event (and its payload) `keel run` gives a workflow: `--event` when given; a smoke-boot
 * after a successful build of this invocation gets that build's workflow_run (as on GitHub);
 * otherwise push for build, dispatch for the rest. A pull_request is pull request `pr` (default
 * 1) of this repository: `labeled` with the build label for a workflow listening to labels
 * (build), `closed` for one listening only to closed (cleanup).
 */
export function eventFor(
  wf: Workflow,
  given: string | undefined,
  ctx: { runs: RunRecord[]; decl: Distro; repository: string; pr?: number },
): { event: EventName; payload: Record<string, unknown> } {
  const name = wf.file.replace(/\.yml$/, '');
  const lastBuild = [...ctx.runs].reverse().find((r) => r.workflow === 'build.yml' && r.ok);
  if (name === 'smoke-boot' && lastBuild && !given) {
    const workflowRun = {
      id: lastBuild.id,
      conclusion: 'success',
      event: lastBuild.event,
      head_branch: 'main',
      head_repository: { full_name: ctx.repository },
    };
    return { event: 'workflow_run', payload: { workflow_run: workflowRun } };
  }
  const event = (given ?? (name === 'build' ? 'push' : 'workflow_dispatch')) as EventName;
  if (event !== 'pull_request') return { event, payload: {} };
  const number = ctx.pr ?? 1;
  const label = ctx.decl.tags['pr-label'];
  const types = wf.on.pull_request?.types ?? [];
  const closing = types.includes('closed') && !types.includes('labeled');
  const pullRequest = {
    number,
    state: closing ? 'closed' : 'open',
    labels: [{ name: label }],
    head: { repo: { full_name: ctx.repository } },
  };
  return closing
    ? { event, payload: { action: 'closed', number, pull_request: pullRequest } }
    : { event, payload: { action: 'labeled', label: { name: label }, number, pull_request: pullRequest } };
}
