import fs from 'node:fs';
import { errorMessage } from '../../lib/errors.js';
import { readImageFacts } from '../../lib/image/created.js';
import type { RegistryClient } from '../../lib/oci/client.js';
import type { BuildCheck } from './rerun.js';

/**
 * What the watch writes to status.json: the released and candidate images (digest, build time,
 * age), whether `stable` is too old, the last boot verdict and the build check. The age comes
 * from the image's org.opencontainers.image.created label, else its config's created.
 */
export interface ImageStatus {
  tag: string;
  digest?: string;
  created?: string;
  createdFrom?: 'label' | 'config';
  version?: string;
  ageDays?: number;
  /** Why there is no age: not found, unreadable, no build date. */
  problem?: string;
}

export type State = 'fresh' | 'stale' | 'critical' | 'unreadable';

export interface BootStatus {
  verdict: 'passed' | 'failed' | 'unknown';
  digest?: string;
  reason?: string;
  source: string;
}

export interface WatchStatus {
  schemaVersion: 1;
  generatedAt: string;
  image: string;
  maxAgeDays: number;
  state: State;
  stale: boolean;
  stable: ImageStatus;
  candidate: ImageStatus;
  boot: BootStatus | null;
  build: {
    workflow: string;
    branch: string;
    runId?: number;
    runUrl?: string;
    conclusion?: string | null;
    attempt?: number;
    rerun: boolean;
    decision: string;
  } | null;
}

const DAY = 86_400_000;

/** Reads one tag; never throws (an unreadable image is a state the watch reports, not a crash). */
export async function imageStatus(client: RegistryClient, repo: string, tag: string, now: Date): Promise<ImageStatus> {
  try {
    const m = await client.findManifest(repo, tag);
    if (!m) return { tag, problem: 'not found' };
    const facts = await readImageFacts(client, repo, m);
    const base = { tag, digest: m.digest, version: facts.labels['org.opencontainers.image.version'] };
    if (!facts.created) return { ...base, problem: 'no build date (created label or config created)' };
    return {
      ...base,
      created: facts.created.toISOString(),
      createdFrom: facts.createdFrom,
      ageDays: Math.floor((now.getTime() - facts.created.getTime()) / DAY),
    };
  } catch (e) {
    return { tag, problem: `unreadable: ${errorMessage(e)}` };
  }
}

/** fresh ≤ max < stale ≤ 2×max < critical; no age at all is unreadable (it alarms too). */
export function stateOf(stable: ImageStatus, maxAgeDays: number): State {
  if (stable.ageDays === undefined) return 'unreadable';
  if (stable.ageDays > 2 * maxAgeDays) return 'critical';
  return stable.ageDays > maxAgeDays ? 'stale' : 'fresh';
}

/**
 * The last boot verdict: the `boot-verdict` input wins; else a JSON file, either smoke-boot's
 * outputs (`passed`, `digest`, `reason`) or an earlier status.json (its `boot`).
 */
export function bootStatus(verdict: string, file: string): { boot: BootStatus | null; warning?: string } {
  if (verdict) return { boot: { verdict: verdict as BootStatus['verdict'], source: 'input boot-verdict' } };
  if (!file) return { boot: null };
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return {
      boot: null,
      warning: `boot-status ${file} is not readable JSON (${errorMessage(e)}): boot verdict unknown`,
    };
  }
  const o = (j && typeof j === 'object' ? j : {}) as Record<string, unknown>;
  const b = (o.boot && typeof o.boot === 'object' ? o.boot : o) as Record<string, unknown>;
  const passed = b.passed ?? b.verdict;
  const v =
    passed === true || passed === 'true' || passed === 'passed'
      ? 'passed'
      : passed === false || passed === 'false' || passed === 'failed'
        ? 'failed'
        : 'unknown';
  const str = (x: unknown) => (typeof x === 'string' && x ? x : undefined);
  return { boot: { verdict: v, digest: str(b.digest), reason: str(b.reason), source: `file ${file}` } };
}

export function buildSection(check: BuildCheck | undefined): WatchStatus['build'] {
  if (!check) return null;
  return {
    workflow: check.workflow,
    branch: check.branch,
    runId: check.run?.id,
    runUrl: check.run?.url,
    conclusion: check.run?.conclusion,
    attempt: check.run?.attempt,
    rerun: check.rerun,
    decision: check.decision.reason,
  };
}
