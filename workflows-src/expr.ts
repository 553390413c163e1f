import { expandTemplate } from '../actions/lib/declarations.js';

/**
 * Structured workflow expressions. The generators never write `${{ … }}` text: a value that
 * comes from somewhere at run time is one of these objects, rendered to GitHub's expression
 * syntax only by the YAML writer (render.ts). A local runner evaluates the same objects itself
 * (`evaluate()` below is the reference semantics), so nothing ever parses an expression string.
 */
export type Expr =
  /** A constant. Strings must not contain `${{`. */
  | { kind: 'literal'; value: string | number | boolean }
  /** `steps.<step>.outputs.<output>`: an output of an earlier step of the same job (`hop` when it is a Keel action). */
  | { kind: 'step-output'; step: string; output: string; hop?: string }
  /** `needs.<job>.outputs.<output>`: an output of a job this job needs. */
  | { kind: 'job-output'; job: string; output: string }
  /** `jobs.<job>.outputs.<output>`: a job output as a workflow_call output (only there). */
  | { kind: 'jobs-output'; job: string; output: string }
  /** `needs.<job>.result`: success, failure, cancelled or skipped. */
  | { kind: 'job-result'; job: string }
  /** `secrets.<name>`. */
  | { kind: 'secret'; name: string }
  /** `inputs.<name>`: a workflow_dispatch or workflow_call input. */
  | { kind: 'input'; name: string }
  /** `github.<path>`, e.g. `actor`, `event_name`, `event.workflow_run.id`. */
  | { kind: 'github'; path: string }
  /** `runner.<path>`, e.g. `environment` (github-hosted or self-hosted), `os`, `temp`. */
  | { kind: 'runner'; path: string }
  /** `env.<name>`. */
  | { kind: 'env'; name: string }
  /** `matrix.<key>`: the value of this leg of a matrix job (only inside that job). */
  | { kind: 'matrix'; key: string }
  /** String concatenation of the parts. */
  | { kind: 'concat'; parts: Expr[] }
  /** The items joined by newlines (a list input of an action). */
  | { kind: 'lines'; items: Expr[] }
  /**
   * A declarations template (`{date}`, `{file}`, `{digest}`) whose variables are only known at
   * run time: evaluate with `expandTemplate(template, vars)` from actions/lib/declarations.ts.
   */
  | { kind: 'template'; template: string; vars: TemplateVars }
  /** `a || b || …`: the first non-empty value. */
  | { kind: 'or'; items: Expr[] }
  /** `a && b && …`. */
  | { kind: 'and'; items: Expr[] }
  | { kind: 'not'; item: Expr }
  | { kind: 'eq'; left: Expr; right: Expr }
  | { kind: 'ne'; left: Expr; right: Expr }
  /** `contains(haystack, needle)` (a string, or an array such as `github.event.pull_request.labels.*.name`). */
  | { kind: 'contains'; haystack: Expr; needle: Expr }
  /** `startsWith(text, prefix)` (case-insensitive, like GitHub's). */
  | { kind: 'starts-with'; text: Expr; prefix: Expr }
  /** Status functions of `if:` conditions. */
  | { kind: 'status'; fn: 'success' | 'always' | 'failure' | 'cancelled' };

export interface TemplateVars {
  date?: Expr;
  file?: Expr;
  digest?: Expr;
}

/** What the typed builders accept where an expression is expected: an Expr or a constant. */
export type Value = Expr | string | number | boolean;

export const isExpr = (v: unknown): v is Expr =>
  typeof v === 'object' && v !== null && typeof (v as { kind?: unknown }).kind === 'string';

export function toExpr(v: Value): Expr {
  if (isExpr(v)) return v;
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
    throw new Error(`not an expression or a constant: ${JSON.stringify(v)} (an output that does not exist?)`);
  }
  return lit(v);
}

