import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadActionSpecs, type ActionSpec } from '../../workflows-src/action-specs.js';

/** The committed workflows, read as YAML (what GitHub reads), for the invariant tests. */
export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const workflowsDir = path.join(root, '.github', 'workflows');

export interface YStep {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
  run?: string;
  shell?: string;
}
export interface YJob {
  name?: string;
  needs?: string[] | string;
  if?: string;
  'runs-on'?: string;
  'timeout-minutes'?: number;
  permissions?: Record<string, string>;
  environment?: string;
  concurrency?: { group: string; 'cancel-in-progress': boolean | string };
  strategy?: { 'fail-fast'?: boolean; matrix?: { include?: Record<string, string>[] } };
  outputs?: Record<string, string>;
  steps: YStep[];
}
export interface YWorkflow {
  name: string;
  on: Record<string, unknown>;
  permissions: Record<string, string>;
  concurrency?: { group: string; 'cancel-in-progress': boolean | string };
  jobs: Record<string, YJob>;
}

export function workflowFiles(): string[] {
  return fs.existsSync(workflowsDir)
    ? fs
        .readdirSync(workflowsDir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
    : [];
}
export const readText = (file: string) => fs.readFileSync(path.join(workflowsDir, file), 'utf8');
export const readWorkflow = (file: string) => parse(readText(file)) as YWorkflow;

export const actionSpecs = (): Map<string, ActionSpec> => new Map(loadActionSpecs().map((s) => [s.hop, s]));

/** The Keel hop a `uses:` names: `./actions/<hop>` or `keel-project/keel/actions/<hop>@<ref>`. */
export function keelHop(uses: string | undefined): string | undefined {
  if (!uses) return undefined;
  return (
    /^\.\/actions\/([a-z0-9-]+)$/.exec(uses)?.[1] ?? /^keel-project\/keel\/actions\/([a-z0-9-]+)@[^@]+$/.exec(uses)?.[1]
  );
}

export const needsOf = (j: YJob) => (j.needs === undefined ? [] : Array.isArray(j.needs) ? j.needs : [j.needs]);

/** Every string under a value, with its key path. */
export function* strings(v: unknown, at: string[] = []): Generator<[string[], string]> {
  if (typeof v === 'string') yield [at, v];
  else if (Array.isArray(v)) for (const [i, x] of v.entries()) yield* strings(x, [...at, String(i)]);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) yield* strings(x, [...at, k]);
}

/** Outputs a run step writes to $GITHUB_OUTPUT (`echo "name=…"` or a `name<<delim` block). */
export function runOutputs(run: string): string[] {
  return [...run.matchAll(/echo "([A-Za-z0-9_-]+)(?:=|<<)/g)].map((m) => m[1]!);
}
