import type { Expr } from '../../workflows-src/expr.js';
import type { AnyKeelStep, Job, Step, Workflow } from '../../workflows-src/model.js';

/**
 * A generated workflow for `keel run` tests of its wiring: every Keel hop not in `keep` becomes a
 * step that only sets outputs (`outputsOf` the hop's step, evaluated as the runner evaluates any
 * expression), with its id and condition kept; host-tool installs are skipped. The hops
 * themselves are tested on their own and in the demo.
 */
export function standInHops(
  wf: Workflow,
  outputsOf: (step: AnyKeelStep) => Record<string, Expr>,
  keep: string[] = [],
): Workflow {
  const swap = (s: Step): Step => {
    if (s.type === 'run' && s.local.local === 'apt-install') return { ...s, local: { local: 'skip', reason: 'test' } };
    if (s.type !== 'keel' || keep.includes(s.hop)) return s;
    return {
      type: 'run',
      ...(s.id ? { id: s.id } : {}),
      name: s.name,
      ...(s.if ? { if: s.if } : {}),
      run: 'true',
      local: { local: 'expand-templates', vars: {}, templates: outputsOf(s) },
      outputs: s.outputs,
    } as Step;
  };
  const jobs: Job[] = wf.jobs.map((j) => ({ ...j, steps: j.steps.map(swap) }));
  return { ...wf, jobs };
}