export function lit(value: string | number | boolean): Expr {
  if (typeof value === 'string' && value.includes('${{')) {
    throw new Error(
      `a literal must not contain an expression (${JSON.stringify(value)}): build it from Expr parts instead`,
    );
  }
  return { kind: 'literal', value };
}
export const secret = (name: string): Expr => ({ kind: 'secret', name });
export const input = (name: string): Expr => ({ kind: 'input', name });
export const github = (path: string): Expr => ({ kind: 'github', path });
export const runner = (path: string): Expr => ({ kind: 'runner', path });
export const env = (name: string): Expr => ({ kind: 'env', name });
export const matrix = (key: string): Expr => ({ kind: 'matrix', key });
/** A job's output (`job.refs.x`) as the value of a reusable workflow's output. */
export function callOutput(ref: Expr): Expr {
  if (ref.kind !== 'job-output') throw new Error('a workflow_call output is a job output');
  return { kind: 'jobs-output', job: ref.job, output: ref.output };
}
export const jobResult = (job: string): Expr => ({ kind: 'job-result', job });
export const concat = (...parts: Value[]): Expr => ({ kind: 'concat', parts: parts.map(toExpr) });
export const lines = (...items: Value[]): Expr => ({ kind: 'lines', items: items.map(toExpr) });
export const or = (...items: Value[]): Expr => ({ kind: 'or', items: items.map(toExpr) });
export const and = (...items: Value[]): Expr => ({ kind: 'and', items: items.map(toExpr) });
export const not = (item: Expr): Expr => ({ kind: 'not', item });
export const eq = (left: Value, right: Value): Expr => ({ kind: 'eq', left: toExpr(left), right: toExpr(right) });
export const ne = (left: Value, right: Value): Expr => ({ kind: 'ne', left: toExpr(left), right: toExpr(right) });
export const contains = (haystack: Value, needle: Value): Expr => ({
  kind: 'contains',
  haystack: toExpr(haystack),
  needle: toExpr(needle),
});
export const startsWith = (text: Value, prefix: Value): Expr => ({
  kind: 'starts-with',
  text: toExpr(text),
  prefix: toExpr(prefix),
});
export const always = (): Expr => ({ kind: 'status', fn: 'always' });
export const cancelled = (): Expr => ({ kind: 'status', fn: 'cancelled' });
export const failure = (): Expr => ({ kind: 'status', fn: 'failure' });
export const success = (): Expr => ({ kind: 'status', fn: 'success' });

/**
 * A declarations template. Expanded with `expandTemplate` now when every variable it uses is a
 * constant; otherwise kept structured (rendered as a concatenation of the constant pieces and
 * the run-time values, evaluated by a local runner with `expandTemplate`).
 */
export function template(t: string, vars: TemplateVars): Expr {
  const used = [...t.matchAll(/\{(date|file|digest)\}/g)].map((m) => m[1] as keyof TemplateVars);
  const constants: { date?: string; file?: string; digest?: string } = {};
  let dynamic = false;
  for (const k of used) {
    const v = vars[k];
    if (v === undefined) throw new Error(`template ${JSON.stringify(t)} uses {${k}} but the workflow has no ${k} here`);
    if (v.kind === 'literal') constants[k] = String(v.value);
    else dynamic = true;
  }
  if (!dynamic) return lit(expandTemplate(t, constants));
  const kept: TemplateVars = {};
  for (const k of used) kept[k] = vars[k];
  return { kind: 'template', template: t, vars: kept };
}

/** A template as concatenated parts: constant pieces (expanded now) and run-time variables. */
export function templateParts(e: Extract<Expr, { kind: 'template' }>): Expr[] {
  const parts: Expr[] = [];
  let last = 0;
  for (const m of e.template.matchAll(/\{(date|file|digest)\}/g)) {
    const k = m[1] as keyof TemplateVars;
    if (m.index > last) parts.push(lit(expandTemplate(e.template.slice(last, m.index), {})));
    const v = e.vars[k];
    if (!v) throw new Error(`template ${JSON.stringify(e.template)}: no value for {${k}}`);
    parts.push(v);
    last = m.index + m[0].length;
  }
  if (last < e.template.length) parts.push(lit(expandTemplate(e.template.slice(last), {})));
  return parts;
}

// ---------------------------------------------------------------------------------------------
// Rendering to GitHub's syntax (used by render.ts only)

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Binding strength of the operators (higher binds tighter): || < && < == != < ! and primaries. */
const precedence = (e: Expr): number =>
  e.kind === 'or' ? 1 : e.kind === 'and' ? 2 : e.kind === 'eq' || e.kind === 'ne' ? 3 : 4;

