import { KEEL_ACTIONS, type KeelActionName, type KeelInputs, type KeelOutputs } from './actions.generated.js';
import { isExpr, toExpr, walkExpr, type Expr, type Value } from './expr.js';
import type { KeelRelease, Pin } from './pins.js';

/**
 * The typed model of the workflow syntax Keel needs. Generators build these objects; render.ts
 * writes them as YAML; a local runner walks them (workflow → jobs → steps) and evaluates the
 * structured expressions itself:
 *
 * - `KeelStep` (`type: 'keel'`): `uses: ./actions/<hop>` (or the released action in a reusable
 *   workflow) with structured `with` inputs. The runner runs the hop itself.
 * - `ActionStep` (`type: 'action'`): a pinned third-party action (checkout, artifacts), and
 *   `RunStep` (`type: 'run'`): a small shell step. Both carry a `local` hint saying what a
 *   local runner does instead, so it never has to read the shell.
 */

// ---------------------------------------------------------------------------------------------
// Local hints

export type LocalHint =
  /** Nothing to do locally (e.g. checkout: the runner works in the checkout it runs from). */
  | { local: 'skip'; reason: string }
  /** Sets the step output `release-date` to today's UTC date, YYYYMMDD, once. */
  | { local: 'release-date' }
  /** Keeps the files as a run artifact called `name` (flat: their basenames). */
  | { local: 'artifact-upload'; name: Expr; paths: Expr[] }
  /** Puts the files of artifact `name` into `path` (from run `runId` when given, else this run). */
  | { local: 'artifact-download'; name: Expr; path: string; runId?: Expr }
  /** Writes each value into `dir/<file>` (one line). */
  | { local: 'write-files'; dir: string; files: Record<string, Expr> }
  /** Reads `dir/<file>` into step outputs; each value must match `pattern` (a JS/ERE regex). */
  | { local: 'read-files'; dir: string; outputs: Record<string, { file: string; pattern: string }> }
  /** Builds the base image: `script args…` as root, into the containers-storage the build hop reads. */
  | { local: 'bootstrap-base'; script: string; args: string[]; image: string }
  /** Host packages the next hops need (a local runner checks they are there). */
  | { local: 'apt-install'; packages: string[] }
  /** Sets each output to `expandTemplate(template, vars)` (actions/lib/declarations.ts). */
  | { local: 'expand-templates'; vars: { date?: Expr; file?: Expr; digest?: Expr }; templates: Record<string, Expr> }
  /** Fails unless `ref` is `<repository>@sha256:<hex>` (common.ts `imageRefProblem`). */
  | { local: 'check-image-ref'; ref: Expr; repository: Expr }
  /** Fails unless `value` is a calendar date YYYYMMDD (`isValidYmd`); `name` says which value. */
  | { local: 'check-date'; value: Expr; name: string };

// ---------------------------------------------------------------------------------------------
// Steps

interface StepCommon {
  /** Step id (unique within the job); required when the step has outputs others read. */
  id?: string;
  name: string;
  if?: Expr;
  env?: Record<string, Expr>;
  continueOnError?: boolean;
  timeoutMinutes?: number;
}

export interface KeelStep<H extends KeelActionName = KeelActionName> extends StepCommon {
  type: 'keel';
  id: string;
  hop: H;
  with: Record<string, Expr>;
  /** References to this step's outputs, typed by the action's action.yml. */
  outputs: { readonly [K in KeelOutputs[H]]: Expr };
}

export interface ActionStep<O extends string = string> extends StepCommon {
  type: 'action';
  uses: Pin;
  with: Record<string, Expr>;
  local: LocalHint;
  outputs: { readonly [K in O]: Expr };
}

export interface RunStep<O extends string = string> extends StepCommon {
  type: 'run';
  /** The bash script. It never contains `${{`: run-time values come in through `env`. */
  run: string;
  local: LocalHint;
  /** Outputs the script writes to $GITHUB_OUTPUT. */
  outputs: { readonly [K in O]: Expr };
}

/** A Keel step of any hop (the union over hops, so each keeps its own output names). */
export type AnyKeelStep = { [H in KeelActionName]: KeelStep<H> }[KeelActionName];

export type Step = AnyKeelStep | ActionStep | RunStep;

export interface StepOptions {
  name?: string;
  if?: Expr;
  env?: Record<string, Value>;
  continueOnError?: boolean;
  timeoutMinutes?: number;
}

