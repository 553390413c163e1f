import { spawnSync } from 'node:child_process';
import { parse } from 'yaml';
import { PR_SIGNING_SECRETS } from '../../workflows-src/common.js';
import { BUILD_SECRETS } from '../../workflows-src/workflows/build.js';
import { walkExpr, type Expr } from '../../workflows-src/expr.js';
import { freeDiskScript } from '../../workflows-src/free-disk.js';
import { stepExprs, type Job, type Workflow } from '../../workflows-src/model.js';
import { keelHop, needsOf, type YJob, type YStep, type YWorkflow } from './helpers.js';

/**
 * The workflow policy as checks that return problems (empty when the workflow complies), so the
 * tests can run them on the committed files, on workflows generated from other declarations, and
 * on deliberately broken copies (proving each check can fail).
 *
 * Two layers:
 * - `lintWorkflow` reads the YAML as GitHub does and covers what actionlint and zizmor check
 *   (neither runs here): template injection, unpinned uses, persisted checkout credentials,
 *   excessive permissions, dangerous triggers without guards, GITHUB_ENV/PATH writes, insecure
 *   commands, the whole secrets context, inherited secrets, spoofable bot conditions,
 *   self-hosted runners, caches in release workflows, concurrency, and `bash -n` on every script.
 * - `pullRequestProblems` / `environmentProblems` read the model (structured expressions, the
 *   same objects the YAML is rendered from): which jobs a pull request can run, which secrets
 *   each job reads, which environment it declares.
 */

// ---------------------------------------------------------------------------------------------
// Permissions each step needs (the reviewed mapping; a hop missing here fails the lint)

type Level = 'read' | 'write';
type Perms = Record<string, Level>;

/** What each Keel hop does with the run's GITHUB_TOKEN (keyless signing would add id-token). */
export const HOP_PERMISSIONS: Record<string, Perms> = {
  build: { packages: 'read' }, // pulls the base with the token when it lives in the push registry
  validate: {},
  rechunk: { packages: 'read' }, // reads the previous image's layer plan
  push: { packages: 'write' },
  sign: { packages: 'write' }, // writes the signature next to the image
  verify: { packages: 'read' },
  'smoke-boot': { packages: 'read' },
  'update-test': { packages: 'read' }, // pulls stable and the candidate
  promote: { packages: 'write' },
  resolve: { packages: 'read' },
  'build-disk': { packages: 'read' },
  'ia-upload': {}, // its own S3 keys
  'site-bump': {}, // its own token on the site repository
  notify: {}, // its own ntfy URL and token
  cleanup: { packages: 'write' }, // deletes package versions (manifests)
  watch: { actions: 'write', contents: 'read', packages: 'read' }, // reads the tags, the branch head; re-runs a build
  sysext: { packages: 'read' }, // pulls the pinned base
  sbom: { packages: 'read' }, // reads the pushed image's layers
  changelog: { packages: 'read' }, // reads the new image and stable
  'github-release': { contents: 'write' }, // creates or updates the release stable.<date> and its git tag
  settings: {}, // reads the checked-out declarations only
};

function stepPermissions(s: YStep): Perms | string {
  const hop = keelHop(s.uses);
  // sign with files only (SHA256SUMS) touches no registry.
  if (hop === 'sign' && !s.with?.['image-ref']) return {};
  if (hop) return HOP_PERMISSIONS[hop] ?? `hop ${hop} has no entry in HOP_PERMISSIONS`;
  if (s.run !== undefined) return {};
  if (s.uses?.startsWith('actions/checkout@')) return { contents: 'read' };
  if (s.uses?.startsWith('actions/upload-artifact@')) return {};
  // Grype reads a file of the job and fetches its database from anchore's servers, not GitHub.
  if (s.uses?.startsWith('anchore/scan-action@')) return {};
  // Another run's artifact is read through the Actions API; this run's needs nothing.
  if (s.uses?.startsWith('actions/download-artifact@')) return s.with?.['run-id'] ? { actions: 'read' } : {};
  return `no permission entry for ${s.uses}`;
}

