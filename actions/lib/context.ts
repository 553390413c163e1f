import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { statfsProbe, type FreeSpaceProbe } from './disk-space.js';
import { UserError } from './errors.js';

/** What a hop needs to know about the run it is part of, read once from the runner's environment. */
export interface RunContext {
  eventName: string;
  /** The parsed event payload (`GITHUB_EVENT_PATH`), `{}` when absent. */
  event: Record<string, unknown>;
  /** Where the hop keeps its work: KEEL_WORK_DIR, else RUNNER_TEMP (see workDir). */
  runnerTemp: string;
  workspace: string;
  repository: string;
  sha: string;
  runId: string;
  serverUrl: string;
  /** GITHUB_API_URL: the REST API of the run's GitHub (optional: tests and older callers omit it). */
  apiUrl?: string;
  /** What SLSA provenance records about the run (GITHUB_* variables; '' when not in Actions). */
  workflow: {
    /** GITHUB_REF, e.g. refs/heads/main. */
    ref: string;
    /** GITHUB_WORKFLOW_REF: owner/repo/.github/workflows/build.yml@refs/heads/main. */
    workflowRef: string;
    runAttempt: string;
    repositoryId: string;
    repositoryOwnerId: string;
    /** RUNNER_ENVIRONMENT: github-hosted or self-hosted. */
    runnerEnvironment: string;
  };
  /** Wall clock, injectable so the release date is testable. */
  now(): Date;
  /** Free disk space of a directory's filesystem, injectable so space checks are testable. */
  freeSpace: FreeSpaceProbe;
}

/**
 * Where a hop keeps its work (exports, disks, boot copies): KEEL_WORK_DIR when set (the free-disk
 * step points it at the runner's largest volume), else the runner's temp directory. A
 * KEEL_WORK_DIR that is not an absolute path to an existing directory fails, naming it.
 */
export function workDir(env: NodeJS.ProcessEnv): string {
  const dir = env.KEEL_WORK_DIR;
  if (dir === undefined || dir === '') return env.RUNNER_TEMP || os.tmpdir();
  if (!path.isAbsolute(dir) || !fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory())
    throw new UserError(
      `KEEL_WORK_DIR: expected an absolute path to an existing directory, got ${JSON.stringify(dir)}`,
    );
  return dir;
}

export function contextFromEnv(env: NodeJS.ProcessEnv = process.env): RunContext {
  let event: Record<string, unknown> = {};
  const p = env.GITHUB_EVENT_PATH;
  if (p && fs.existsSync(p)) {
    try {
      event = JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>;
    } catch {
      event = {};
    }
  }
  return {
    eventName: env.GITHUB_EVENT_NAME ?? 'workflow_dispatch',
    event,
    runnerTemp: workDir(env),
    workspace: env.GITHUB_WORKSPACE || process.cwd(),
    repository: env.GITHUB_REPOSITORY ?? '',
    sha: env.GITHUB_SHA ?? '',
    runId: env.GITHUB_RUN_ID ?? '',
    serverUrl: env.GITHUB_SERVER_URL ?? 'https://github.com',
    apiUrl: env.GITHUB_API_URL ?? 'https://api.github.com',
    workflow: {
      ref: env.GITHUB_REF ?? '',
      workflowRef: env.GITHUB_WORKFLOW_REF ?? '',
      runAttempt: env.GITHUB_RUN_ATTEMPT ?? '',
      repositoryId: env.GITHUB_REPOSITORY_ID ?? '',
      repositoryOwnerId: env.GITHUB_REPOSITORY_OWNER_ID ?? '',
      runnerEnvironment: env.RUNNER_ENVIRONMENT ?? '',
    },
    now: () => (env.KEEL_NOW ? new Date(env.KEEL_NOW) : new Date()),
    freeSpace: statfsProbe,
  };
}