/**
 * Values to Exprs. An undefined value is an error, not an omission: it is what reading an output
 * that no longer exists gives when the generators run without type-checking (tsx).
 */
const mapValues = (r: Record<string, Value | undefined>, what = 'value'): Record<string, Expr> => {
  const out: Record<string, Expr> = {};
  for (const [k, v] of Object.entries(r)) {
    if (v === undefined || v === null) throw new Error(`${what} '${k}' is undefined (an output that does not exist?)`);
    out[k] = toExpr(v);
  }
  return out;
};

const outputRefs = <O extends string>(step: string, names: readonly O[], hop?: string) =>
  Object.freeze(
    Object.fromEntries(
      names.map((o) => [o, { kind: 'step-output', step, output: o, ...(hop ? { hop } : {}) } as Expr]),
    ),
  ) as {
    readonly [K in O]: Expr;
  };

function common(id: string | undefined, name: string, o: StepOptions): StepCommon {
  return {
    ...(id ? { id } : {}),
    name,
    ...(o.if ? { if: o.if } : {}),
    ...(o.env ? { env: mapValues(o.env) } : {}),
    ...(o.continueOnError ? { continueOnError: true } : {}),
    ...(o.timeoutMinutes ? { timeoutMinutes: o.timeoutMinutes } : {}),
  };
}

/** A step running a Keel action: only its declared inputs, every required one, typed outputs. */
export function keelStep<H extends KeelActionName>(
  hop: H,
  id: string,
  inputs: KeelInputs[H],
  o: StepOptions = {},
): KeelStep<H> {
  const spec = KEEL_ACTIONS[hop] as { inputs: Record<string, { required: boolean }>; outputs: readonly string[] };
  // The types already enforce this; the check keeps hand-built objects honest too.
  for (const k of Object.keys(inputs)) if (!(k in spec.inputs)) throw new Error(`${hop}: unknown input '${k}'`);
  for (const [k, v] of Object.entries(spec.inputs)) {
    if (v.required && (inputs as Record<string, Value | undefined>)[k] === undefined)
      throw new Error(`${hop}: missing required input '${k}'`);
  }
  return {
    type: 'keel',
    ...common(id, o.name ?? `keel: ${hop}`, o),
    id,
    hop,
    with: mapValues(inputs as unknown as Record<string, Value | undefined>, `${hop} input`),
    outputs: outputRefs(id, spec.outputs as readonly KeelOutputs[H][], hop),
  };
}

type KeelBuilders = { [H in KeelActionName]: (id: string, inputs: KeelInputs[H], o?: StepOptions) => KeelStep<H> };

/** `keel.push('push', { source, image, … })`: one typed builder per Keel action. */
export const keel = Object.fromEntries(
  (Object.keys(KEEL_ACTIONS) as KeelActionName[]).map((h) => [
    h,
    (id: string, inputs: never, o?: StepOptions) => keelStep(h, id, inputs, o),
  ]),
) as unknown as KeelBuilders;

/** A step running a pinned third-party action. */
export function actionStep<O extends string = never>(
  spec: {
    id?: string;
    name: string;
    uses: Pin;
    with?: Record<string, Value>;
    local: LocalHint;
    outputs?: readonly O[];
  } & StepOptions,
): ActionStep<O> {
  if (spec.outputs?.length && !spec.id) throw new Error(`step '${spec.name}' has outputs but no id`);
  return {
    type: 'action',
    ...common(spec.id, spec.name, spec),
    uses: spec.uses,
    with: mapValues(spec.with ?? {}, `${spec.name} input`),
    local: spec.local,
    outputs: outputRefs(spec.id ?? '', spec.outputs ?? []),
  };
}

/** A small bash step; run-time values reach it only through `env`. */
export function runStep<O extends string = never>(
  spec: { id?: string; name: string; run: string; local: LocalHint; outputs?: readonly O[] } & StepOptions,
): RunStep<O> {
  if (spec.run.includes('${{'))
    throw new Error(`step '${spec.name}': a run script must not interpolate expressions; pass them through env`);
  if (spec.outputs?.length && !spec.id) throw new Error(`step '${spec.name}' has outputs but no id`);
  return {
    type: 'run',
    ...common(spec.id, spec.name, spec),
    run: spec.run,
    local: spec.local,
    outputs: outputRefs(spec.id ?? '', spec.outputs ?? []),
  };
}

