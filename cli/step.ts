import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { keelHome } from './home.js';

/**
 * Runs a bundled action exactly the way the GitHub runner does: inputs as `INPUT_<NAME>`
 * (upper-cased, spaces → '_', hyphens kept), outputs through the `GITHUB_OUTPUT` file,
 * the job summary through `GITHUB_STEP_SUMMARY`, the event through `GITHUB_EVENT_NAME` /
 * `GITHUB_EVENT_PATH`, scratch space in `RUNNER_TEMP`. Used by the test harness and by
 * `keel run` (the local runner), so both exercise the same committed bundles.
 */
export interface StepRequest {
  /** The hop name (dist/<hop>/index.js) or an absolute path to a bundle. */
  action: string;
  inputs?: Record<string, string | number | boolean | undefined>;
  env?: Record<string, string | undefined>;
  eventName?: string;
  event?: Record<string, unknown>;
  cwd?: string;
  runnerTemp?: string;
  timeoutMs?: number;
  /** Streams the action's stdout lines as they arrive (progress in the local runner). */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

export interface Annotation {
  level: 'error' | 'warning' | 'notice' | 'debug';
  message: string;
}

export interface StepResult {
  code: number;
  outputs: Record<string, string>;
  annotations: Annotation[];
  stdout: string;
  stderr: string;
  summary: string;
  /** Values the action masked with setSecret (`::add-mask::`). */
  masked: string[];
  ms: number;
}

/** Keel's installation (where dist/<hop>/ lives): the checkout, or the installed package. */
export const repoRoot = keelHome;

export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/** Parses the GITHUB_OUTPUT file (`name=value` and `name<<DELIM … DELIM` forms). */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i] ?? '');
      out[name as string] = value.join('\n');
    } else if (line.includes('=')) {
      const j = line.indexOf('=');
      out[line.slice(0, j)] = line.slice(j + 1);
    }
  }
  return out;
}

function unescapeData(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

export function parseAnnotations(stdout: string): { annotations: Annotation[]; masked: string[] } {
  const annotations: Annotation[] = [];
  const masked: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^::(error|warning|notice|debug|add-mask)(?: [^:]*)?::(.*)$/.exec(line);
    if (!m) continue;
    const msg = unescapeData(m[2] ?? '');
    if (m[1] === 'add-mask') masked.push(msg);
    else annotations.push({ level: m[1] as Annotation['level'], message: msg });
  }
  return { annotations, masked };
}

export async function runStep(req: StepRequest): Promise<StepResult> {
  const bundle = path.isAbsolute(req.action) ? req.action : path.join(keelHome, 'dist', req.action, 'index.js');
  if (!fs.existsSync(bundle)) throw new Error(`no bundle at ${bundle} (run npm run build)`);
  const runnerTemp = req.runnerTemp ?? fs.mkdtempSync(path.join(os.tmpdir(), 'keel-runner-'));
  fs.mkdirSync(runnerTemp, { recursive: true });
  const id = crypto.randomUUID();
  const outFile = path.join(runnerTemp, `output-${id}`);
  const summaryFile = path.join(runnerTemp, `summary-${id}`);
  const eventFile = path.join(runnerTemp, `event-${id}.json`);
  fs.writeFileSync(outFile, '');
  fs.writeFileSync(summaryFile, '');
  fs.writeFileSync(eventFile, JSON.stringify(req.event ?? {}));

  const env: NodeJS.ProcessEnv = {};
  // The runner passes its own environment through; drop INPUT_* leaking from the caller.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('INPUT_')) env[k] = v;
  Object.assign(env, {
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    GITHUB_OUTPUT: outFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_EVENT_NAME: req.eventName ?? 'workflow_dispatch',
    GITHUB_EVENT_PATH: eventFile,
    RUNNER_TEMP: runnerTemp,
    RUNNER_OS: 'Linux',
    GITHUB_WORKSPACE: req.cwd ?? repoRoot,
  });
  for (const [k, v] of Object.entries(req.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  for (const [k, v] of Object.entries(req.inputs ?? {})) {
    if (v !== undefined) env[inputEnvName(k)] = String(v);
  }

  const t0 = Date.now();
  return new Promise<StepResult>((resolve, reject) => {
    const child = spawn(process.execPath, [bundle], {
      cwd: req.cwd ?? repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (d: Buffer) => {
      const s = d.toString();
      stdout += s;
      if (req.onLine) {
        partial += s;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) req.onLine(l);
      }
    });
    child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    const timer = req.timeoutMs ? setTimeout(() => child.kill('SIGTERM'), req.timeoutMs) : undefined;
    const onAbort = () => child.kill('SIGTERM');
    req.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      const { annotations, masked } = parseAnnotations(stdout);
      resolve({
        code: code ?? (signal ? 128 : 1),
        outputs: parseOutputFile(fs.readFileSync(outFile, 'utf8')),
        annotations,
        masked,
        stdout,
        stderr,
        summary: fs.readFileSync(summaryFile, 'utf8'),
        ms: Date.now() - t0,
      });
    });
  });
}
