// test-kind: integration
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import { eventFor } from '../../cli/events.js';
import { promotionNotice } from '../../cli/notifications.js';
import { runWorkflow, type EventName } from '../../cli/runner.js';
import { startNtfyEmulator, type NtfyEmulator } from '../../emulators/ntfy/index.js';
import { lit } from '../../workflows-src/expr.js';
import { loadRepoDeclarations, workflows } from '../../workflows-src/index.js';
import { runStep, type Job, type Step, type Workflow } from '../../workflows-src/model.js';
import { FAILURE_NOTIFY_JOB, FAILURE_NOTIFY_STEP, PROMOTED_NOTIFY_STEP } from '../../workflows-src/notify.js';
import { fakeServices } from '../harness/local-services.js';
import { tmpdir } from '../harness/tools.js';

/**
 * `keel run` of the generated build.yml and smoke-boot.yml against the ntfy emulator: the jobs
 * that build, sign, boot and promote are replaced by stand-in steps that pass or fail (and set
 * the step outputs the notifications read); the notification job and steps are the generated
 * ones, running the notify bundle with the NTFY_URL secret keel run gives jobs with an environment.
 */
const decl = loadRepoDeclarations();
const dogfood = workflows(decl, { mode: 'dogfood' });
const named = (file: string) => dogfood.find((w) => w.file === file)!;
const image = `${decl.image.registry}/${decl.image.name}`;
const repository = 'keel-project/keel';

const dirs: string[] = [];
let ntfy: NtfyEmulator;
beforeAll(async () => {
  ntfy = await startNtfyEmulator();
});
beforeEach(() => {
  ntfy.messages.length = 0;
});
afterAll(async () => {
  await ntfy.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const tmp = (p: string) => {
  const d = tmpdir(p);
  dirs.push(d);
  return d;
};

/** A step standing in for a job's work: passes, or fails (a refused date) naming what it stands for. */
const standIn = (what: string, ok: boolean): Step =>
  ok
    ? runStep({ name: `${what} (stand-in)`, run: 'true', local: { local: 'skip', reason: 'stand-in' } })
    : runStep({
        name: `${what} (stand-in, failing)`,
        run: 'false',
        local: { local: 'check-date', value: lit('not-a-date'), name: `stand-in for ${what}` },
      });

/** Two steps that give step `id` these outputs (written to files, read back). */
const outputsOf = (id: string, values: Record<string, string>): Step[] => [
  runStep({
    name: `${id} outputs (stand-in)`,
    run: 'true',
    local: {
      local: 'write-files',
      dir: `stand-in-${id}`,
      files: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, lit(v)])),
    },
  }),
  runStep({
    id,
    name: `${id} (stand-in)`,
    run: 'true',
    local: {
      local: 'read-files',
      dir: `stand-in-${id}`,
      outputs: Object.fromEntries(Object.keys(values).map((k) => [k, { file: k, pattern: '.*' }])),
    },
    outputs: Object.keys(values),
  }),
];

/** The workflow with the steps of every job but the notification job replaced. */
function withStandIns(wf: Workflow, steps: (j: Job) => Step[]): Workflow {
  return { ...wf, jobs: wf.jobs.map((j) => (j.id === FAILURE_NOTIFY_JOB ? j : { ...j, steps: steps(j) })) };
}

async function run(wf: Workflow, event: EventName, opts: { ntfyUrl?: string; inputs?: Record<string, string> } = {}) {
  const { payload } = eventFor(wf, event, { runs: [], decl, repository });
  return runWorkflow({
    workflow: wf,
    event,
    eventPayload: payload,
    inputs: opts.inputs ?? {},
    services: fakeServices(tmp('keel-runner-notify-'), {
      ntfy,
      ntfyTopicUrl: opts.ntfyUrl ?? ntfy.topicUrl('keel-test'),
    }),
    runsDir: tmp('keel-runs-'),
    repository,
    releaseDate: '20261204',
    log: () => undefined,
  });
}