// ---------------------------------------------------------------------------------------------
// Jobs and workflows

export type PermissionScope =
  | 'actions'
  | 'attestations'
  | 'checks'
  | 'contents'
  | 'deployments'
  | 'id-token'
  | 'issues'
  | 'packages'
  | 'pull-requests'
  | 'statuses';
export type Permissions = Partial<Record<PermissionScope, 'read' | 'write' | 'none'>>;

export interface Concurrency {
  group: Expr;
  /** A constant, or a condition (e.g. true only for pull requests). */
  cancelInProgress: boolean | Expr;
}

/**
 * A matrix job: one leg per entry of `include` (constant values from the declarations), run
 * side by side, none cancelled when another fails. Steps read a leg's values as `matrix(key)`.
 * A matrix job has no outputs (GitHub keeps only the last leg's).
 */
export interface Strategy {
  include: Record<string, string>[];
  /** Legs running at once (default: all). */
  maxParallel?: number;
}

export interface Job<O extends string = string> {
  id: string;
  name: string;
  /** Ids of the jobs this one needs, in order. */
  needs: string[];
  if?: Expr;
  runsOn: Expr;
  timeoutMinutes: number;
  permissions: Permissions;
  /**
   * The GitHub environment the job runs in: its secrets become readable, its protection rules
   * (deployment branches, reviewers) apply. Every job reading a secret other than GITHUB_TOKEN has one.
   */
  environment?: Expr;
  concurrency?: Concurrency;
  strategy?: Strategy;
  env?: Record<string, Expr>;
  /** Job outputs: name → the value (usually a step output of this job). */
  outputs: Record<O, Expr>;
  steps: Step[];
  /** References other jobs use: `refs.digest` is `needs.<id>.outputs.digest`. */
  refs: { readonly [K in O]: Expr };
}

export interface JobSpec<O extends string> {
  name: string;
  needs?: Job<string>[];
  if?: Expr;
  runsOn: Value;
  timeoutMinutes: number;
  permissions: Permissions;
  environment?: Value;
  concurrency?: Concurrency;
  strategy?: Strategy;
  env?: Record<string, Value>;
  outputs?: Record<O, Expr>;
  steps: (Step | undefined | false)[];
}

export function job<O extends string = never>(id: string, spec: JobSpec<O>): Job<O> {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(id)) throw new Error(`bad job id '${id}'`);
  const steps = spec.steps.filter((s): s is Step => Boolean(s));
  const outputs = mapValues(spec.outputs ?? {}, `job ${id} output`) as Record<O, Expr>;
  return {
    id,
    name: spec.name,
    needs: (spec.needs ?? []).map((j) => j.id),
    ...(spec.if ? { if: spec.if } : {}),
    runsOn: toExpr(spec.runsOn),
    timeoutMinutes: spec.timeoutMinutes,
    permissions: spec.permissions,
    ...(spec.environment !== undefined ? { environment: toExpr(spec.environment) } : {}),
    ...(spec.concurrency ? { concurrency: spec.concurrency } : {}),
    ...(spec.strategy ? { strategy: spec.strategy } : {}),
    ...(spec.env ? { env: mapValues(spec.env) } : {}),
    outputs,
    steps,
    refs: Object.freeze(
      Object.fromEntries(Object.keys(outputs).map((o) => [o, { kind: 'job-output', job: id, output: o } as Expr])),
    ) as { readonly [K in O]: Expr },
  };
}

export interface DispatchInput {
  description: string;
  required: boolean;
  type: 'string' | 'boolean' | 'choice';
  default?: string | boolean;
  options?: string[];
}

export interface CallInput {
  description: string;
  required: boolean;
  type: 'string' | 'boolean' | 'number';
  default?: string | boolean | number;
}

export interface Triggers {
  push?: { branches: string[]; paths?: string[] };
  pull_request?: { types: string[]; branches?: string[]; paths?: string[] };
  schedule?: { cron: string }[];
  workflow_dispatch?: { inputs?: Record<string, DispatchInput> };
  workflow_run?: { workflows: string[]; types: string[]; branches?: string[] };
  workflow_call?: {
    inputs?: Record<string, CallInput>;
    secrets?: Record<string, { description: string; required: boolean }>;
    outputs?: Record<string, { description: string; value: Expr }>;
  };
}

