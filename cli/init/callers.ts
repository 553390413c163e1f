import { Document, isMap, isScalar, type Scalar } from 'yaml';
import type { Distro } from '../../actions/lib/declarations.js';
import { UserError } from '../../actions/lib/errors.js';
import { walkExpr } from '../../workflows-src/expr.js';
import { exprText, stepExprs, workflows, type Workflow } from '../../workflows-src/index.js';
import type { Permissions } from '../../workflows-src/model.js';
import { KEEL_REPO, type KeelRelease } from '../../workflows-src/pins.js';
import { workflowPlain } from '../../workflows-src/render.js';

/**
 * The caller workflows `keel init` writes: one job per workflow that calls Keel's reusable
 * workflow (`uses: keel-project/keel/.github/workflows/reusable-<name>.yml@<commit> # <version>`),
 * derived from the same generators as Keel's own workflows, so they stay consistent with them:
 * - triggers: those of the dogfood workflow for the same declarations (push and the labelled
 *   pull_request for build, workflow_run of the build by its exact name for smoke-boot, schedule
 *   and dispatch), minus Keel's own paths (dist/, actions/);
 * - the job's `if:`: the dogfood entry job's (the pull-request label gate, the workflow_run
 *   guards), so a run that would be skipped does not even start the called workflow;
 * - permissions: exactly the union of what the called jobs ask for (a caller can only narrow);
 * - `with:`: the inputs the reusable workflow requires, from the declarations, the environment
 *   of its secret-reading jobs, and the dispatch inputs passed through; everything else the
 *   reusable workflow takes from its defaults and the declarations file;
 * - no `secrets:`: the called jobs that read secrets run in the caller's environment and read
 *   them there (a calling job cannot read environment secrets to pass them anyway).
 */
export const CALLERS = ['build', 'smoke-boot', 'build-disk'] as const;
export type CallerName = (typeof CALLERS)[number];

export interface CallerOptions {
  /** The Keel commit whose reusable workflows the callers run. */
  commit: string;
  release: KeelRelease;
}

export interface Caller {
  file: string;
  name: string;
  text: string;
  /** Secrets the called jobs read (other than GITHUB_TOKEN). */
  secrets: string[];
  permissions: Permissions;
}

/**
 * Values of the reusable inputs a caller passes from the declarations: only those the reusable
 * workflows require. Every other setting is read from the declarations file at run time (the
 * settings hop); repeating it in with: would override the file with a copy that goes stale.
 */
const FROM_DECLARATIONS: Record<string, (d: Distro) => string | number | boolean | undefined> = {
  image: (d) => `${d.image.registry}/${d.image.name}`,
  'public-key': (d) => d.signing?.['public-key'],
  environment: (d) => d.environment,
};

/** Inputs passed even when equal to the default: what a reader of the caller must see. */
const SHOWN = ['environment'];

/** The paths of Keel's own checkout in the dogfood push trigger, which a caller has not. */
const keelOnlyPath = (p: string, decl: Distro) =>
  !decl.build.inputs.includes(p) && (p === 'dist/**' || /^actions\/[a-z0-9-]+\/action\.yml$/.test(p));

/** The calling job's name: GitHub shows "<this> / <called job>". */
const JOB_NAMES: Record<CallerName, string> = {
  build: 'Build',
  'smoke-boot': 'Boot test and promote',
  'build-disk': 'Install media',
};

const LEVEL = { none: 0, read: 1, write: 2 } as const;

/** The union of the called jobs' permissions (the higher level wins). */
export function calledPermissions(wf: Workflow): Permissions {
  const out: Permissions = {};
  for (const j of wf.jobs)
    for (const [scope, level] of Object.entries(j.permissions) as [keyof Permissions, 'read' | 'write' | 'none'][])
      if (LEVEL[level] > LEVEL[out[scope] ?? 'none']) out[scope] = level;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b))) as Permissions;
}

/** The called jobs that run in the release environment (the `environment` input). */
const releaseJobs = (wf: Workflow) =>
  wf.jobs.filter((j) => j.environment?.kind === 'input' && j.environment.name === 'environment');

/** Secrets (other than GITHUB_TOKEN) the called jobs in the release environment read. */
export function calledSecrets(wf: Workflow): string[] {
  const names = new Set<string>();
  for (const j of releaseJobs(wf))
    for (const s of j.steps)
      for (const e of stepExprs(s))
        for (const x of walkExpr(e)) if (x.kind === 'secret' && x.name !== 'GITHUB_TOKEN') names.add(x.name);
  return [...names].sort();
}