/** The expression text (without `${{ }}`). */
export function exprText(e: Expr): string {
  // A child is parenthesised when it binds less tightly than its parent, when it is a
  // comparison inside a comparison, and (for the reader) when it is an && inside an ||.
  const sub = (x: Expr) => {
    const px = precedence(x);
    const pe = precedence(e);
    return px < pe || (px === 3 && pe === 3) || (px === 2 && pe === 1) ? `(${exprText(x)})` : exprText(x);
  };
  switch (e.kind) {
    case 'literal':
      return typeof e.value === 'string' ? quote(e.value) : String(e.value);
    case 'step-output':
      return `steps.${e.step}.outputs.${e.output}`;
    case 'job-output':
      return `needs.${e.job}.outputs.${e.output}`;
    case 'jobs-output':
      return `jobs.${e.job}.outputs.${e.output}`;
    case 'job-result':
      return `needs.${e.job}.result`;
    case 'secret':
      return `secrets.${e.name}`;
    case 'input':
      return `inputs.${e.name}`;
    case 'github':
      return `github.${e.path}`;
    case 'runner':
      return `runner.${e.path}`;
    case 'env':
      return `env.${e.name}`;
    case 'matrix':
      return `matrix.${e.key}`;
    case 'concat':
    case 'template': {
      const parts = e.kind === 'concat' ? e.parts : templateParts(e);
      let fmt = '';
      const args: string[] = [];
      for (const p of parts) {
        if (p.kind === 'literal') fmt += String(p.value).replace(/\{/g, '{{').replace(/\}/g, '}}');
        else {
          fmt += `{${args.length}}`;
          args.push(exprText(p));
        }
      }
      return args.length ? `format(${quote(fmt)}, ${args.join(', ')})` : quote(fmt);
    }
    case 'lines':
      throw new Error('a list of lines cannot be nested inside an expression');
    case 'or':
      return e.items.map(sub).join(' || ');
    case 'and':
      return e.items.map(sub).join(' && ');
    case 'not':
      return `!${sub(e.item)}`;
    case 'eq':
      return `${sub(e.left)} == ${sub(e.right)}`;
    case 'ne':
      return `${sub(e.left)} != ${sub(e.right)}`;
    case 'contains':
      return `contains(${exprText(e.haystack)}, ${exprText(e.needle)})`;
    case 'starts-with':
      return `startsWith(${exprText(e.text)}, ${exprText(e.prefix)})`;
    case 'status':
      return `${e.fn}()`;
  }
}

/**
 * A value in a string position (`with:`, `env:`, job outputs, concurrency group): constants as
 * they are, run-time parts as `${{ … }}`. Numbers and booleans stay YAML scalars.
 */
export function valueText(e: Expr): string | number | boolean {
  switch (e.kind) {
    case 'literal':
      return e.value;
    case 'concat':
    case 'template':
      return (e.kind === 'concat' ? e.parts : templateParts(e)).map((p) => String(valueText(p))).join('');
    case 'lines':
      return e.items.map((p) => String(valueText(p))).join('\n');
    default:
      return `\${{ ${exprText(e)} }}`;
  }
}