function neededPermissions(j: YJob): { perms: Perms; problems: string[] } {
  const perms: Perms = {};
  const problems: string[] = [];
  for (const s of j.steps) {
    const p = stepPermissions(s);
    if (typeof p === 'string') {
      problems.push(p);
      continue;
    }
    for (const [scope, level] of Object.entries(p)) if (perms[scope] !== 'write') perms[scope] = level;
  }
  return { perms, problems };
}

const sortedJson = (o: Record<string, string> | undefined) =>
  JSON.stringify(Object.fromEntries(Object.entries(o ?? {}).sort()));

// ---------------------------------------------------------------------------------------------
// YAML-level checks (actionlint / zizmor stand-ins)

const PINNED = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(\/[^@\s]+)?@[0-9a-f]{40}$/;

function pinProblems(text: string, reusable: boolean): string[] {
  const problems: string[] = [];
  for (const m of text.matchAll(/^\s*(?:- )?uses: (\S+)(.*)$/gm)) {
    const [ref, rest] = [m[1]!, m[2]!];
    if (ref.startsWith('./')) {
      if (reusable) problems.push(`uses ${ref}: a reusable workflow runs in the caller's checkout`);
      continue;
    }
    if (!PINNED.test(ref)) problems.push(`uses ${ref}: not pinned to a full commit SHA`);
    else if (!/^ # v\d+\.\d+\.\d+$/.test(rest)) problems.push(`uses ${ref}: no version comment`);
  }
  return problems;
}

function stepProblems(jobId: string, s: YStep, i: number): string[] {
  const at = `job ${jobId} step ${i} (${s.name ?? s.uses})`;
  const problems: string[] = [];
  if (s.run !== undefined) {
    if (s.run.includes('${{')) problems.push(`${at}: run interpolates an expression (template injection)`);
    // The one exception: free-disk exports TMPDIR, a path it built from a local mount point and
    // checked against a plain-path pattern (no untrusted value reaches GITHUB_ENV).
    const freeDisk = s.run.replace(/\n$/, '') === freeDiskScript();
    if (!freeDisk && /\bGITHUB_(ENV|PATH)\b/.test(s.run)) problems.push(`${at}: writes GITHUB_ENV or GITHUB_PATH`);
    const syntax = spawnSync('bash', ['-n'], { input: s.run, encoding: 'utf8' });
    if (syntax.status !== 0) problems.push(`${at}: bash -n: ${syntax.stderr.trim()}`);
  }
  if (s.uses?.startsWith('actions/checkout@')) {
    if (s.with?.['persist-credentials'] !== false) problems.push(`${at}: checkout without persist-credentials: false`);
    if (s.with?.ref !== undefined || s.with?.repository !== undefined)
      problems.push(`${at}: checkout of another ref or repository`);
  }
  if (s.uses && /^actions\/(cache|setup-[a-z]+)@/.test(s.uses))
    problems.push(`${at}: ${s.uses} in a release workflow (cache poisoning)`);
  return problems;
}

function textProblems(text: string): string[] {
  const problems: string[] = [];
  if (/ACTIONS_ALLOW_UNSECURE_COMMANDS/.test(text)) problems.push('enables insecure workflow commands');
  if (/toJSON\(\s*secrets\s*\)|secrets\[|\$\{\{\s*secrets\s*\}\}/.test(text))
    problems.push('reads the whole secrets context');
  if (/^\s*secrets:\s*inherit\s*$/m.test(text)) problems.push('passes secrets: inherit');
  if (/github\.(triggering_)?actor\s*[!=]=/.test(text)) problems.push('decides on github.actor (spoofable)');
  return problems;
}

function jobProblems(wf: YWorkflow, jobId: string, j: YJob): string[] {
  const problems: string[] = [];
  if (String(j['runs-on'] ?? '').includes('self-hosted')) problems.push(`job ${jobId}: self-hosted runner`);
  const { perms, problems: unknown } = neededPermissions(j);
  problems.push(...unknown.map((u) => `job ${jobId}: ${u}`));
  if (sortedJson(j.permissions) !== sortedJson(perms))
    problems.push(
      `job ${jobId}: permissions ${sortedJson(j.permissions)}, its steps need exactly ${sortedJson(perms)}`,
    );
  j.steps.forEach((s, i) => problems.push(...stepProblems(jobId, s, i)));
  const cancel = j.concurrency?.['cancel-in-progress'];
  if (cancel !== undefined && cancel !== false && cancel !== "${{ github.event_name == 'pull_request' }}")
    problems.push(`job ${jobId}: cancel-in-progress ${String(cancel)} (only superseded pull-request runs may go)`);
  const hops = j.steps.map((s) => keelHop(s.uses));
  if (hops.some((h) => h === 'promote' || h === 'ia-upload') && (!j.concurrency || cancel !== false))
    problems.push(`job ${jobId}: a release job needs its own concurrency group, never cancelled`);
  const push = j.steps.find((s) => keelHop(s.uses) === 'push');
  if (push && !String(j.concurrency?.group ?? '').includes(String(push.with?.image)))
    problems.push(`job ${jobId}: the build's concurrency group must include the image`);
  return problems;
}

/** A step that receives a token: a secret or github.token in its inputs or env, or an implicit one (checkout). */
const getsToken = (s: YStep) =>
  /secrets\.|github\.token/.test(JSON.stringify([s.with ?? {}, s.env ?? {}])) ||
  Boolean(s.uses?.startsWith('actions/checkout@'));

/** A dispatched image reference (`inputs.image-ref`) passes the repository guard before any step gets a token. */
function dispatchedRefProblems(jobId: string, j: YJob): string[] {
  if (!JSON.stringify(j).includes('inputs.image-ref')) return [];
  const guard = j.steps.findIndex((s) => isImageRefGuard(s) && String(s.env!.IMAGE_REF).includes('inputs.image-ref'));
  const firstToken = j.steps.findIndex(getsToken);
  if (guard < 0) return [`job ${jobId}: inputs.image-ref is never checked against the repository`];
  if (firstToken >= 0 && firstToken < guard)
    return [`job ${jobId}: step ${firstToken} gets a token before inputs.image-ref is checked`];
  return [];
}

/** Guards a workflow_run job must have (in its `if:` or a needed job's). */
export const WORKFLOW_RUN_CONDITIONS = [
  "github.event.workflow_run.conclusion == 'success'",
  "github.event.workflow_run.event != 'pull_request'",
  'github.event.workflow_run.head_repository.full_name == github.repository',
];

function guardedJob(wf: YWorkflow, jobId: string, seen: string[] = []): boolean {
  const j = wf.jobs[jobId];
  if (!j || seen.includes(jobId)) return false;
  if (WORKFLOW_RUN_CONDITIONS.every((c) => (j.if ?? '').includes(c))) return true;
  if (/always\(\)|failure\(\)|cancelled\(\)/.test(j.if ?? '')) return false;
  return needsOf(j).some((n) => guardedJob(wf, n, [...seen, jobId]));
}

/** A step that refuses an image reference outside the repository (common.ts imageRefGuard). */
const isImageRefGuard = (s: YStep) => Boolean(s.run?.includes('!= "$IMAGE"') && s.env?.IMAGE_REF && s.env?.IMAGE);

function workflowRunProblems(wf: YWorkflow): string[] {
  const problems: string[] = [];
  for (const [jobId, j] of Object.entries(wf.jobs)) {
    if (!guardedJob(wf, jobId))
      problems.push(`job ${jobId}: workflow_run without ${WORKFLOW_RUN_CONDITIONS.join(', ')}`);
    // Another run's artifact is data: never executed, and its image reference passes the guard
    // before any Keel step reads it.
    const dirs = j.steps.filter((s) => s.with?.['run-id']).map((s) => String(s.with!.path));
    const readers = new Set<string>();
    const guarded = new Set<string>();
    for (const s of j.steps) {
      for (const d of dirs) {
        if (s.run && new RegExp(`(bash|sh|source|exec|\\.)\\s+"?${d}`).test(s.run))
          problems.push(`job ${jobId}: step ${s.name} executes the other run's artifact`);
        if (s.run?.includes(`${d}/`) && s.id) readers.add(s.id);
      }
      if (isImageRefGuard(s))
        for (const r of readers) if (String(s.env!.IMAGE_REF).includes(`steps.${r}.`)) guarded.add(r);
      if (keelHop(s.uses)) {
        for (const r of readers) {
          if (JSON.stringify(s.with ?? {}).includes(`steps.${r}.outputs.image-ref`) && !guarded.has(r))
            problems.push(`job ${jobId}: ${s.name} reads the artifact's image reference before the repository guard`);
        }
      }
    }
  }
  return problems;
}

/** The comment lines written directly above a line (the trigger's guards). */
function commentAbove(lines: string[], at: number): string[] {
  const out: string[] = [];
  for (let i = at - 1; i >= 0 && /^\s*#/.test(lines[i]!); i--) out.unshift(lines[i]!);
  return out;
}

function triggerProblems(wf: YWorkflow, text: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  for (const t of ['workflow_run', 'pull_request_target']) {
    if (!(t in wf.on)) continue;
    const comment = commentAbove(lines, lines.indexOf(`  ${t}:`)).join('\n');
    if (!/\bGuards\b/.test(comment)) problems.push(`${t}: no comment next to the trigger naming its guards`);
  }
  const readsOtherRuns = Object.values(wf.jobs).some((j) => j.steps.some((s) => s.with?.['run-id'] !== undefined));
  if ('workflow_run' in wf.on || readsOtherRuns) problems.push(...workflowRunProblems(wf));
  if ('pull_request_target' in wf.on) {
    for (const [jobId, j] of Object.entries(wf.jobs))
      for (const s of j.steps)
        if (JSON.stringify(s.with ?? {}).includes('github.event.pull_request.head'))
          problems.push(`job ${jobId}: pull_request_target checks out or uses the pull request's head`);
  }
  return problems;
}

/** Every problem a workflow linter would report, prefixed with the file name. */
export function lintWorkflow(file: string, text: string): string[] {
  const wf = parse(text) as YWorkflow;
  const problems = [
    ...(JSON.stringify(wf.permissions) === '{}' ? [] : ['workflow-level permissions are not {}']),
    ...pinProblems(text, file.startsWith('reusable-') || Boolean(wf.on.workflow_call)),
    ...textProblems(text),
    ...triggerProblems(wf, text),
    ...(wf.on.workflow_call && wf.concurrency ? ['a reusable workflow has workflow-level concurrency'] : []),
    ...Object.entries(wf.jobs).flatMap(([id, j]) => [...jobProblems(wf, id, j), ...dispatchedRefProblems(id, j)]),
  ];
  return problems.map((p) => `${file}: ${p}`);
}

// ---------------------------------------------------------------------------------------------
// Model-level: pull requests and environments

const PR_SECRETS: readonly string[] = Object.values(PR_SIGNING_SECRETS);
/** Secrets a caller passes to a reusable workflow, read by jobs outside any environment. */
const CALLER_SECRETS: readonly string[] = [BUILD_SECRETS];
/** Secrets a pull request must never read: all but the run token and the pull-request key. */
const isPrivateSecret = (name: string) => name !== 'GITHUB_TOKEN' && !PR_SECRETS.includes(name);
export const isReleaseSecret = (name: string) => isPrivateSecret(name) && !CALLER_SECRETS.includes(name);

const jobExprs = (j: Job): Expr[] => [
  ...j.steps.flatMap((s) => [...stepExprs(s)]),
  ...Object.values(j.env ?? {}),
  ...Object.values<Expr>(j.outputs),
];

/** Every secret a job's steps and job-level values read. */
export function secretsOf(j: Job): Set<string> {
  const out = new Set<string>();
  for (const e of jobExprs(j)) for (const x of walkExpr(e)) if (x.kind === 'secret') out.add(x.name);
  return out;
}

/** The secrets a pull-request run of the job can read: those outside any `a && b` ruling pull requests out. */
export function secretsOnPullRequest(j: Job): Set<string> {
  const nodes = jobExprs(j).flatMap((e) => [...walkExpr(e)]);
  const guarded = new Set<Expr>();
  for (const x of nodes) if (x.kind === 'and' && excludesPullRequests(x)) for (const y of walkExpr(x)) guarded.add(y);
  return new Set(nodes.flatMap((x) => (x.kind === 'secret' && !guarded.has(x) ? [x.name] : [])));
}

const isEventName = (e: Expr) => e.kind === 'github' && e.path === 'event_name';
const lit = (e: Expr) => (e.kind === 'literal' ? e.value : undefined);

/** True when the condition is false for every pull_request event (a top-level conjunct says so). */
export function excludesPullRequests(e: Expr | undefined): boolean {
  if (!e) return false;
  if (e.kind === 'and') return e.items.some(excludesPullRequests);
  if (e.kind === 'ne' && isEventName(e.left)) return lit(e.right) === 'pull_request';
  if (e.kind === 'eq' && isEventName(e.left)) return lit(e.right) !== 'pull_request';
  // !startsWith(github.event_name, 'pull_request'): every pull_request* event.
  if (e.kind === 'not' && e.item.kind === 'starts-with' && isEventName(e.item.text))
    return lit(e.item.prefix) === 'pull_request';
  return false;
}

const usesStatus = (e: Expr | undefined) => Boolean(e && [...walkExpr(e)].some((x) => x.kind === 'status'));

/** Whether a pull_request event (directly, or through a caller of a reusable workflow) can run the job. */
export function runnableOnPullRequest(wf: Workflow, j: Job): boolean {
  const on = wf.on as Record<string, unknown>;
  if (!on.pull_request && !on.pull_request_target && !on.workflow_call) return false;
  if (excludesPullRequests(j.if)) return false;
  if (usesStatus(j.if)) return true;
  return j.needs.every((n) =>
    runnableOnPullRequest(
      wf,
      wf.jobs.find((x) => x.id === n)!,
    ),
  );
}

export interface Environments {
  release: Expr;
  pullRequests?: Expr;
}

const same = (a: Expr | undefined, b: Expr | undefined) => JSON.stringify(a) === JSON.stringify(b);

/** No job a pull request can run reads a release secret or enters the release environment. */
export function pullRequestProblems(wf: Workflow, envs: Environments): string[] {
  const problems: string[] = [];
  for (const j of wf.jobs) {
    if (!runnableOnPullRequest(wf, j)) continue;
    const release = [...secretsOnPullRequest(j)].filter(isPrivateSecret);
    if (release.length) problems.push(`${wf.file}: job ${j.id} runs for pull requests and reads ${release.join(', ')}`);
    if (same(j.environment, envs.release))
      problems.push(`${wf.file}: job ${j.id} runs for pull requests in the release environment`);
  }
  return problems;
}

/** Every job reading a secret other than GITHUB_TOKEN declares the environment that holds it. */
export function environmentProblems(wf: Workflow, envs: Environments): string[] {
  const problems: string[] = [];
  for (const j of wf.jobs) {
    const secrets = [...secretsOf(j)].filter((s) => s !== 'GITHUB_TOKEN');
    const moves = j.steps.some((s) => s.type === 'keel' && s.hop === 'promote');
    const wantsRelease = moves || secrets.some(isReleaseSecret);
    const wantsPr = secrets.some((s) => PR_SECRETS.includes(s));
    if (wantsRelease && wantsPr) problems.push(`${wf.file}: job ${j.id} mixes release and pull-request secrets`);
    if (wantsRelease && !same(j.environment, envs.release))
      problems.push(`${wf.file}: job ${j.id} reads release secrets or moves stable outside the release environment`);
    if (wantsPr && (!j.environment || !same(j.environment, envs.pullRequests)))
      problems.push(`${wf.file}: job ${j.id} reads the pull-request key outside its environment`);
  }
  return problems;
}