/** Triggers that run with this repository's secrets on behalf of code or data from elsewhere. */
export const DANGEROUS_TRIGGERS = ['workflow_run', 'pull_request_target'] as const;
export type DangerousTrigger = (typeof DANGEROUS_TRIGGERS)[number];

/**
 * Where the Keel steps' actions come from: `./actions/<hop>` of this checkout, or the released
 * actions pinned to the commit `keel release` stamped (pins.ts).
 */
export type ActionSource = { kind: 'local' } | { kind: 'remote'; release: KeelRelease };

export interface Workflow {
  /** File name under .github/workflows/. */
  file: string;
  /** The generator module (named in the header). */
  source: string;
  name: string;
  on: Triggers;
  /**
   * For each dangerous trigger used: the guards that make it safe, written as a YAML comment
   * next to the trigger (checkWorkflow requires one).
   */
  triggerGuards?: Partial<Record<DangerousTrigger | 'pull_request', string[]>>;
  /** Workflow-level permissions: always `{}`; jobs grant what they need. */
  permissions: Permissions;
  /** Never in a reusable workflow (it could deadlock with its caller's group): use job-level groups. */
  concurrency?: Concurrency;
  actions: ActionSource;
  jobs: Job[];
}

// ---------------------------------------------------------------------------------------------
// Walking and checking

/** The Keel hops the jobs run, in order of first use (e.g. the build trigger's path allow-list). */
export function keelHops(jobs: Job[]): KeelActionName[] {
  const hops: KeelActionName[] = [];
  for (const j of jobs) for (const s of j.steps) if (s.type === 'keel' && !hops.includes(s.hop)) hops.push(s.hop);
  return hops;
}

/** Every expression a step holds (inputs, env, condition, local hint values). */
export function* stepExprs(s: Step): Generator<Expr> {
  if (s.if) yield* walkExpr(s.if);
  for (const v of Object.values(s.env ?? {})) yield* walkExpr(v);
  if (s.type !== 'run') for (const v of Object.values(s.with)) yield* walkExpr(v);
  if (s.type !== 'keel') yield* hintExprs(s.local);
}

function* hintExprs(v: unknown): Generator<Expr> {
  if (isExpr(v)) {
    yield* walkExpr(v);
  } else if (Array.isArray(v)) {
    for (const x of v) yield* hintExprs(x);
  } else if (v && typeof v === 'object') {
    for (const x of Object.values(v)) yield* hintExprs(x);
  }
}

/**
 * Structural checks the types cannot express: unique ids, a step output is read only after its
 * step ran in the same job and only if the step declares it, a job output only from a job in
 * `needs`, every Keel step passes its required inputs. Returns the problems (empty when sound).
 */
