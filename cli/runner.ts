import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { processRunner } from '../actions/lib/exec.js';
import { releaseDateOf } from '../actions/lib/tags.js';
import { evaluateCondition, evaluateString, type EvalContext, type Expr } from '../workflows-src/expr.js';
import type { Job, LocalHint, Step, Workflow } from '../workflows-src/model.js';
import type { LocalServices } from './services/index.js';
import { Redactor } from './redact.js';
import { repoRoot, runStep, type StepResult } from './step.js';

/**
 * `keel run`: executes a generated workflow on this machine. It walks the same model the YAML is
 * rendered from (jobs in dependency order, steps in order), evaluates the same structured
 * expressions, and runs every Keel hop as the committed bundle in dist/, the runner's way
 * (INPUT_*, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY). Non-Keel steps are replaced by what their local
 * hint says (artifacts become directories, the release date is computed once). The only
 * differences from GitHub are the local services: a loopback registry (plain HTTP), a generated
 * signing key, and emulators for the Internet Archive and the site's GitHub API.
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
  log: (line: string) => void;
  /** Streams hop output lines (progress). */
  verbose?: boolean;
}

const HINTED = (s: Step): s is Extract<Step, { local: LocalHint }> => s.type !== 'keel';

/** Local stand-ins for what GitHub gives a hop: loopback registry, generated key, emulators. */
export function localOverrides(
  hop: string,
  inputs: Record<string, string>,
  svc: LocalServices,
  declared: Set<string>,
): Record<string, string> {
  const o: Record<string, string> = { ...inputs };
  const set = (k: string, v: string) => {
    if (declared.has(k)) o[k] = v;
  };
  set('tls-verify', 'false');
  if (declared.has('username')) o.username = '';
  if (hop !== 'sign' && declared.has('password')) o.password = '';
  if (declared.has('registry-password')) o['registry-password'] = '';
  switch (hop) {
    case 'sign':
      o['private-key'] = fs.readFileSync(svc.keys.privateKeyPath, 'utf8');
      o.password = svc.keys.password;
      o['public-key'] = svc.keys.publicKeyPath;
      break;
    case 'verify':
    case 'smoke-boot':
    case 'promote':
    case 'sysext':
      if (o['public-key'] !== undefined) o['public-key'] = svc.keys.publicKeyPath;
      break;
    case 'ia-upload':
      o['s3-endpoint'] = svc.ia.s3Url;
      o['api-endpoint'] = svc.ia.apiUrl;
      o['access-key'] = svc.iaKeys.access;
      o['secret-key'] = svc.iaKeys.secret;
      set('poll-interval', '1');
      set('torrent-timeout', '300');
      break;
    case 'site-bump':
      o['api-url'] = svc.github.url;
      o.token = svc.githubToken;
      break;
  }
  return o;
}

