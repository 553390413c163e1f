import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isValidYmd } from '../actions/lib/inputs.js';
import { releaseDateOf } from '../actions/lib/tags.js';
import { imageRefProblem } from '../workflows-src/common.js';
import { evaluateCondition, evaluateString, walkExpr, type EvalContext, type Expr } from '../workflows-src/expr.js';
import { KEEL_ACTIONS } from '../workflows-src/actions.generated.js';
import type { Job, LocalHint, Step, Workflow } from '../workflows-src/model.js';
import type { LocalServices } from './services/index.js';
import { Redactor } from '../actions/lib/redact.js';
import { bootstrapBase } from './base-bootstrap.js';
import { keelHome } from './home.js';
import { runStep, type StepResult } from './step.js';

/**
 * `keel run`: executes a generated workflow on this machine. It walks the same model the YAML is
 * rendered from (jobs in dependency order, steps in order), evaluates the same structured
 * expressions, and runs every Keel hop as the committed bundle in dist/, the runner's way
 * (INPUT_*, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY). Non-Keel steps are replaced by what their local
 * hint says (artifacts become directories, the release date is computed once). The only
 * differences from GitHub are the local services: a loopback registry (plain HTTP), a generated
 * signing key, and emulators for the Internet Archive and the site's GitHub API. As on GitHub with
 * the secrets kept in an environment, a job sees secrets other than GITHUB_TOKEN only when it
 * declares an environment.
 */
export type EventName = 'push' | 'pull_request' | 'workflow_dispatch' | 'workflow_run' | 'schedule';

export interface StepRecord {
  name: string;
  hop?: string;
  result: 'success' | 'failure' | 'skipped';
  ms: number;
  outputs: Record<string, string>;
  summary?: string;
  error?: string;
}

export interface JobRecord {
  name: string;
  result: 'success' | 'failure' | 'skipped';
  outputs: Record<string, string>;
  steps: Record<string, StepRecord>;
  order: string[];
  ms: number;
}

export interface RunRecord {
  id: string;
  workflow: string;
  event: EventName;
  dir: string;
  jobs: Record<string, JobRecord>;
  ok: boolean;
  ms: number;
}

export interface RunOptions {
  workflow: Workflow;
  event: EventName;
  eventPayload?: Record<string, unknown>;
  inputs?: Record<string, string>;
  services: LocalServices;
  runsDir: string;
  /** Shared by the runs of one session (the demo): the same UTC date everywhere. */
  releaseDate?: string;
  repository: string;
  /** The distro repository each job checks out (default: Keel's own checkout, the example distro). */
  projectDir?: string;
  log: (line: string) => void;
  /** Streams hop output lines (progress). */
  verbose?: boolean;
  /** `--variant`: run only this image variant's leg of every variant matrix. */
  variant?: string;
}

const HINTED = (s: Step): s is Extract<Step, { local: LocalHint }> => s.type !== 'keel';

/**
 * Local stand-ins for what GitHub gives a hop, decided by the inputs the hop declares (so a new
 * hop gets them without being listed here): the loopback registry (no credentials, plain HTTP),
 * the generated key's public half (where the workflow passes a public key, and for every gated hop
 * that declares allow-unsigned unless the workflow let it run unsigned), and the services the
 * emulators stand in for. Secrets are not overridden: they come from the job's (scoped) secrets.
 */
export function localOverrides(
  hop: string,
  inputs: Record<string, string>,
  svc: LocalServices,
  declared: Set<string>,
  repository = '',
): Record<string, string> {
  const o: Record<string, string> = { ...inputs };
  const set = (k: string, v: string) => {
    if (declared.has(k)) o[k] = v;
  };
  set('tls-verify', 'false');
  set('username', '');
  set('registry-password', '');
  if (declared.has('private-key')) {
    // private-key and its password come from the job's secrets.
    o['public-key'] = svc.keys.publicKeyPath;
  } else {
    set('password', '');
    const gated = declared.has('allow-unsigned') && o['allow-unsigned'] !== 'true';
    if (o['public-key'] !== undefined || gated) set('public-key', svc.keys.publicKeyPath);
  }
  Object.assign(o, SERVICE_INPUTS[hop]?.(svc, declared, repository) ?? {});
  return o;
}

/** The hops that talk to a service keel run emulates, and the inputs that point them at it. */
const SERVICE_INPUTS: Record<
  string,
  (svc: LocalServices, declared: Set<string>, repository: string) => Record<string, string>
