// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { localRunnerContext } from '../../cli/runner.js';
import { evaluateCondition, loadRepoDeclarations, renderWorkflow, workflows } from '../../workflows-src/index.js';
import { FREE_DISK_REMOVED, freeDiskScript } from '../../workflows-src/free-disk.js';
import type { YWorkflow } from './helpers.js';

/**
 * The free-disk step: the script itself, run by bash with every tool it could call replaced by
 * a recorder first on PATH (sudo records and never executes), and its place and guard in the
 * jobs that hold images.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-free-disk-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Stand-ins: each appends `<name> <args>` to $CALLS; df prints the table in $DF_TABLE. */
function stubs(): string {
  const bin = path.join(tmp, 'bin');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(bin);
  const record = (name: string, body = 'exit 0') =>
    fs.writeFileSync(path.join(bin, name), `#!/bin/bash\necho "${name} $*" >> "$CALLS"\n${body}\n`, { mode: 0o755 });
  for (const t of ['sudo', 'rm', 'docker', 'mount', 'cp', 'mkdir', 'chmod']) record(t);
  record('mountpoint', 'exit 1');
  record('df', 'if [[ " $* " == *" -P "* ]]; then cat "$DF_TABLE"; else echo "df -h output"; fi');
  return bin;
}

const DF_HEADER = 'Filesystem 1-blocks Used Available Capacity Mounted on';

function runScript(runnerEnvironment: string | undefined, dfRows: string[]) {
  const dir = fs.mkdtempSync(path.join(tmp, 'run-'));
  const files = { calls: 'calls', env: 'github-env', summary: 'summary', df: 'df' };
  const at = (f: string) => path.join(dir, f);
  for (const f of [files.calls, files.env, files.summary]) fs.writeFileSync(at(f), '');
  fs.writeFileSync(at(files.df), [DF_HEADER, ...dfRows].join('\n') + '\n');
  const r = spawnSync('bash', ['-c', freeDiskScript()], {
    encoding: 'utf8',
    env: {
      PATH: `${stubs()}:/usr/bin:/bin`,
      HOME: dir,
      SHLVL: '1',
      CALLS: at(files.calls),
      DF_TABLE: at(files.df),
      GITHUB_ENV: at(files.env),
      GITHUB_STEP_SUMMARY: at(files.summary),
      ...(runnerEnvironment === undefined ? {} : { RUNNER_ENVIRONMENT: runnerEnvironment }),
    },
  });
  const read = (f: string) => fs.readFileSync(at(f), 'utf8');
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    calls: read(files.calls),
    githubEnv: read(files.env),
    summary: read(files.summary),
  };
}

const HOSTED_DF = [
  '/dev/root 77000000000 55000000000 22000000000 72% /',
  '/dev/sda15 100000000 6000000 94000000 7% /boot/efi',
  '/dev/sdb1 78000000000 4000000000 70000000000 6% /mnt',
];