describe('keel run build.yml: a failed build or sign job is notified once', () => {
  const build = named('build.yml');
  const failing = (failed: string) => withStandIns(build, (j) => [standIn(j.id, j.id !== failed)]);

  it('the build job fails: one message naming it, linking the run', async () => {
    const record = await run(failing('build'), 'push');
    expect([record.jobs.build!.result, record.jobs.sign!.result]).toEqual(['failure', 'skipped']);
    expect(record.jobs[FAILURE_NOTIFY_JOB]!.result).toBe('success');
    expect(ntfy.messages).toHaveLength(1);
    const m = ntfy.messages[0]!;
    expect(m.topic).toBe('keel-test');
    expect(m.title).toBe(`Build failed: ${repository}`);
    expect(m.message).toMatch(
      /^Job build \(Build, validate, rechunk, push\) of Keel build \(keel-os\) failed \(push on main/,
    );
    expect(m.click).toBe(`http://localhost/${repository}/actions/runs/${record.id}`);
    expect(m.priority).toBe(4);
  });

  it('the sign job fails: one message naming sign', async () => {
    await run(failing('sign'), 'push');
    expect(ntfy.messages.map((m) => m.message.split(' of ')[0])).toEqual([
      'Job sign (Sign the pushed digest (release key))',
    ]);
  });

  it('a passing run posts nothing (the notify job is skipped)', async () => {
    const record = await run(failing('none'), 'push');
    expect(record.ok).toBe(true);
    expect(record.jobs[FAILURE_NOTIFY_JOB]!.result).toBe('skipped');
    expect(ntfy.messages).toEqual([]);
  });

  it('a failed pull-request build posts nothing: the notify job never runs for a pull request', async () => {
    const record = await run(failing('build'), 'pull_request');
    expect(record.jobs.build!.result).toBe('failure');
    expect(record.jobs[FAILURE_NOTIFY_JOB]!.result).toBe('skipped');
    expect(ntfy.messages).toEqual([]);
  });

  it('no NTFY_URL: the empty secret reaches the hop as an empty url, which skips without failing', async () => {
    const record = await run(failing('build'), 'push', { ntfyUrl: '' });
    const notify = record.jobs[FAILURE_NOTIFY_JOB]!;
    expect(notify.result).toBe('success');
    expect(notify.steps[FAILURE_NOTIFY_STEP]).toMatchObject({ result: 'success', outputs: { sent: 'false' } });
    expect(notify.steps[FAILURE_NOTIFY_STEP]!.summary).toContain('Skipped: no `url`');
    expect(ntfy.messages).toEqual([]);
  });
});

describe('keel run smoke-boot.yml: the promotion and a failed boot are notified', () => {
  const smoke = named('smoke-boot.yml');
  const digest = `sha256:${'5e'.repeat(32)}`;
  const imageRef = `${image}@${digest}`;
  const inputs = { 'image-ref': imageRef, 'release-date': '20261204' };
  /** The boot job's verdict, and the promote job's promote step (its notice kept, last). */
  const booted = (passed: boolean) =>
    withStandIns(smoke, (j) => {
      if (j.id === 'boot')
        return [
          ...outputsOf('boot', {
            passed: String(passed),
            reason: passed ? 'reached multi-user.target' : 'emergency mode',
            'image-ref': imageRef,
            digest,
          }),
          ...(passed ? [] : [standIn('the boot', false)]),
        ];
      const notice = j.steps.find((s) => s.id === PROMOTED_NOTIFY_STEP)!;
      return [...outputsOf('promote', { digest, tags: `stable.20261204` }), notice];
    });

  it('a promotion: one notice, stable → digest with the release date', async () => {
    const record = await run(booted(true), 'workflow_dispatch', { inputs });
    expect(record.jobs.promote!.result).toBe('success');
    expect(record.jobs.promote!.order.at(-1)).toBe(PROMOTED_NOTIFY_STEP);
    expect(record.jobs[FAILURE_NOTIFY_JOB]!.result).toBe('skipped');
    expect(ntfy.messages).toHaveLength(1);
    const notice = promotionNotice(ntfy.messages, image, digest);
    expect(notice?.message).toBe(`stable → ${digest}\nRelease date: 20261204\nTags: stable.20261204`);
    expect(promotionNotice(ntfy.messages, image, `sha256:${'00'.repeat(32)}`)).toBeUndefined();
  });

  it('a failed boot: one message with its reason, no promotion notice', async () => {
    const record = await run(booted(false), 'workflow_dispatch', { inputs });
    expect([record.jobs.boot!.result, record.jobs.promote!.result]).toEqual(['failure', 'skipped']);
    expect(ntfy.messages.map((m) => [m.title, m.message])).toEqual([
      [`Not promoted: ${image}`, `the boot failed: emergency mode. Image: ${imageRef}.`],
    ]);
  });
});