> = {
  'ia-upload': (svc, declared) => ({
    's3-endpoint': svc.ia.s3Url,
    'api-endpoint': svc.ia.apiUrl,
    ...(declared.has('poll-interval') ? { 'poll-interval': '1' } : {}),
    ...(declared.has('torrent-timeout') ? { 'torrent-timeout': '300' } : {}),
  }),
  'site-bump': (svc) => ({ 'api-url': svc.github.url }),
  // GITHUB_TOKEN is empty locally: the emulator's token stands in for it. The release is made in
  // the emulator's copy of the run's repository, its tag on that copy's main (the local commit is
  // not in it).
  'github-release': (svc, _declared, repository) => ({
    'api-url': svc.github.url,
    token: svc.githubToken,
    ...(repository ? { repository: localReleaseRepository(svc, repository), 'target-commitish': 'main' } : {}),
  }),
  // This repository's Actions runs are the local runs recorded in the emulator; GITHUB_TOKEN is
  // empty locally, so the emulator's token stands in for it.
  watch: (svc) => ({ 'api-url': svc.github.url, token: svc.githubToken }),
};

/** The emulator's copy of the run's repository (created on first use, README only). */
function localReleaseRepository(svc: LocalServices, repository: string): string {
  if (!svc.github.state.repos.has(repository.toLowerCase()))
    svc.github.state.addRepo(repository, { files: { 'README.md': `# ${repository}\n` } });
  return repository;
}

/** The inputs a hop declares, from the metadata generated from its action.yml. */
export function declaredInputs(hop: string): Set<string> {
  const spec = (KEEL_ACTIONS as Record<string, { inputs: Record<string, unknown> } | undefined>)[hop];
  if (!spec) throw new Error(`keel run: no action metadata for ${hop} (run npm run generate)`);
  return new Set(Object.keys(spec.inputs));
}

function topo(jobs: Job[]): Job[] {
  const done = new Set<string>();
  const out: Job[] = [];
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const visit = (j: Job, stack: string[]) => {
    if (done.has(j.id)) return;
    if (stack.includes(j.id)) throw new Error(`job cycle: ${[...stack, j.id].join(' → ')}`);
    for (const n of j.needs) visit(byId.get(n)!, [...stack, j.id]);
    done.add(j.id);
    out.push(j);
  };
  for (const j of jobs) visit(j, []);
  return out;
}

/** The project's HEAD commit; '' when the project is not a git repository. */
function gitHead(projectDir: string): string {
  const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: projectDir, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** Run state and git metadata: never part of a job's checkout. */
const NOT_CHECKED_OUT = new Set(['.git', '.keel']);

/**
 * The project's files a checkout copies: with git, tracked and untracked-but-not-ignored (so
 * local edits are what runs); without git, every file but .git/ and .keel/.
 */
export function projectFiles(projectDir: string): string[] {
  const r = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: projectDir,
    encoding: 'buffer',
    maxBuffer: 1 << 28,
  });
  if (r.status === 0) return r.stdout.toString('utf8').split('\0').filter(Boolean);
  const isRepo = spawnSync('git', ['rev-parse', '--git-dir'], { cwd: projectDir }).status === 0;
  if (isRepo) throw new Error(`git ls-files failed in ${projectDir}: ${r.stderr.toString()}`);
  return fs
    .readdirSync(projectDir, { recursive: true, encoding: 'utf8' })
    .filter((rel) => !NOT_CHECKED_OUT.has(rel.split(path.sep)[0]!))
    .filter((rel) => !fs.lstatSync(path.join(projectDir, rel)).isDirectory());
}

/**
 * The job's workspace: like GitHub's fresh checkout, a copy of the project's files, isolated
 * from other jobs.
 */
function checkout(workspace: string, projectDir: string): void {
  fs.mkdirSync(workspace, { recursive: true });
  for (const rel of projectFiles(projectDir)) {
    const src = path.join(projectDir, rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(src);
    } catch {
      continue; // deleted in the working tree
    }
    const dest = path.join(workspace, rel);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(src), dest);
    else if (st.isFile()) fs.copyFileSync(src, dest);
  }
}

function copyInto(src: string, destDir: string): void {
  fs.mkdirSync(destDir, { recursive: true });
  const st = fs.statSync(src);
  if (st.isDirectory()) fs.cpSync(src, destDir, { recursive: true });
  else fs.copyFileSync(src, path.join(destDir, path.basename(src)));
}