/** The `with:` of a caller: required inputs from the declarations, dispatch inputs passed through. */
export function callerInputs(decl: Distro, reusable: Workflow, dispatchInputs: string[]): Record<string, unknown> {
  const declared = reusable.on.workflow_call?.inputs ?? {};
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(declared)) {
    if (dispatchInputs.includes(name)) {
      out[name] = `\${{ inputs.${name} }}`;
      continue;
    }
    const value = FROM_DECLARATIONS[name]?.(decl);
    if (spec.required && (value === undefined || value === ''))
      throw new UserError(
        `${reusable.file} requires input '${name}', which keel init cannot fill from the declarations (${FROM_DECLARATIONS[name] ? 'the declarations leave it empty' : 'no mapping'})`,
      );
    if (value !== undefined && (spec.required || SHOWN.includes(name) || value !== spec.default)) out[name] = value;
  }
  return out;
}

/** One caller workflow's text. */
function renderCaller(name: CallerName, dogfood: Workflow, reusable: Workflow, decl: Distro, o: CallerOptions): Caller {
  const on = workflowPlain({ ...dogfood, jobs: [] }).on as Record<string, Record<string, unknown>>;
  for (const t of ['push', 'pull_request'])
    if (Array.isArray(on[t]?.paths)) on[t]!.paths = (on[t]!.paths as string[]).filter((p) => !keelOnlyPath(p, decl));
  const dispatch = Object.keys(dogfood.on.workflow_dispatch?.inputs ?? {});
  const entry = dogfood.jobs.filter((j) => j.needs.length === 0);
  const gate = entry.length === 1 ? entry[0]!.if : undefined;
  const permissions = calledPermissions(reusable);
  const secrets = calledSecrets(reusable);
  const uses = `${KEEL_REPO}/.github/workflows/${reusable.file}@${o.commit}`;
  const job: Record<string, unknown> = {
    name: JOB_NAMES[name],
    ...(gate ? { if: exprText(gate) } : {}),
    uses,
    permissions,
    ...(Object.keys(callerInputs(decl, reusable, dispatch)).length
      ? { with: callerInputs(decl, reusable, dispatch) }
      : {}),
  };
  const doc = new Document(
    { name: dogfood.name, on, permissions: {}, jobs: { [name]: job } },
    { aliasDuplicateObjects: false },
  );
  doc.commentBefore = [
    ` Scaffolded by keel init (Keel ${o.release.version}); yours to edit.`,
    ` Calls Keel's reusable ${name} workflow at a full commit SHA (a moved tag cannot change what runs).`,
    ` Settings live in declarations/distro.yaml; the inputs below are what the reusable workflow requires.`,
  ].join('\n');
  annotate(doc, { dogfood, reusable }, name, o.release.version, secrets, decl.environment);
  const text = doc.toString({ lineWidth: 0, minContentWidth: 0, indentSeq: true });
  return { file: `${name}.yml`, name: dogfood.name, text, secrets, permissions };
}

/** Comments: the guards of a dangerous trigger, the version of the pinned call, where the secrets live. */
function annotate(
  doc: Document,
  called: { dogfood: Workflow; reusable: Workflow },
  name: string,
  version: string,
  secrets: string[],
  env: string,
) {
  const { dogfood, reusable } = called;
  const on = doc.get('on', true);
  if (isMap(on)) {
    for (const pair of on.items) {
      const guards = isScalar(pair.key) ? dogfood.triggerGuards?.[String(pair.key.value) as 'workflow_run'] : undefined;
      if (guards?.length) (pair.key as Scalar).commentBefore = guards.map((g) => ` ${g}`).join('\n');
    }
  }
  const jobs = doc.get('jobs', true);
  const job = isMap(jobs) ? jobs.get(name, true) : undefined;
  if (!isMap(job)) return;
  const uses = job.get('uses', true);
  if (isScalar(uses)) uses.comment = ` ${version}`;
  const perms = job.items.find((p) => isScalar(p.key) && p.key.value === 'permissions');
  const inEnv = releaseJobs(reusable).map((j) => j.id);
  if (perms && isScalar(perms.key))
    perms.key.commentBefore = [
      ' Permissions: exactly what the called jobs ask for (a caller can only narrow them).',
      ...(inEnv.length
        ? [
            ` No secrets: passed: the called job${inEnv.length > 1 ? 's' : ''} ${inEnv.join(', ')} run${inEnv.length > 1 ? '' : 's'} in your '${env}' environment`,
            secrets.length
              ? ` and read${inEnv.length > 1 ? '' : 's'} ${secrets.join(', ')} from it (keep them there, not at repository level).`
              : ' (its protection rules apply: main only).',
          ]
        : [' No secrets: passed: the called jobs use only the run token (GITHUB_TOKEN).']),
    ].join('\n');
}

/** The three caller workflows for a distro. */
export function callerWorkflows(decl: Distro, o: CallerOptions): Caller[] {
  const dogfood = workflows(decl, { mode: 'dogfood', release: o.release });
  const reusable = workflows(decl, { mode: 'reusable', release: o.release });
  return CALLERS.map((name) => {
    const d = dogfood.find((w) => w.file === `${name}.yml`);
    const r = reusable.find((w) => w.file === `reusable-${name}.yml`);
    if (!d || !r) throw new Error(`Keel's generators produce no ${name} workflow`);
    return renderCaller(name, d, r, decl, o);
  });
}
