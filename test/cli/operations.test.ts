// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { isTransientStep } from '../../actions/watch/src/rerun.js';
import { localDeclarations } from '../../cli/demo.js';
import { runWorkflow, type EventName, type RunRecord } from '../../cli/runner.js';
import type { LocalServices } from '../../cli/services/index.js';
import { recordRun } from '../../cli/services/runs.js';
import { startGithubEmulator, type GithubEmulator } from '../../emulators/github/index.js';
import { workflowRunsEmulator, type WorkflowRunsEmulator } from '../../emulators/github/workflow-runs.js';
import { startNtfyEmulator, type NtfyEmulator } from '../../emulators/ntfy/index.js';
import { releaseDateOf } from '../../actions/lib/tags.js';
import { loadRepoDeclarations, workflows, type Workflow } from '../../workflows-src/index.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { signDigest, testKey, type TestKey } from '../harness/signing.js';
import { makeOciImage, sh, skopeoDigest, skopeoPush, tmpdir } from '../harness/tools.js';

/**
 * `keel run` of the operations workflows, through the local runner (the generated model, the
 * bundled hops, the runner's scoping of secrets to environments) against a real docker-registry
 * and the ntfy and GitHub emulators: rollback moves stable back to a dated digest and nothing
 * else; cleanup's dry run deletes nothing, then a real run deletes an expired candidate and
 * keeps every released digest, and a closed pull request's image goes; the watch turns red and
 * notifies while stable is stale, and re-runs a build that failed in a transient step.
 */
const REPOSITORY = 'keel-project/keel';
const CREATED = 'org.opencontainers.image.created';
const dirs: string[] = [];
const dir = (prefix: string) => {
  const d = tmpdir(prefix);
  dirs.push(d);
  return d;
};

interface World {
  reg: Registry;
  key: TestKey;
  ntfy: NtfyEmulator;
  github: GithubEmulator;
  runs: WorkflowRunsEmulator;
  services: LocalServices;
  image: string;
  wf(file: string): Workflow;
}

const TOKEN = 'ghp_local_operations_test';

async function world(): Promise<World> {
  const reg = await startRegistry();
  const key = testKey();
  const ntfy = await startNtfyEmulator();
  const runs = workflowRunsEmulator();
  const github = await startGithubEmulator({ repos: {}, token: TOKEN, extensions: [runs.extension] });
  const privateKeyPath = path.join(dir('keel-ops-key-'), 'cosign.key');
  fs.writeFileSync(privateKeyPath, 'unused: these workflows never sign');
  const services = {
    registry: reg,
    github,
    runs,
    ntfy,
    ntfyTopicUrl: ntfy.topicUrl('keel-ops'),
    keys: { privateKeyPath, publicKeyPath: key.path, password: 'unused', fingerprint: '' },
    gpg: { armored: '', fingerprint: '' },
    iaKeys: { access: 'unused', secret: 'unused' },
    githubToken: TOKEN,
  } as unknown as LocalServices;
  const decl = localDeclarations(loadRepoDeclarations(), reg.host);
  const models = workflows(decl, { mode: 'dogfood' });
  return {
    reg,
    key,
    ntfy,
    github,
    runs,
    services,
    image: `${decl.image.registry}/${decl.image.name}`,
    wf: (file) => models.find((w) => w.file === file)!,
  };
}

async function stop(w: World | undefined) {
  await Promise.allSettled([w?.reg.stop(), w?.ntfy.close(), w?.github.close()]);
}

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Pushes a fresh one-layer image under the tags; returns its digest. */
function push(w: World, tags: string[], labels: Record<string, string> = {}): string {
  const img = makeOciImage(dir('keel-ops-img-'), { labels });
  const digest = skopeoPush(`oci:${img.dir}:latest`, `${w.image}:${tags[0]}`);
  for (const t of tags.slice(1)) skopeoPush(`oci:${img.dir}:latest`, `${w.image}:${t}`);
  return digest;
}