const elapsed = (ms: number) =>
  ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;

/** Runs kept under .keel/runs (each holds its artefacts: ISOs, OCI layouts). */
export const KEEP_RUNS = 12;

/** Removes all but the newest `keep` run directories (ids sort by start time). */
export function pruneRuns(runsDir: string, keep = KEEP_RUNS): string[] {
  if (!fs.existsSync(runsDir)) return [];
  const ids = fs
    .readdirSync(runsDir)
    .filter((n) => /^[0-9a-z]+-[0-9a-f]{6}$/.test(n))
    .sort();
  const old = ids.slice(0, Math.max(0, ids.length - keep));
  for (const n of old) fs.rmSync(path.join(runsDir, n), { recursive: true, force: true });
  return old;
}

/** What every job and step of one run shares. */
interface RunState {
  opts: RunOptions;
  id: string;
  dir: string;
  record: RunRecord;
  releaseDate: string;
  sha: string;
  payload: Record<string, unknown>;
  /** `github.*` paths, with `*` mapping over arrays (pull_request.labels.*.name). */
  github: (path: string) => unknown;
  secrets: Record<string, string>;
  redact: Redactor;
  log: (line: string) => void;
}

export async function runWorkflow(opts: RunOptions): Promise<RunRecord> {
  const run = startRun(opts);
  const t0 = Date.now();
  run.log(`\n▶ ${opts.workflow.name} (${opts.workflow.file}) — event ${opts.event}, run ${run.id}`);
  for (const job of topo(opts.workflow.jobs)) {
    const jr = job.strategy ? await runMatrixJob(job, run) : await runJob(job, run);
    if (jr.result === 'failure') run.record.ok = false;
  }
  run.record.ms = Date.now() - t0;
  writeRunFiles(run);
  return run.record;
}

/** Prunes old runs, creates this run's directory, and fixes what the whole run shares. */
function startRun(opts: RunOptions): RunState {
  // Keep room for this run: the older ones go first, never one started in this invocation
  // (a later workflow may read an earlier one's artefacts, and KEEP_RUNS exceeds a demo's runs).
  pruneRuns(opts.runsDir, KEEP_RUNS - 1);
  const id = `${Date.now().toString(36)}-${crypto.randomBytes(3).toString('hex')}`;
  const dir = path.join(opts.runsDir, id);
  fs.mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
  const sha = gitHead(opts.projectDir ?? keelHome);
  const payload = opts.eventPayload ?? {};
  const githubCtx: Record<string, unknown> = {
    event_name: opts.event,
    event: payload,
    repository: opts.repository,
    repository_owner: opts.repository.split('/')[0],
    actor: 'keel-local',
    workflow: opts.workflow.name,
    run_id: id,
    run_attempt: '1',
    sha,
    ref: 'refs/heads/main',
    ref_name: 'main',
    server_url: 'http://localhost',
    workspace: dir,
  };
  const get = (root: unknown, parts: string[]): unknown => {
    let v = root;
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === '*') return Array.isArray(v) ? v.map((x) => get(x, parts.slice(i + 1))) : undefined;
      v = (v as Record<string, unknown> | undefined)?.[parts[i]!];
    }
    return v;
  };
  const secrets: Record<string, string> = {
    GITHUB_TOKEN: '',
    COSIGN_PRIVATE_KEY: fs.readFileSync(opts.services.keys.privateKeyPath, 'utf8'),
    COSIGN_PASSWORD: opts.services.keys.password,
    IA_ACCESS_KEY: opts.services.iaKeys.access,
    IA_SECRET_KEY: opts.services.iaKeys.secret,
    SITE_BUMP_TOKEN: opts.services.githubToken,
    NTFY_URL: opts.services.ntfyTopicUrl,
    NTFY_TOKEN: '',
    SYSEXT_GPG_PRIVATE_KEY: opts.services.gpg.armored,
    SYSEXT_GPG_PASSPHRASE: '',
  };
  // GitHub's runner does not mask values shorter than 3 characters; neither does keel run.
  const redact = new Redactor(Object.values(secrets), { minLength: 3 });
  return {
    opts,
    id,
    dir,
    record: { id, workflow: opts.workflow.file, event: opts.event, dir, jobs: {}, ok: true, ms: 0 },
    releaseDate: opts.releaseDate ?? releaseDateOf(new Date()),
    sha,
    payload,
    github: (p) => get(githubCtx, p.split('.')),
    secrets,
    redact,
    log: (line) => opts.log(redact.apply(line)),
  };
}