function declaredInputs(hop: string): Set<string> {
  const yml = fs.readFileSync(path.join(repoRoot, 'actions', hop, 'action.yml'), 'utf8');
  const inputs = /\ninputs:\n([\s\S]*?)\n(?:outputs|runs):/.exec(yml)?.[1] ?? '';
  return new Set([...inputs.matchAll(/^ {2}([a-z0-9-]+):\s*$/gm)].map((m) => m[1]!));
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

function gitHead(): string {
  const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/**
 * The job's workspace: like GitHub's fresh checkout, a copy of the repository's files (tracked
 * and untracked-but-not-ignored, so local edits are what runs), isolated from other jobs.
 */
function checkout(workspace: string): void {
  fs.mkdirSync(workspace, { recursive: true });
  const r = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: repoRoot,
    encoding: 'buffer',
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(`git ls-files failed: ${r.stderr.toString()}`);
  for (const rel of r.stdout.toString('utf8').split('\0').filter(Boolean)) {
    const src = path.join(repoRoot, rel);
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

export async function runWorkflow(opts: RunOptions): Promise<RunRecord> {
  // Keep room for this run: the older ones go first, never one started in this invocation
  // (a later workflow may read an earlier one's artefacts, and KEEP_RUNS exceeds a demo's runs).
  pruneRuns(opts.runsDir, KEEP_RUNS - 1);
  const id = `${Date.now().toString(36)}-${crypto.randomBytes(3).toString('hex')}`;
  const dir = path.join(opts.runsDir, id);
  fs.mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
  const wf = opts.workflow;
  const record: RunRecord = { id, workflow: wf.file, event: opts.event, dir, jobs: {}, ok: true, ms: 0 };
  const t0 = Date.now();
  const releaseDate = opts.releaseDate ?? releaseDateOf(new Date());
  const sha = gitHead();
  const payload = opts.eventPayload ?? {};
  const githubCtx: Record<string, unknown> = {
    event_name: opts.event,
    event: payload,
    repository: opts.repository,
    repository_owner: opts.repository.split('/')[0],
    actor: 'keel-local',
    run_id: id,
    run_attempt: '1',
    sha,
    ref: 'refs/heads/main',
    ref_name: 'main',
    server_url: 'http://localhost',
    workspace: dir,
  };
  // github.* paths, with `*` mapping over arrays (pull_request.labels.*.name).
  const get = (root: unknown, parts: string[]): unknown => {
    let v = root;
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === '*') return Array.isArray(v) ? v.map((x) => get(x, parts.slice(i + 1))) : undefined;
      v = (v as Record<string, unknown> | undefined)?.[parts[i]!];
    }
    return v;
  };
  const lookup = (p: string): unknown => get(githubCtx, p.split('.'));
  const secrets: Record<string, string> = {
    GITHUB_TOKEN: '',
    COSIGN_PRIVATE_KEY: fs.readFileSync(opts.services.keys.privateKeyPath, 'utf8'),
    COSIGN_PASSWORD: opts.services.keys.password,
    IA_ACCESS_KEY: opts.services.iaKeys.access,
    IA_SECRET_KEY: opts.services.iaKeys.secret,
    SITE_BUMP_TOKEN: opts.services.githubToken,
  };
  const redact = new Redactor(Object.values(secrets));
  const log = (s: string) => opts.log(redact.apply(s));
  log(`\n▶ ${wf.name} (${wf.file}) — event ${opts.event}, run ${id}`);

  for (const job of topo(wf.jobs)) {
    const jr: JobRecord = { name: job.name, result: 'success', outputs: {}, steps: {}, order: [], ms: 0 };
    record.jobs[job.id] = jr;
    const tj = Date.now();
    const needsOk = job.needs.every((n) => record.jobs[n]?.result === 'success');
    const ctx = (stepsOf: Record<string, StepRecord>, status: 'success' | 'failure'): EvalContext => ({
      stepOutput: (s, o) => stepsOf[s]?.outputs[o],
      jobOutput: (j, o) => record.jobs[j]?.outputs[o],
      jobResult: (j) => record.jobs[j]?.result,
      secret: (n) => secrets[n],
      input: (n) => opts.inputs?.[n],
      github: lookup,
      env: (n) => process.env[n],
      status,
    });
    if (!needsOk || (job.if && !evaluateCondition(job.if, ctx({}, 'success')))) {
      jr.result = 'skipped';
      log(`  ⏭  job ${job.id}: skipped (${!needsOk ? 'a needed job did not succeed' : 'its condition is false'})`);
      continue;
    }
    log(`  ▶ job ${job.id}: ${job.name}`);
    const jobTemp = path.join(dir, 'jobs', job.id, 'temp');
    const workspace = path.join(dir, 'jobs', job.id, 'workspace');
    fs.mkdirSync(jobTemp, { recursive: true });
    checkout(workspace);
    const inWs = (p: string) => (path.isAbsolute(p) ? p : path.join(workspace, p));
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
      const c = ctx(jr.steps, status);
      const runIt = step.if ? evaluateCondition(step.if, c) : status === 'success';
      if (!runIt) {
        rec.result = 'skipped';
        continue;
      }
      const ts = Date.now();
      try {
        if (step.type === 'keel') {
          const raw: Record<string, string> = {};
          for (const [k, v] of Object.entries(step.with)) raw[k] = evaluateString(v, c);
          const inputs = localOverrides(step.hop, raw, opts.services, declaredInputs(step.hop));
          log(`    · ${step.hop}: ${step.name}`);
          const r: StepResult = await runStep({
            action: step.hop,
            inputs,
            eventName: opts.event,
            event: payload,
            runnerTemp: jobTemp,
            cwd: workspace,
            env: {
              GITHUB_WORKSPACE: workspace,
              GITHUB_REPOSITORY: opts.repository,
              GITHUB_SHA: sha,
              GITHUB_RUN_ID: id,
              KEEL_RETRY_BASE_MS: process.env.KEEL_RETRY_BASE_MS,
            },
            onLine: (l) => {
              if (redact.command(l)) return; // a mask applies from the line that declares it on
              if (opts.verbose && !l.startsWith('::debug')) log(`      | ${l}`);
            },
          });
          for (const m of r.masked) redact.add(m);
          rec.outputs = r.outputs;
          rec.summary = redact.apply(r.summary);
          fs.writeFileSync(
            path.join(dir, 'jobs', job.id, `${sid}.log`),
            redact.apply(`${r.stdout}\n--- stderr ---\n${r.stderr}`),
          );
          for (const a of r.annotations) if (a.level === 'warning') log(`      ⚠ ${a.message.split('\n')[0]}`);
          if (r.code !== 0) {
            const errs = r.annotations.filter((a) => a.level === 'error').map((a) => a.message);
            throw new Error(
              errs.join('\n') || `exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join(' ')}`,
            );
          }
        } else if (HINTED(step)) {
          rec.outputs = await runHint(step.local, c, { inWs, dir, runsDir: opts.runsDir, releaseDate, log, step });
        }
        rec.ms = Date.now() - ts;
        if (rec.hop) log(`      ✔ ${elapsed(rec.ms)}`);
      } catch (e) {
        rec.ms = Date.now() - ts;
        rec.result = 'failure';
        rec.error = redact.apply((e as Error).message);
        log(`      ✘ ${step.name} failed after ${elapsed(rec.ms)}: ${rec.error.split('\n').slice(0, 4).join(' | ')}`);
        if (!step.continueOnError) status = 'failure';
      }
    }
    jr.result = status;
    const c = ctx(jr.steps, status);
    for (const [k, v] of Object.entries(job.outputs as Record<string, Expr>)) jr.outputs[k] = evaluateString(v, c);
    jr.ms = Date.now() - tj;
    log(`  ${status === 'success' ? '✔' : '✘'} job ${job.id} ${status} in ${elapsed(jr.ms)}`);
    if (status !== 'success') record.ok = false;
  }
  record.ms = Date.now() - t0;
  fs.writeFileSync(path.join(dir, 'run.json'), redact.apply(JSON.stringify(record, null, 2)));
  const summaries = Object.values(record.jobs).flatMap((j) => j.order.map((s) => j.steps[s]!.summary).filter(Boolean));
  fs.writeFileSync(path.join(dir, 'summary.md'), summaries.join('\n'));
  return record;
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
      x.log(`    · base image: ${h.script} (cached by its inputs)`);
      const t = Date.now();
      await processRunner().run('bash', [path.join(repoRoot, h.script), ...h.args], {
        cwd: repoRoot,
        stdout: 'ignore',
        timeoutMs: 3600_000,
      });
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
    case 'expand-templates': {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(h.templates)) out[k] = evaluateString(v, c);
      return out;
    }
  }
}
