// test-kind: integration
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { runWorkflow, type RunRecord } from '../../cli/runner.js';
import { repoRoot } from '../../workflows-src/action-specs.js';
import { lit, type Expr } from '../../workflows-src/expr.js';
import { loadRepoDeclarations, workflows } from '../../workflows-src/index.js';
import type { AnyKeelStep } from '../../workflows-src/model.js';
import { fakeServices } from '../harness/local-services.js';
import { standInHops } from '../harness/stand-ins.js';
import { tmpdir } from '../harness/tools.js';

/**
 * The reusable smoke-boot workflow as a caller's run would use it: the settings hop (its bundle)
 * reads the caller's declarations from the checkout, and the boot and update-test hops get those
 * values, or the caller's non-empty overrides. The boot hops are stood in by steps that echo the
 * inputs they were given (the hops are tested on their own).
 */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
const tmp = (p: string) => {
  const d = tmpdir(p);
  dirs.push(d);
  return d;
};

// The reusable workflows do not depend on this repository's declarations.
const reusable = workflows(loadRepoDeclarations(), {
  mode: 'reusable',
  release: { sha: 'a'.repeat(40), version: 'v9.9.9' },
}).find((w) => w.file === 'reusable-smoke-boot.yml')!;

/** Stand-ins: the boot and the update test echo their inputs; the rest output what later steps read. */
function outputsOf(step: AnyKeelStep): Record<string, Expr> {
  const w = step.with as Record<string, Expr>;
  if (step.hop === 'smoke-boot')
    return { ...w, 'image-ref': w.image!, passed: lit('true'), reason: lit('multi-user'), digest: lit('') };
  if (step.hop === 'update-test') return { ...w, passed: lit('true'), reason: lit('') };
  if (step.hop === 'changelog') return { markdown: lit('') };
  return {};
}

const image = 'ghcr.io/my-org/my-os';
const ref = `${image}@sha256:${'c'.repeat(64)}`;

/** A caller's checkout: the example declarations with `smokeBoot` as their smoke-boot section. */
function callerCheckout(smokeBoot: string): string {
  const dir = tmp('keel-caller-');
  const example = fs.readFileSync(path.join(repoRoot, 'declarations/distro.yaml'), 'utf8');
  fs.mkdirSync(path.join(dir, 'declarations'));
  fs.writeFileSync(
    path.join(dir, 'declarations/distro.yaml'),
    example.replace(/^smoke-boot:\n(?: {2}.*\n)*/m, `smoke-boot:\n${smokeBoot}\n`),
  );
  return dir;
}

async function call(smokeBoot: string, overrides: Record<string, string>): Promise<RunRecord> {
  return runWorkflow({
    workflow: standInHops(reusable, outputsOf, ['settings']),
    event: 'workflow_dispatch',
    // What GitHub passes a called workflow: the caller's with:, over the inputs' defaults.
    inputs: {
      image,
      'image-ref': ref,
      'public-key': 'cosign.pub',
      'signing-identity': 'repository',
      'candidate-tag': 'candidate',
      'stable-tag': 'stable',
      'update-test': 'true',
      'free-disk': 'true',
      declarations: 'declarations/distro.yaml',
      environment: 'release',
      memory: '0',
      cpus: '0',
      'boot-timeout': '0',
      ...overrides,
    },
    services: fakeServices(tmp('keel-settings-key-')),
    runsDir: tmp('keel-settings-runs-'),
    projectDir: callerCheckout(smokeBoot),
    repository: 'my-org/my-os',
    log: () => undefined,
  });
}

const bootInputs = (r: RunRecord) => r.jobs.boot!.steps.boot!.outputs;

describe('reusable smoke-boot: the settings come from the caller’s declarations', () => {
  it('the boot and the update test get the declared values; the declarations can switch the update test off', async () => {
    const r = await call(
      '  backend: direct\n  memory: 3072\n  cpus: 3\n  timeout: 700\n  kernel-args: "quiet splash"\n  update-test: false',
      {},
    );
    expect(r.jobs.boot!.result).toBe('success');
    expect(bootInputs(r)).toMatchObject({ memory: '3072', cpus: '3', timeout: '700', 'kernel-args': 'quiet splash' });
    expect(r.jobs.boot!.steps.update!.result).toBe('skipped');
    expect(r.jobs.boot!.steps.settings!.summary).toMatch(/declarations/);
  });

  it('a non-empty input overrides the declarations; the update test runs with the same guest', async () => {
    const r = await call('  memory: 3072\n  timeout: 700', { memory: '4096', 'kernel-args': 'debug' });
    expect(bootInputs(r)).toMatchObject({ memory: '4096', timeout: '700', 'kernel-args': 'debug', cpus: '2' });
    expect(r.jobs.boot!.steps.update!.outputs).toMatchObject({ memory: '4096', timeout: '700', cpus: '2' });
  });

  it('a bad override fails the settings step, and nothing boots', async () => {
    const r = await call('  memory: 3072', { backend: 'kvm' });
    expect(r.jobs.boot!.result).toBe('failure');
    expect(r.jobs.boot!.steps.settings!.error).toMatch(/input backend/);
    expect(r.jobs.boot!.steps.boot!.result).toBe('skipped');
  });
});