/** Every sub-expression, depth first (for checks that look for a kind, e.g. step outputs). */
export function* walkExpr(e: Expr): Generator<Expr> {
  yield e;
  switch (e.kind) {
    case 'concat':
      for (const p of e.parts) yield* walkExpr(p);
      break;
    case 'lines':
    case 'or':
    case 'and':
      for (const p of e.items) yield* walkExpr(p);
      break;
    case 'template':
      for (const v of Object.values(e.vars)) if (v) yield* walkExpr(v);
      break;
    case 'not':
      yield* walkExpr(e.item);
      break;
    case 'eq':
    case 'ne':
      yield* walkExpr(e.left);
      yield* walkExpr(e.right);
      break;
    case 'contains':
      yield* walkExpr(e.haystack);
      yield* walkExpr(e.needle);
      break;
    case 'starts-with':
      yield* walkExpr(e.text);
      yield* walkExpr(e.prefix);
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Reference evaluation (what a local runner does with the same objects)

/** The values a runner supplies; anything it does not know evaluates to ''. */
export interface EvalContext {
  stepOutput?(step: string, output: string): string | undefined;
  jobOutput?(job: string, output: string): string | undefined;
  jobResult?(job: string): string | undefined;
  secret?(name: string): string | undefined;
  input?(name: string): string | boolean | number | undefined;
  github?(path: string): unknown;
  /** `runner.*` (a local runner says what it is: `environment` is never github-hosted there). */
  runner?(path: string): string | undefined;
  env?(name: string): string | undefined;
  /** The value of `key` in the leg of the matrix job being run. */
  matrix?(key: string): string | undefined;
  /** The job status so far, for success()/failure() (default: success). */
  status?: 'success' | 'failure' | 'cancelled';
}

type EvalValue = string | number | boolean | unknown[] | null | undefined;

const truthy = (v: unknown) => !(v === undefined || v === null || v === false || v === '' || v === 0);
const asString = (v: unknown) =>
  v === undefined || v === null ? '' : Array.isArray(v) ? JSON.stringify(v) : String(v);

/** Evaluates an expression with GitHub's semantics for the subset Keel generates. */
export function evaluate(e: Expr, ctx: EvalContext): EvalValue {
  switch (e.kind) {
    case 'literal':
      return e.value;
    case 'step-output':
      return ctx.stepOutput?.(e.step, e.output) ?? '';
    case 'job-output':
    case 'jobs-output':
      return ctx.jobOutput?.(e.job, e.output) ?? '';
    case 'job-result':
      return ctx.jobResult?.(e.job) ?? '';
    case 'secret':
      return ctx.secret?.(e.name) ?? '';
    case 'input':
      return ctx.input?.(e.name) ?? '';
    case 'github':
      return (ctx.github?.(e.path) as EvalValue) ?? '';
    case 'runner':
      return ctx.runner?.(e.path) ?? '';
    case 'env':
      return ctx.env?.(e.name) ?? '';
    case 'matrix':
      return ctx.matrix?.(e.key) ?? '';
    case 'concat':
      return e.parts.map((p) => asString(evaluate(p, ctx))).join('');
    case 'lines':
      return e.items.map((p) => asString(evaluate(p, ctx))).join('\n');
    case 'template': {
      const vars: { date?: string; file?: string; digest?: string } = {};
      for (const [k, v] of Object.entries(e.vars) as [keyof TemplateVars, Expr][]) vars[k] = asString(evaluate(v, ctx));
      return expandTemplate(e.template, vars);
    }
    case 'or': {
      let v: EvalValue = '';
      for (const i of e.items) {
        v = evaluate(i, ctx);
        if (truthy(v)) return v;
      }
      return v;
    }
    case 'and': {
      let v: EvalValue = true;
      for (const i of e.items) {
        v = evaluate(i, ctx);
        if (!truthy(v)) return v;
      }
      return v;
    }
    case 'not':
      return !truthy(evaluate(e.item, ctx));
    case 'eq':
    case 'ne': {
      const l = evaluate(e.left, ctx);
      const r = evaluate(e.right, ctx);
      const same =
        typeof l === 'string' && typeof r === 'string'
          ? l.toLowerCase() === r.toLowerCase()
          : asString(l) === asString(r);
      return e.kind === 'eq' ? same : !same;
    }
    case 'contains': {
      const h = evaluate(e.haystack, ctx);
      const n = asString(evaluate(e.needle, ctx)).toLowerCase();
      if (Array.isArray(h)) return h.some((x) => asString(x).toLowerCase() === n);
      return asString(h).toLowerCase().includes(n);
    }
    case 'starts-with':
      return asString(evaluate(e.text, ctx))
        .toLowerCase()
        .startsWith(asString(evaluate(e.prefix, ctx)).toLowerCase());
    case 'status': {
      const s = ctx.status ?? 'success';
      if (e.fn === 'always') return true;
      return s === e.fn;
    }
  }
}

/** `evaluate` as a string (inputs, env values). */
export const evaluateString = (e: Expr, ctx: EvalContext): string => asString(evaluate(e, ctx));
/** `evaluate` as a condition (`if:`). */
export const evaluateCondition = (e: Expr, ctx: EvalContext): boolean => truthy(evaluate(e, ctx));