/** The expression context of a job: its steps so far, the run's jobs, secrets, inputs, github. */
function contextOf(
  run: RunState,
  job: Job,
  steps: Record<string, StepRecord>,
  status: 'success' | 'failure',
  leg?: MatrixLeg,
): EvalContext {
  return {
    matrix: (k) => leg?.values[k],
    stepOutput: (s, o) => steps[s]?.outputs[o],
    jobOutput: (j, o) => run.record.jobs[j]?.outputs[o],
    jobResult: (j) => run.record.jobs[j]?.result,
    secret: (n) => (job.environment || n === 'GITHUB_TOKEN' ? run.secrets[n] : undefined),
    input: (n) => run.opts.inputs?.[n],
    github: run.github,
    runner: localRunnerContext,
    env: (n) => process.env[n],
    status,
  };
}

/**
 * `runner.*` in a local run: this machine is the user's own, so `runner.environment` is
 * `self-hosted` (steps that only make sense on a disposable GitHub-hosted runner, such as
 * free-disk, are skipped).
 */
export function localRunnerContext(key: string): string | undefined {
  const values: Record<string, string> = { environment: 'self-hosted', os: 'Linux' };
  return values[key];
}

/** One leg of a matrix job: its values and the name its record is kept under. */
interface MatrixLeg {
  values: Record<string, string>;
  id: string;
}

/** `--variant NAME` keeps the legs of that image variant; legs of other matrices (sysexts) all run. */
export const legSelected = (values: Record<string, string>, variant: string | undefined): boolean =>
  variant === undefined || values.variant === undefined || values.variant === variant;

/**
 * A matrix job: each leg runs as the job with its values (one after the other here; GitHub runs
 * them side by side), recorded as `<job> (<name or number>)`; the job's own record fails when
 * any leg failed. None is cancelled when another fails (fail-fast: false).
 */
async function runMatrixJob(job: Job, run: RunState): Promise<JobRecord> {
  const t0 = Date.now();
  const legs: JobRecord[] = [];
  for (const [i, values] of job.strategy!.include.entries()) {
    if (!legSelected(values, run.opts.variant)) continue;
    legs.push(await runJob(job, run, { values, id: `${job.id} (${values.name ?? values.variant ?? i + 1})` }));
  }
  const result = legs.some((l) => l.result === 'failure')
    ? 'failure'
    : legs.every((l) => l.result === 'skipped')
      ? 'skipped'
      : 'success';
  const jr: JobRecord = { name: job.name, result, outputs: {}, steps: {}, order: [], ms: Date.now() - t0 };
  run.record.jobs[job.id] = jr;
  return jr;
}

/** A condition holding a status function (`always()`, `failure()`, …) decides alone; any other is `success() && …`. */
const decidesItself = (cond: Expr | undefined) =>
  cond !== undefined && [...walkExpr(cond)].some((x) => x.kind === 'status');

/**
 * Whether a step runs: as on GitHub, after a failed step only one whose condition holds a
 * status function (the implicit `success() &&` of any other condition is false then).
 */
function stepRuns(step: Step, c: EvalContext, status: 'success' | 'failure'): boolean {
  if (status !== 'success' && !decidesItself(step.if)) return false;
  return !step.if || evaluateCondition(step.if, c);
}

/**
 * Whether a job runs: as on GitHub, a job whose condition holds no status function runs only
 * when every needed job succeeded; one whose condition does (`!cancelled()`, `always()`) decides
 * by the condition alone, with failure() true when a needed job did not succeed.
 */
function jobRuns(job: Job, run: RunState): { runs: boolean; why: string } {
  const needsOk = job.needs.every((n) => run.record.jobs[n]?.result === 'success');
  if (!needsOk && !decidesItself(job.if)) return { runs: false, why: 'a needed job did not succeed' };
  const ok = !job.if || evaluateCondition(job.if, contextOf(run, job, {}, needsOk ? 'success' : 'failure'));
  return { runs: ok, why: 'its condition is false' };
}