describe('the free-disk script', () => {
  it.each([
    ['unset', undefined],
    ['self-hosted', 'self-hosted'],
    ['empty', ''],
  ])('RUNNER_ENVIRONMENT %s: changes nothing, calls no tool, and says so', (_label, value) => {
    const r = runScript(value, HOSTED_DF);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('::notice title=free-disk::not a GitHub-hosted runner: nothing removed');
    expect(r.calls).toBe('');
    expect(r.githubEnv).toBe('');
    expect(r.summary).toBe('');
  });

  it('github-hosted: removes the toolchains, prunes docker, moves storage and TMPDIR to the largest volume', () => {
    const r = runScript('github-hosted', HOSTED_DF);
    expect([r.status, r.stderr]).toEqual([0, '']);
    const calls = r.calls.split('\n');
    expect(calls).toContain(`sudo rm -rf ${FREE_DISK_REMOVED.join(' ')}`);
    expect(FREE_DISK_REMOVED).toEqual(
      expect.arrayContaining(['/usr/share/dotnet', '/usr/local/lib/android', '/opt/ghc']),
    );
    expect(calls).toContain('docker image prune --all --force');
    expect(calls).toContain('sudo mount --bind /mnt/keel-disk/containers /var/lib/containers');
    expect(calls.indexOf('sudo cp -a /var/lib/containers/. /mnt/keel-disk/containers/')).toBeLessThan(
      calls.indexOf('sudo mount --bind /mnt/keel-disk/containers /var/lib/containers'),
    );
    // TMPDIR and the hops' work directories (KEEL_WORK_DIR, the runner user's) on the big volume.
    expect(r.githubEnv).toBe('TMPDIR=/mnt/keel-disk/tmp\nKEEL_WORK_DIR=/mnt/keel-disk/work\n');
    expect(calls).toContain('sudo mkdir -p /mnt/keel-disk/containers /mnt/keel-disk/tmp /mnt/keel-disk/work');
    expect(calls.some((c) => /^sudo chown [0-9]+:[0-9]+ \/mnt\/keel-disk\/work$/.test(c))).toBe(true);
    // Nothing outside sudo touches the machine: every rm, mount, cp, mkdir and chmod is sudo's.
    expect(calls.filter((c) => /^(rm|mount|cp|mkdir|chmod) /.test(c))).toEqual([]);
    expect(r.stdout).toMatch(/Free space before:[\s\S]*Free space after:/);
    expect(r.summary).toContain("container storage, TMPDIR and the hops' work directories on `/mnt`");
  });

  it('github-hosted with the most space on /: nothing is moved, TMPDIR stays', () => {
    const r = runScript('github-hosted', [
      '/dev/root 150000000000 10000000000 140000000000 7% /',
      '/dev/sdb1 78000000000 4000000000 70000000000 6% /mnt',
    ]);
    expect(r.status).toBe(0);
    expect(r.calls).not.toContain('mount --bind');
    expect(r.githubEnv).toBe('');
    expect(r.stdout).toContain('the root volume has the most free space');
  });

  it('a mount point that is not a plain path is refused before anything is created or exported', () => {
    const r = runScript('github-hosted', [
      '/dev/root 77000000000 55000000000 22000000000 72% /',
      '/dev/sdc 1 1 99000000000 1% /mnt/a;b',
    ]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('::error::free-disk: unexpected mount point');
    expect(r.calls).not.toContain('sudo mkdir');
    expect(r.githubEnv).toBe('');
  });

  it('an existing bind mount is kept (a re-run does not stack mounts or copy again)', () => {
    const bin = stubs();
    const orig = fs.readFileSync(path.join(bin, 'mountpoint'), 'utf8');
    fs.writeFileSync(path.join(bin, 'mountpoint'), orig.replace('exit 1', 'exit 0'));
    try {
      const r = runScript('github-hosted', HOSTED_DF);
      expect(r.status).toBe(0);
      expect(r.calls).not.toContain('mount --bind');
      expect(r.calls).not.toContain('cp -a');
      expect(r.githubEnv).toBe('TMPDIR=/mnt/keel-disk/tmp\nKEEL_WORK_DIR=/mnt/keel-disk/work\n');
    } finally {
      fs.writeFileSync(path.join(bin, 'mountpoint'), orig);
    }
  });
});

describe('the free-disk step in the workflows', () => {
  const models = workflows(loadRepoDeclarations());
  const JOBS: [string, string][] = [
    ['build.yml', 'build'],
    ['reusable-build.yml', 'build'],
    ['smoke-boot.yml', 'boot'],
    ['reusable-smoke-boot.yml', 'boot'],
    ['build-disk.yml', 'disk'],
    ['reusable-build-disk.yml', 'disk'],
  ];

  it.each(JOBS)('%s job %s: the step right after checkout, guarded to GitHub-hosted runners', (file, jobId) => {
    const wf = models.find((w) => w.file === file)!;
    const yaml = parse(renderWorkflow(wf)) as YWorkflow;
    const steps = yaml.jobs[jobId]!.steps;
    const at = steps.findIndex((s) => s.run === freeDiskScript().replace(/$/, '\n'));
    expect(at).toBeGreaterThan(0);
    expect(steps[at - 1]!.uses).toMatch(/^actions\/checkout@/);
    const cond = steps[at]!.if!;
    expect(cond).toContain("runner.environment == 'github-hosted'");
    if (file.startsWith('reusable-')) {
      expect(cond).toBe("inputs.free-disk == true && runner.environment == 'github-hosted'");
      expect(yaml.on.workflow_call).toMatchObject({ inputs: { 'free-disk': { type: 'boolean', default: true } } });
    } else {
      expect(cond).toBe("runner.environment == 'github-hosted'");
    }
  });

  it.each(JOBS)('%s job %s: keel run skips it (runner.environment is self-hosted there)', (file, jobId) => {
    const wf = models.find((w) => w.file === file)!;
    const step = wf.jobs
      .find((j) => j.id === jobId)!
      .steps.find((s) => s.type === 'run' && s.run === freeDiskScript())!;
    expect(step.type === 'run' && step.local.local).toBe('skip');
    const ctx = { runner: localRunnerContext, input: (n: string) => (n === 'free-disk' ? true : undefined) };
    expect(evaluateCondition(step.if!, ctx)).toBe(false);
    // The same condition holds on a hosted runner (the guard is not simply always false).
    expect(
      evaluateCondition(step.if!, {
        ...ctx,
        runner: (k: string) => (k === 'environment' ? 'github-hosted' : undefined),
      }),
    ).toBe(true);
    if (file.startsWith('reusable-'))
      expect(evaluateCondition(step.if!, { runner: () => 'github-hosted', input: () => false })).toBe(false);
  });
});
