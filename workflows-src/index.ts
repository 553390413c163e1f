import path from 'node:path';
import { loadDeclarations, type Distro } from '../actions/lib/declarations.js';
import { repoRoot } from './action-specs.js';
import type { GenerateOptions, Mode } from './common.js';
import { checkWorkflow, type Workflow } from './model.js';
import { buildDiskWorkflow } from './workflows/build-disk.js';
import { buildWorkflow } from './workflows/build.js';
import { cleanupWorkflow } from './workflows/cleanup.js';
import { rollbackWorkflow } from './workflows/rollback.js';
import { smokeBootWorkflow } from './workflows/smoke-boot.js';
import { sysextWorkflow } from './workflows/sysext.js';
import { watchWorkflow } from './workflows/watch.js';

/**
 * The workflow models, as objects. `workflows(decl)` is what build.ts renders into
 * .github/workflows/ and what a local runner walks:
 *
 *   for (const wf of workflows(decl, { mode: 'dogfood' }))
 *     for (const job of wf.jobs)            // in order; job.needs lists earlier job ids
 *       for (const step of job.steps)       // step.type: 'keel' | 'action' | 'run'
 *         step.type === 'keel'  → run actions/<step.hop> with step.with (structured Expr values)
 *         otherwise             → do what step.local says (never parse step.run)
 *
 * Expressions (`Expr`, expr.ts) are data; `evaluate(expr, ctx)` is their reference semantics.
 */
export type {
  Workflow,
  Job,
  Step,
  KeelStep,
  AnyKeelStep,
  ActionStep,
  RunStep,
  LocalHint,
  Triggers,
  Permissions,
} from './model.js';
/** The name the local runner uses for a workflow object. */
export type { Workflow as WorkflowModel } from './model.js';
export type { Expr, EvalContext, TemplateVars } from './expr.js';
export { evaluate, evaluateCondition, evaluateString, exprText, valueText } from './expr.js';
export { checkWorkflow, keelHops, stepExprs } from './model.js';
export { renderWorkflow } from './render.js';
export { KEEL_ACTIONS, type KeelActionName, type KeelInputs, type KeelOutputs } from './actions.generated.js';
export type { GenerateOptions, Mode } from './common.js';
export { KEEL_RELEASE_FILE, loadKeelRelease, type KeelRelease } from './pins.js';

export const DECLARATIONS = 'declarations/distro.yaml';

export function loadRepoDeclarations(root = repoRoot): Distro {
  return loadDeclarations(path.join(root, DECLARATIONS));
}

export interface WorkflowsOptions extends GenerateOptions {
  /** Only the dogfood or only the reusable workflows (default: both). */
  mode?: Mode;
}

/**
 * Every generated workflow: dogfood build, smoke-boot, build-disk, then the operations (rollback,
 * cleanup, watch, and sysext when extensions are declared), then the reusable versions (sysext
 * has none: its matrix is the declarations' list).
 */
export function workflows(decl: Distro = loadRepoDeclarations(), opts: WorkflowsOptions = {}): Workflow[] {
  const modes: Mode[] = opts.mode ? [opts.mode] : ['dogfood', 'reusable'];
  const out: Workflow[] = [];
  for (const mode of modes) {
    out.push(buildWorkflow(decl, mode, opts), smokeBootWorkflow(decl, mode, opts), buildDiskWorkflow(decl, mode, opts));
    out.push(rollbackWorkflow(decl, mode, opts), cleanupWorkflow(decl, mode, opts), watchWorkflow(decl, mode, opts));
    if (mode === 'dogfood' && decl.sysexts.length) out.push(sysextWorkflow(decl, opts));
  }
  for (const wf of out) {
    const problems = checkWorkflow(wf);
    if (problems.length) throw new Error(`workflow model is unsound:\n${problems.join('\n')}`);
  }
  return out;
}

/** One workflow by file name (e.g. 'build.yml'). */
export function workflowByFile(file: string, decl: Distro = loadRepoDeclarations()): Workflow {
  const wf = workflows(decl).find((w) => w.file === file);
  if (!wf) throw new Error(`no generated workflow ${file}`);
  return wf;
}