/** Every tag of the repository with the digest it points at. */
function snapshot(w: World): Record<string, string> {
  const listed = JSON.parse(sh('skopeo', ['list-tags', '--tls-verify=false', `docker://${w.image}`])) as {
    Tags: string[];
  };
  return Object.fromEntries(listed.Tags.sort().map((t) => [t, skopeoDigest(`${w.image}:${t}`)]));
}

async function run(
  w: World,
  file: string,
  event: EventName,
  opts: { inputs?: Record<string, string>; payload?: Record<string, unknown> } = {},
): Promise<{ record: RunRecord; lines: string[]; summary: string }> {
  const lines: string[] = [];
  const runsDir = dir('keel-ops-runs-');
  const record = await runWorkflow({
    workflow: w.wf(file),
    event,
    eventPayload: opts.payload ?? {},
    inputs: opts.inputs ?? {},
    services: w.services,
    runsDir,
    repository: REPOSITORY,
    log: (l) => lines.push(l),
  });
  return { record, lines, summary: fs.readFileSync(path.join(record.dir, 'summary.md'), 'utf8') };
}

/** The result of each Keel step of a job, by step id. */
const hops = (r: RunRecord, job: string) =>
  Object.fromEntries(Object.entries(r.jobs[job]!.steps).flatMap(([id, s]) => (s.hop ? [[id, s.result]] : [])));

describe('keel run rollback (real registry)', () => {
  let w: World;
  let old: string;
  let current: string;
  beforeAll(async () => {
    w = await world();
    old = push(w, ['stable.20260101', '20260101']);
    await signDigest(`${w.image}@${old}`, w.key);
    current = push(w, ['stable', 'stable.20260301', '20260301', 'candidate', 'candidate.20260301']);
    await signDigest(`${w.image}@${current}`, w.key);
  }, 120_000);
  afterAll(() => stop(w));

  it('moves stable back to the digest of stable.<date>, verified, and nothing else; notifies from → to', async () => {
    const before = snapshot(w);
    const { record, summary } = await run(w, 'rollback.yml', 'workflow_dispatch', { inputs: { date: '20260101' } });
    expect(record.ok).toBe(true);
    expect(hops(record, 'rollback')).toEqual({
      dated: 'success',
      promote: 'success',
      notify: 'success',
      'notify-failed': 'skipped',
    });
    expect(snapshot(w)).toEqual({ ...before, stable: old });
    expect(record.jobs.rollback!.outputs.digest).toBe(old);
    expect(summary).toContain(`- \`stable\`: \`${current}\` → \`${old}\``);
    const sent = w.ntfy.messages.at(-1)!;
    expect(sent.title).toBe(`Rollback: ${w.image}`);
    expect(sent.message).toBe(`stable of ${w.image} now points at stable.20260101 (${old})`);
  }, 120_000);

  it.each([
    ['not a date', '2026-01-01'],
    ['no such day', '20260230'],
    ['text after it', '20260101\nstable'],
  ])(
    'refuses %s before any registry call; stable stays; the failure is notified',
    async (_, date) => {
      const before = snapshot(w);
      const sentBefore = w.ntfy.messages.length;
      const { record } = await run(w, 'rollback.yml', 'workflow_dispatch', { inputs: { date } });
      expect(record.ok).toBe(false);
      const job = record.jobs.rollback!;
      const guard = Object.values(job.steps).find((s) => s.name === 'Refuse a date that is not YYYYMMDD')!;
      expect([guard.result, guard.error]).toEqual(['failure', 'input date must be a calendar date YYYYMMDD']);
      expect(hops(record, 'rollback')).toEqual({
        dated: 'skipped',
        promote: 'skipped',
        notify: 'skipped',
        'notify-failed': 'success',
      });
      expect(snapshot(w)).toEqual(before);
      expect(w.ntfy.messages.slice(sentBefore).map((m) => m.title)).toEqual([`Rollback failed: ${w.image}`]);
    },
    120_000,
  );

  it('refuses a dated digest without a valid signature; stable stays', async () => {
    push(w, ['stable.20260201']);
    const before = snapshot(w);
    const { record } = await run(w, 'rollback.yml', 'workflow_dispatch', { inputs: { date: '20260201' } });
    expect(record.ok).toBe(false);
    const promote = record.jobs.rollback!.steps.promote!;
    expect(promote.result).toBe('failure');
    expect(promote.error).toMatch(/its signature does not verify/);
    expect(snapshot(w)).toEqual(before);
  }, 120_000);
});

