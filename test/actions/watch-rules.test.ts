// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decideRerun, type JobView, type RunView } from '../../actions/watch/src/rerun.js';
import { bootStatus, stateOf } from '../../actions/watch/src/status.js';

/** The watch's rules one by one: when a failed build is re-run, how stale is stale, the boot verdict. */
const HEAD = 'a'.repeat(40);
const run = (over: Partial<RunView> = {}): RunView => ({
  id: 11,
  event: 'push',
  status: 'completed',
  conclusion: 'failure',
  run_attempt: 1,
  head_sha: HEAD,
  html_url: 'https://github.com/acme/os/actions/runs/11',
  ...over,
});
const job = (name: string, steps: [string, string | null][], conclusion = 'failure'): JobView => ({
  name,
  conclusion,
  steps: steps.map(([n, c]) => ({ name: n, conclusion: c })),
});
const pushFailed = [
  job('build', [['Build', 'success']], 'success'),
  job('push', [
    ['Push [transient]', 'failure'],
    ['Sign', 'skipped'],
  ]),
];
const none = new Set<string>();

describe('decideRerun', () => {
  it('re-runs a failure in steps marked [transient] (any case) or listed by name', () => {
    expect(decideRerun(run(), pushFailed, HEAD, none)).toEqual({
      rerun: true,
      reason: "run 11 failed only in transient steps ('push' › 'Push [transient]'): re-running its failed jobs once",
    });
    expect(decideRerun(run(), [job('push', [['Mirror download [Transient]', 'failure']])], HEAD, none).rerun).toBe(
      true,
    );
    expect(decideRerun(run(), [job('push', [['Push', 'timed_out']])], HEAD, new Set(['Push'])).rerun).toBe(true);
    expect(
      decideRerun(
        run({ conclusion: 'cancelled' }),
        [job('push', [['Push', 'cancelled']], 'cancelled')],
        HEAD,
        new Set(['Push']),
      ).rerun,
    ).toBe(true);
  });

  it('never re-runs a pull_request run, a second attempt, or a superseded commit', () => {
    for (const event of ['pull_request', 'pull_request_target'])
      expect(decideRerun(run({ event }), pushFailed, HEAD, none)).toEqual({
        rerun: false,
        reason: `run 11 is a ${event} run: never re-run`,
      });
    expect(decideRerun(run({ run_attempt: 2 }), pushFailed, HEAD, none).reason).toBe(
      'run 11 was already re-run (attempt 2): never twice',
    );
    expect(decideRerun(run(), pushFailed, 'b'.repeat(40), none).reason).toBe(
      'run 11 built aaaaaaaaaaaa, but the branch head is now bbbbbbbbbbbb: superseded, not re-run',
    );
  });

  it('does not re-run a failure outside transient steps, or one it cannot place in a step', () => {
    const mixed = [...pushFailed, job('lint', [['Lint', 'failure']])];
    expect(decideRerun(run(), mixed, HEAD, none).reason).toBe(
      "run 11 failed in 'lint' › 'Lint', which is not marked transient",
    );
    expect(decideRerun(run(), [job('boot', [])], HEAD, none).reason).toBe(
      "job 'boot' of run 11 failed outside any step: not known to be transient",
    );
    expect(decideRerun(run(), [], HEAD, none).reason).toBe('run 11 failed but lists no failed job');
  });

  it('leaves successful and unfinished runs alone', () => {
    expect(decideRerun(run({ conclusion: 'success' }), [], HEAD, none).reason).toBe('run 11 concluded success');
    expect(decideRerun(run({ status: 'in_progress', conclusion: null }), [], HEAD, none).reason).toBe(
      'run 11 is in_progress: nothing to decide yet',
    );
  });
});

describe('staleness and boot verdict', () => {
  it('is fresh up to max-age-days, stale beyond, critical beyond twice, unreadable without an age', () => {
    expect(stateOf({ tag: 'stable', ageDays: 9 }, 9)).toBe('fresh');
    expect(stateOf({ tag: 'stable', ageDays: 10 }, 9)).toBe('stale');
    expect(stateOf({ tag: 'stable', ageDays: 18 }, 9)).toBe('stale');
    expect(stateOf({ tag: 'stable', ageDays: 19 }, 9)).toBe('critical');
    expect(stateOf({ tag: 'stable', problem: 'not found' }, 9)).toBe('unreadable');
  });

  it('reads the verdict from the input, smoke-boot outputs or an earlier status.json', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-watch-rules-'));
    const smoke = path.join(dir, 'smoke.json');
    fs.writeFileSync(
      smoke,
      JSON.stringify({ passed: 'false', digest: `sha256:${'1'.repeat(64)}`, reason: 'kernel panic' }),
    );
    const earlier = path.join(dir, 'status.json');
    fs.writeFileSync(earlier, JSON.stringify({ boot: { verdict: 'passed', digest: `sha256:${'2'.repeat(64)}` } }));
    expect(bootStatus('passed', smoke).boot).toEqual({ verdict: 'passed', source: 'input boot-verdict' });
    expect(bootStatus('', smoke).boot).toEqual({
      verdict: 'failed',
      digest: `sha256:${'1'.repeat(64)}`,
      reason: 'kernel panic',
      source: `file ${smoke}`,
    });
    expect(bootStatus('', earlier).boot).toMatchObject({ verdict: 'passed', digest: `sha256:${'2'.repeat(64)}` });
    const missing = bootStatus('', path.join(dir, 'nope.json'));
    expect(missing.boot).toBeNull();
    expect(missing.warning).toMatch(/is not readable JSON .*boot verdict unknown/);
    expect(bootStatus('', '').boot).toBeNull();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