/** Runs one job (skipped when a needed job failed or its condition is false) in its own checkout. */
async function runJob(job: Job, run: RunState, leg?: MatrixLeg): Promise<JobRecord> {
  const jr: JobRecord = { name: job.name, result: 'success', outputs: {}, steps: {}, order: [], ms: 0 };
  const jid = leg?.id ?? job.id;
  run.record.jobs[jid] = jr;
  const tj = Date.now();
  const decision = jobRuns(job, run);
  if (!decision.runs) {
    jr.result = 'skipped';
    run.log(`  ⏭  job ${jid}: skipped (${decision.why})`);
    return jr;
  }
  const environment = job.environment ? evaluateString(job.environment, contextOf(run, job, {}, 'success', leg)) : '';
  run.log(`  ▶ job ${jid}: ${job.name}${environment ? ` (environment ${environment})` : ''}`);
  const jobDir = path.join(run.dir, 'jobs', jid.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/-+$/, ''));
  const workspace = path.join(jobDir, 'workspace');
  fs.mkdirSync(path.join(jobDir, 'temp'), { recursive: true });
  checkout(workspace, run.opts.projectDir ?? keelHome);
  let status: 'success' | 'failure' = 'success';
  for (const [i, step] of job.steps.entries()) {
    const sid = step.id ?? `step-${i + 1}`;
    jr.order.push(sid);
    const rec: StepRecord = {
      name: step.name,
      hop: step.type === 'keel' ? step.hop : undefined,
      result: 'success',
      ms: 0,
      outputs: {},
    };
    jr.steps[sid] = rec;
    const c = contextOf(run, job, jr.steps, status, leg);
    if (!stepRuns(step, c, status)) {
      rec.result = 'skipped';
      continue;
    }
    const failed = await runStepOf(step, rec, c, { run, jobDir, workspace, sid });
    if (failed && !step.continueOnError) status = 'failure';
  }
  jr.result = status;
  const c = contextOf(run, job, jr.steps, status, leg);
  for (const [k, v] of Object.entries(job.outputs as Record<string, Expr>)) jr.outputs[k] = evaluateString(v, c);
  jr.ms = Date.now() - tj;
  run.log(`  ${status === 'success' ? '✔' : '✘'} job ${jid} ${status} in ${elapsed(jr.ms)}`);
  return jr;
}

interface StepPlace {
  run: RunState;
  jobDir: string;
  workspace: string;
  sid: string;
}

/** Runs one step (a Keel hop, or the local stand-in of another action) into `rec`; true when it failed. */
async function runStepOf(step: Step, rec: StepRecord, c: EvalContext, at: StepPlace): Promise<boolean> {
  const { run, workspace } = at;
  const ts = Date.now();
  const inWs = (p: string) => (path.isAbsolute(p) ? p : path.join(workspace, p));
  try {
    if (step.type === 'keel') {
      await runKeelStep(step, rec, c, at);
    } else if (HINTED(step)) {
      rec.outputs = await runHint(step.local, c, {
        inWs,
        dir: run.dir,
        runsDir: run.opts.runsDir,
        releaseDate: run.releaseDate,
        log: run.log,
        step,
      });
    }
    rec.ms = Date.now() - ts;
    if (rec.hop) run.log(`      ✔ ${elapsed(rec.ms)}`);
    return false;
  } catch (e) {
    rec.ms = Date.now() - ts;
    rec.result = 'failure';
    rec.error = run.redact.apply((e as Error).message);
    run.log(`      ✘ ${step.name} failed after ${elapsed(rec.ms)}: ${rec.error.split('\n').slice(0, 4).join(' | ')}`);
    return true;
  }
}