describe('keel run cleanup (real registry)', () => {
  let w: World;
  let released: string;
  let expired: string;
  let candidate: string;
  let pr: string;
  const today = releaseDateOf(new Date());
  beforeAll(async () => {
    w = await world();
    // Released, and an expired candidate tag on the same digest: kept (a tag cannot go alone).
    released = push(w, ['stable', 'stable.20200101', '20200101', 'candidate.20200101']);
    await signDigest(`${w.image}@${released}`, w.key);
    expired = push(w, ['candidate.20200102']);
    await signDigest(`${w.image}@${expired}`, w.key);
    candidate = push(w, ['candidate', `candidate.${today}`]);
    pr = push(w, ['pr-7'], { [CREATED]: new Date().toISOString() });
  }, 120_000);
  afterAll(() => stop(w));

  const sigTag = (digest: string) => `${digest.replace(':', '-')}.sig`;

  it('dispatched as a dry run: plans the expired candidate with its signature, deletes nothing', async () => {
    const before = snapshot(w);
    expect(before[sigTag(expired)]).toBeDefined();
    const { record } = await run(w, 'cleanup.yml', 'workflow_dispatch', { inputs: { 'dry-run': 'true' } });
    expect(record.ok).toBe(true);
    const out = record.jobs.cleanup!.outputs;
    expect(out.deleted).toBe('');
    const planned = out.planned!.split('\n');
    expect(planned).toHaveLength(2);
    expect(planned).toContain(`candidate.20200102 ${expired}`);
    expect(planned.some((l) => l.startsWith(`${sigTag(expired)} sha256:`))).toBe(true);
    expect(out.kept).toMatch(/^candidate\.20200101 expired .*this registry deletes manifests, not tags/m);
    expect(snapshot(w)).toEqual(before);
  }, 120_000);

  it('on its schedule: deletes the expired candidate and its signature, keeps every released digest', async () => {
    const before = snapshot(w);
    const { record } = await run(w, 'cleanup.yml', 'schedule');
    expect(record.ok).toBe(true);
    const after = snapshot(w);
    const gone = Object.keys(before).filter((t) => !(t in after));
    expect(gone.sort()).toEqual(['candidate.20200102', sigTag(expired)].sort());
    for (const [t, d] of Object.entries(after)) expect([t, d]).toEqual([t, before[t]]);
    expect(after.stable).toBe(released);
    expect(after['candidate.20200101']).toBe(released);
    expect(after.candidate).toBe(candidate);
    expect(after['pr-7']).toBe(pr);
    expect(sh('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${w.image}@${released}`])).toBeTruthy();
  }, 120_000);

  it("when pull request 7 closes: deletes pr-7, whatever its age, and nothing else; a fork's is not touched", async () => {
    const closed = (repo: string) => ({
      action: 'closed',
      number: 7,
      pull_request: { number: 7, state: 'closed', head: { repo: { full_name: repo } } },
    });
    const fork = await run(w, 'cleanup.yml', 'pull_request', { payload: closed('someone/keel') });
    expect(fork.record.jobs.cleanup!.result).toBe('skipped');
    const before = snapshot(w);
    const { record } = await run(w, 'cleanup.yml', 'pull_request', { payload: closed(REPOSITORY) });
    expect(record.ok).toBe(true);
    const { 'pr-7': prTag, ...rest } = before;
    expect(prTag).toBe(pr);
    expect(snapshot(w)).toEqual(rest);
  }, 120_000);
});

describe('keel run watch (real registry, GitHub and ntfy emulators)', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  }, 60_000);
  afterAll(() => stop(w));

  it('while stable is fresh: green, status.json kept, no notification', async () => {
    push(w, ['stable'], { [CREATED]: new Date().toISOString() });
    const { record } = await run(w, 'watch.yml', 'schedule');
    expect(record.ok).toBe(true);
    expect(record.jobs.watch!.outputs).toMatchObject({ stale: 'false', state: 'fresh', 'age-days': '0' });
    expect(record.jobs.notify!.result).toBe('skipped');
    const status = JSON.parse(
      fs.readFileSync(path.join(record.dir, 'artifacts', 'keel-watch-status', 'status.json'), 'utf8'),
    ) as { state: string; maxAgeDays: number };
    expect(status).toMatchObject({ state: 'fresh', maxAgeDays: loadRepoDeclarations().staleness['server-days'] });
    expect(w.ntfy.messages).toEqual([]);
  }, 120_000);

  it('while stable is stale: red every day, status.json still kept, the notify job reports it', async () => {
    const old = new Date(Date.now() - 30 * 86_400_000).toISOString();
    const digest = push(w, ['stable'], { [CREATED]: old });
    const { record } = await run(w, 'watch.yml', 'schedule');
    expect(record.ok).toBe(false);
    expect(record.jobs.watch!.result).toBe('failure');
    expect(record.jobs.watch!.outputs).toMatchObject({ stale: 'true', state: 'critical', 'age-days': '30' });
    expect(fs.existsSync(path.join(record.dir, 'artifacts', 'keel-watch-status', 'status.json'))).toBe(true);
    expect(record.jobs.notify!.result).toBe('success');
    const sent = w.ntfy.messages.at(-1)!;
    expect(sent.title).toBe(`Stale: ${w.image}`);
    expect(sent.message).toBe(`stable of ${w.image} is critical (age 30 days, limit 9; digest ${digest}).`);
  }, 120_000);

  it('re-runs the newest build run once when it failed only in a step build.yml marks [transient]', async () => {
    push(w, ['stable'], { [CREATED]: new Date().toISOString() });
    // A local run of build.yml, failed in its push step (the generated step name), as recorded by keel run.
    const build = workflows(loadRepoDeclarations(), { mode: 'dogfood' }).find((x) => x.file === 'build.yml')!;
    const buildJob = build.jobs.find((j) => j.id === 'build')!;
    const pushName = buildJob.steps.find((s) => s.type === 'keel' && s.hop === 'push')!.name;
    expect(isTransientStep(pushName, new Set())).toBe(true);
    const failed: RunRecord = {
      id: 'local-1',
      workflow: 'build.yml',
      event: 'push',
      dir: '',
      ok: false,
      ms: 0,
      jobs: {
        build: {
          name: buildJob.name,
          result: 'failure',
          outputs: {},
          ms: 0,
          order: ['a', 'b'],
          steps: {
            a: { name: 'Build the image', result: 'success', ms: 0, outputs: {} },
            b: { name: pushName, result: 'failure', ms: 0, outputs: {} },
          },
        },
      },
    };
    recordRun(w.services, REPOSITORY, failed);
    const { record } = await run(w, 'watch.yml', 'schedule');
    expect(record.ok).toBe(true);
    const watch = record.jobs.watch!.steps.watch!;
    expect(watch.outputs['retry-decision']).toMatch(/failed only in transient steps/);
    expect(w.runs.reruns).toEqual([{ runId: w.runs.runs[0]!.id, attempt: 2 }]);
    // Never twice: the next day's watch leaves the re-run attempt alone.
    w.runs.finishAttempt(w.runs.runs[0]!.id, { [buildJob.name]: 'failure' });
    const again = await run(w, 'watch.yml', 'schedule');
    expect(again.record.jobs.watch!.steps.watch!.outputs['retry-decision']).toMatch(/never twice/);
    expect(w.runs.reruns).toHaveLength(1);
  }, 120_000);
});