export function checkWorkflow(wf: Workflow): string[] {
  const problems: string[] = [];
  const jobs = new Map<string, Job>();
  for (const j of wf.jobs) {
    if (jobs.has(j.id)) problems.push(`${wf.file}: duplicate job '${j.id}'`);
    jobs.set(j.id, j);
  }
  const jobExprs = (j: Job) => [
    ...(j.if ? [j.if] : []),
    j.runsOn,
    ...(j.environment ? [j.environment] : []),
    ...(j.concurrency ? [j.concurrency.group] : []),
    ...(j.concurrency && typeof j.concurrency.cancelInProgress !== 'boolean' ? [j.concurrency.cancelInProgress] : []),
    ...Object.values(j.env ?? {}),
    ...Object.values<Expr>(j.outputs),
  ];
  for (const j of wf.jobs) {
    const where = `${wf.file}: job ${j.id}`;
    for (const n of j.needs) {
      const idx = wf.jobs.findIndex((x) => x.id === n);
      if (idx < 0 || idx >= wf.jobs.indexOf(j)) problems.push(`${where}: needs '${n}', which is not an earlier job`);
    }
    const seen = new Map<string, Step>();
    const checkRef = (e: Expr, at: string, stepsSoFar: Map<string, Step>) => {
      if (e.kind === 'step-output') {
        const s = stepsSoFar.get(e.step);
        if (!s)
          problems.push(`${at}: reads steps.${e.step}.outputs.${e.output}, but no earlier step has id '${e.step}'`);
        else if (!(e.output in s.outputs)) problems.push(`${at}: step '${e.step}' has no output '${e.output}'`);
      } else if (e.kind === 'matrix') {
        const legs = j.strategy?.include ?? [];
        if (!legs.length || legs.some((leg) => !(e.key in leg)))
          problems.push(`${at}: reads matrix.${e.key}, which not every leg of the job's matrix defines`);
      } else if (e.kind === 'job-output' || e.kind === 'job-result') {
        if (!j.needs.includes(e.job))
          problems.push(`${at}: reads needs.${e.job}, but the job does not need '${e.job}'`);
        else if (e.kind === 'job-output' && !(e.output in (jobs.get(e.job)?.outputs ?? {}))) {
          problems.push(`${at}: job '${e.job}' has no output '${e.output}'`);
        }
      }
    };
    for (const s of j.steps) {
      const at = `${where}, step '${s.id ?? s.name}'`;
      for (const e of stepExprs(s)) checkRef(e, at, seen);
      if (s.id) {
        if (seen.has(s.id)) problems.push(`${at}: duplicate step id '${s.id}'`);
        if (s.id === 'outputs') problems.push(`${at}: a step id 'outputs' shadows the expression context`);
        seen.set(s.id, s);
      }
      if (s.type === 'keel') {
        const spec = KEEL_ACTIONS[s.hop] as { inputs: Record<string, { required: boolean }> };
        for (const k of Object.keys(s.with))
          if (!(k in spec.inputs)) problems.push(`${at}: ${s.hop} has no input '${k}'`);
        for (const [k, v] of Object.entries(spec.inputs))
          if (v.required && !(k in s.with)) problems.push(`${at}: ${s.hop} needs input '${k}'`);
      }
    }
    for (const e of jobExprs(j)) for (const x of walkExpr(e)) checkRef(x, `${where} (job level)`, seen);
    if (j.strategy && Object.keys(j.outputs).length)
      problems.push(`${where}: a matrix job has no outputs (GitHub keeps only one leg's)`);
    if (j.strategy && !j.strategy.include.length) problems.push(`${where}: a matrix with no legs`);
    if (j.if && [...walkExpr(j.if)].some((x) => x.kind === 'matrix'))
      problems.push(`${where}: a job condition cannot read matrix (it is decided before the legs exist)`);
  }
  for (const t of DANGEROUS_TRIGGERS)
    if ((wf.on as Record<string, unknown>)[t] && !wf.triggerGuards?.[t]?.length)
      problems.push(`${wf.file}: trigger ${t} needs triggerGuards naming the guards that make it safe`);
  if (wf.on.workflow_call && wf.concurrency)
    problems.push(`${wf.file}: a reusable workflow takes no workflow-level concurrency (use job-level groups)`);
  for (const [name, o] of Object.entries(wf.on.workflow_call?.outputs ?? {})) {
    for (const x of walkExpr(o.value)) {
      if (x.kind === 'jobs-output' && !(x.output in (jobs.get(x.job)?.outputs ?? {}))) {
        problems.push(
          `${wf.file}: workflow output '${name}' reads jobs.${x.job}.outputs.${x.output}, which does not exist`,
        );
      } else if (x.kind === 'step-output' || x.kind === 'job-output') {
        problems.push(`${wf.file}: workflow output '${name}' must read a job output (jobs.<job>.outputs.<name>)`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Extending a job another generator built (a notification reading its outputs, a last step)

/**
 * The job output holding `value`: an existing output with the same value keeps its name,
 * otherwise `name` is added. Returns the job (a new object when an output was added) and the
 * reference to the output.
 */
export function jobOutputFor<O extends string>(j: Job<O>, name: string, value: Expr): { job: Job; ref: Expr } {
  const outputs = j.outputs as Record<string, Expr>;
  const same = Object.keys(outputs).find((k) => JSON.stringify(outputs[k]) === JSON.stringify(value));
  if (same) return { job: j, ref: (j.refs as Record<string, Expr>)[same]! };
  if (name in outputs) throw new Error(`job ${j.id}: output '${name}' already holds another value`);
  const ref: Expr = { kind: 'job-output', job: j.id, output: name };
  return {
    job: { ...j, outputs: { ...outputs, [name]: value }, refs: Object.freeze({ ...j.refs, [name]: ref }) },
    ref,
  };
}

/** The job with `steps` appended after its own. */
export function withStepsAppended<O extends string>(j: Job<O>, steps: Step[]): Job<O> {
  return { ...j, steps: [...j.steps, ...steps] };
}