/** Runs a Keel hop's bundle the runner's way, with the local stand-ins; its log is saved, masked. */
async function runKeelStep(step: Extract<Step, { type: 'keel' }>, rec: StepRecord, c: EvalContext, at: StepPlace) {
  const { run, jobDir, workspace, sid } = at;
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(step.with)) raw[k] = evaluateString(v, c);
  const inputs = localOverrides(step.hop, raw, run.opts.services, declaredInputs(step.hop), run.opts.repository);
  run.log(`    · ${step.hop}: ${step.name}`);
  const r: StepResult = await runStep({
    action: step.hop,
    inputs,
    eventName: run.opts.event,
    event: run.payload,
    runnerTemp: path.join(jobDir, 'temp'),
    cwd: workspace,
    env: {
      GITHUB_WORKSPACE: workspace,
      GITHUB_REPOSITORY: run.opts.repository,
      GITHUB_SHA: run.sha,
      GITHUB_RUN_ID: run.id,
      KEEL_RETRY_BASE_MS: process.env.KEEL_RETRY_BASE_MS,
    },
    onLine: (l) => {
      if (run.redact.command(l)) return; // a mask applies from the line that declares it on
      if (run.opts.verbose && !l.startsWith('::debug')) run.log(`      | ${l}`);
    },
  });
  for (const m of r.masked) run.redact.add(m);
  rec.outputs = r.outputs;
  rec.summary = run.redact.apply(r.summary);
  fs.writeFileSync(path.join(jobDir, `${sid}.log`), run.redact.apply(`${r.stdout}\n--- stderr ---\n${r.stderr}`));
  for (const a of r.annotations) if (a.level === 'warning') run.log(`      ⚠ ${a.message.split('\n')[0]}`);
  if (r.code !== 0) {
    const errs = r.annotations.filter((a) => a.level === 'error').map((a) => a.message);
    throw new Error(errs.join('\n') || `exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join(' ')}`);
  }
}

/** run.json (the record, masked) and summary.md (every step summary in order). */
function writeRunFiles(run: RunState): void {
  const { record, dir, redact } = run;
  fs.writeFileSync(path.join(dir, 'run.json'), redact.apply(JSON.stringify(record, null, 2)));
  const summaries = Object.values(record.jobs).flatMap((j) => j.order.map((s) => j.steps[s]!.summary).filter(Boolean));
  fs.writeFileSync(path.join(dir, 'summary.md'), summaries.join('\n'));
}

interface HintCtx {
  inWs: (p: string) => string;
  dir: string;
  runsDir: string;
  releaseDate: string;
  log: (s: string) => void;
  step: Step;
}

async function runHint(h: LocalHint, c: EvalContext, x: HintCtx): Promise<Record<string, string>> {
  switch (h.local) {
    case 'skip':
      return {};
    case 'release-date':
      return { 'release-date': x.releaseDate };
    case 'apt-install':
      return {};
    case 'bootstrap-base': {
      // The installed Keel's script, whichever project runs (a keel init --debian project has none).
      x.log(`    · base image: Keel's ${h.script} (cached by its inputs)`);
      const t = Date.now();
      await bootstrapBase(h, x.log);
      x.log(`      ✔ ${h.image} ready in ${elapsed(Date.now() - t)}`);
      return {};
    }
    case 'write-files': {
      const d = x.inWs(h.dir);
      fs.mkdirSync(d, { recursive: true });
      for (const [name, v] of Object.entries(h.files))
        fs.writeFileSync(path.join(d, name), `${evaluateString(v, c)}\n`);
      return {};
    }
    case 'read-files': {
      const out: Record<string, string> = {};
      for (const [name, spec] of Object.entries(h.outputs)) {
        const v = fs
          .readFileSync(path.join(x.inWs(h.dir), spec.file), 'utf8')
          .split('\n')[0]!
          .trim();
        if (!new RegExp(spec.pattern).test(v))
          throw new Error(`hand-off file ${spec.file} holds ${JSON.stringify(v)}, not ${spec.pattern}`);
        out[name] = v;
      }
      return out;
    }
    case 'artifact-upload': {
      const name = evaluateString(h.name, c);
      const dest = path.join(x.dir, 'artifacts', name);
      for (const p of h.paths) copyInto(x.inWs(evaluateString(p, c)), dest);
      x.log(`    · artifact ${name} stored (${fs.readdirSync(dest).join(', ')})`);
      return {};
    }
    case 'artifact-download': {
      const name = evaluateString(h.name, c);
      const runId = h.runId ? evaluateString(h.runId, c) : path.basename(x.dir);
      const src = path.join(x.runsDir, runId, 'artifacts', name);
      if (!fs.existsSync(src)) throw new Error(`artifact ${name} not found in run ${runId}`);
      copyInto(src, x.inWs(h.path));
      return {};
    }
    case 'check-image-ref': {
      const problem = imageRefProblem(evaluateString(h.ref, c), evaluateString(h.repository, c));
      if (problem) throw new Error(`${problem}: refused before any registry call`);
      return {};
    }
    case 'check-date':
      if (!isValidYmd(evaluateString(h.value, c))) throw new Error(`${h.name} must be a calendar date YYYYMMDD`);
      return {};
    case 'expand-templates': {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(h.templates)) out[k] = evaluateString(v, c);
      return out;
    }
  }
}
