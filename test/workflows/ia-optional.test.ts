// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evaluateCondition, evaluateString, loadRepoDeclarations } from '../../workflows-src/index.js';
import { iaConfiguredStep } from '../../workflows-src/ia-optional.js';
import { buildDiskWorkflow } from '../../workflows-src/workflows/build-disk.js';

/** Reusable build-disk without Internet Archive keys: the upload and site bump skip with a notice. */
const wf = buildDiskWorkflow(loadRepoDeclarations(), 'reusable');
const publish = wf.jobs.find((j) => j.id === 'publish')!;

function runCheck(env: Record<string, string>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ia-keys-'));
  try {
    const out = path.join(dir, 'output');
    fs.writeFileSync(out, '');
    const step = iaConfiguredStep();
    const r = spawnSync('bash', ['-c', step.run], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', SHLVL: '1', GITHUB_OUTPUT: out, IA_ACCESS: '', IA_SECRET: '', ...env },
    });
    return { status: r.status, stdout: r.stdout, output: fs.readFileSync(out, 'utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('optional Internet Archive keys (reusable build-disk)', () => {
  it('the IA secrets of the call are optional', () => {
    const secrets = wf.on.workflow_call!.secrets!;
    expect(secrets.IA_ACCESS_KEY!.required).toBe(false);
    expect(secrets.IA_SECRET_KEY!.required).toBe(false);
  });

  it('no keys: the check says so with a notice and succeeds; both keys: configured', () => {
    const none = runCheck({});
    expect(none.status).toBe(0);
    expect(none.stdout).toContain('::notice title=Internet Archive::no IA_ACCESS_KEY/IA_SECRET_KEY');
    expect(none.output).toBe('configured=false\n');
    expect(runCheck({ IA_ACCESS: 'a' }).output).toBe('configured=false\n');
    const both = runCheck({ IA_ACCESS: 'a', IA_SECRET: 'b' });
    expect([both.status, both.stdout, both.output]).toEqual([0, '', 'configured=true\n']);
  });

  it('the upload and the site bump run only when the keys are configured', () => {
    const step = (hop: string) => publish.steps.find((s) => s.type === 'keel' && s.hop === hop)!;
    const check = publish.steps.findIndex((s) => s.id === 'ia-keys');
    expect(check).toBeGreaterThan(-1);
    expect(check).toBeLessThan(publish.steps.indexOf(step('ia-upload')));
    for (const [configured, runs] of [
      ['true', true],
      ['false', false],
    ] as const) {
      const ctx = {
        stepOutput: (s: string, o: string) =>
          s === 'ia-keys' && o === 'configured'
            ? configured
            : s === 'settings' && o === 'site-repository'
              ? 'me/site'
              : undefined,
      };
      expect(evaluateCondition(step('ia-upload').if!, ctx)).toBe(runs);
      expect(evaluateCondition(step('site-bump').if!, ctx)).toBe(runs);
    }
  });

  it('keel run computes the same answer from the secrets it holds', () => {
    const s = iaConfiguredStep();
    if (s.local.local !== 'expand-templates') throw new Error('expected an expand-templates hint');
    const configured = s.local.templates.configured!;
    const secrets = (v: Record<string, string>) => ({ secret: (n: string) => v[n] });
    expect(evaluateString(configured, secrets({ IA_ACCESS_KEY: 'a', IA_SECRET_KEY: 'b' }))).toBe('true');
    expect(evaluateString(configured, secrets({ IA_ACCESS_KEY: 'a' }))).toBe('false');
    expect(evaluateString(configured, secrets({}))).toBe('false');
  });
});
