// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { runWorkflow } from '../../cli/runner.js';
import type { LocalServices } from '../../cli/services/index.js';
import { lit, secret } from '../../workflows-src/expr.js';
import { loadRepoDeclarations, workflows } from '../../workflows-src/index.js';
import { job, runStep, type Workflow } from '../../workflows-src/model.js';
import { tmpdir } from '../harness/tools.js';

/**
 * `keel run` keeps GitHub's rules the generated workflows rely on, without starting any service:
 * a dispatched image-ref outside the distro's repository stops the smoke-boot run at its first
 * step (nothing after it runs, so no registry is called), and a job sees secrets other than
 * GITHUB_TOKEN only when it declares an environment.
 */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** What runWorkflow reads of the services when no Keel hop runs: the secrets' values. */
function services(): LocalServices {
  const dir = tmpdir('keel-runner-');
  dirs.push(dir);
  const privateKeyPath = path.join(dir, 'cosign.key');
  fs.writeFileSync(privateKeyPath, 'PRIVATE-KEY-MATERIAL-0123456789');
  return {
    keys: { privateKeyPath, publicKeyPath: path.join(dir, 'cosign.pub'), password: 'pw-0123456789', fingerprint: '' },
    iaKeys: { access: 'ia-access-0123', secret: 'ia-secret-0123' },
    githubToken: 'ghp_local_0123456789',
    ntfyTopicUrl: 'http://127.0.0.1:9/keel-local',
    gpg: { armored: 'GPG-KEY-MATERIAL-0123456789', fingerprint: '' },
  } as unknown as LocalServices;
}

async function run(workflow: Workflow, event: 'workflow_dispatch' | 'push', inputs: Record<string, string> = {}) {
  const runsDir = tmpdir('keel-runs-');
  dirs.push(runsDir);
  const lines: string[] = [];
  const record = await runWorkflow({
    workflow,
    event,
    inputs,
    services: services(),
    runsDir,
    repository: 'keel-project/keel',
    log: (l) => lines.push(l),
  });
  return { record, lines };
}

describe('keel run: smoke-boot dispatch', () => {
  const decl = loadRepoDeclarations();
  const smoke = workflows(decl, { mode: 'dogfood' }).find((w) => w.file === 'smoke-boot.yml')!;
  const hex = 'cd'.repeat(32);

  it('refuses an image-ref of another repository at the first step; no later step runs', async () => {
    const { record } = await run(smoke, 'workflow_dispatch', {
      'image-ref': `ghcr.io/evil/${decl.image.name}@sha256:${hex}`,
    });
    const boot = record.jobs.boot!;
    expect(record.ok).toBe(false);
    expect(boot.result).toBe('failure');
    const [first, ...rest] = boot.order.map((id) => boot.steps[id]!);
    expect(first!.result).toBe('failure');
    expect(first!.error).toMatch(/not in ghcr\.io\/keel-project\/keel-os: refused before any registry call/);
    expect(rest.map((s) => s.result)).toEqual(rest.map(() => 'skipped'));
    expect(rest.filter((s) => s.hop).map((s) => s.hop)).toEqual(['verify', 'smoke-boot', 'update-test', 'changelog']);
    expect(record.jobs.promote!.result).toBe('skipped');
  });
});

describe('keel run: secrets are scoped to environments', () => {
  const reader = (id: string, environment?: string) =>
    job(id, {
      name: id,
      runsOn: 'local',
      timeoutMinutes: 1,
      permissions: {},
      ...(environment ? { environment: lit(environment) } : {}),
      steps: [
        runStep({
          name: 'keep the secret',
          run: 'true',
          local: {
            local: 'write-files',
            dir: 'out',
            files: { key: secret('COSIGN_PRIVATE_KEY'), token: secret('GITHUB_TOKEN') },
          },
        }),
        runStep({
          id: 'read',
          name: 'read it back',
          run: 'true',
          local: { local: 'read-files', dir: 'out', outputs: { key: { file: 'key', pattern: '.*' } } },
          outputs: ['key'],
        }),
      ],
    });
  const wf: Workflow = {
    file: 'scoped.yml',
    source: 'test',
    name: 'scoped',
    on: { workflow_dispatch: {} },
    permissions: {},
    actions: { kind: 'local' },
    jobs: [reader('plain'), reader('released', 'release')],
  };

  it('a job without an environment reads an empty release secret; one with it reads the value', async () => {
    const { record, lines } = await run(wf, 'workflow_dispatch');
    expect(record.ok).toBe(true);
    expect(record.jobs.plain!.steps.read!.outputs.key).toBe('');
    expect(record.jobs.released!.steps.read!.outputs.key).toBe('PRIVATE-KEY-MATERIAL-0123456789');
    expect(lines.some((l) => l.includes('job released: released (environment release)'))).toBe(true);
  });
});
