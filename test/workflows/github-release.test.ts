// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { keelHop, readWorkflow, type YStep } from './helpers.js';

/**
 * smoke-boot.yml (dogfood and reusable): the promotion's GitHub Release. The boot job hands the
 * changelog to the promote job under a run-unique artifact name; the promote job publishes it
 * only after the promote step (the implicit success(): never when promote failed), with the run's
 * token and contents: write, and no other new permission or secret.
 */
describe.each(['smoke-boot.yml', 'reusable-smoke-boot.yml'])('%s: the GitHub Release of a promotion', (file) => {
  const wf = readWorkflow(file);
  const boot = wf.jobs.boot!;
  const promote = wf.jobs.promote!;
  const index = (steps: YStep[], pred: (s: YStep) => boolean) => steps.findIndex(pred);
  const continuesOnError = (s: YStep) => (s as { 'continue-on-error'?: unknown })['continue-on-error'];

  it('the boot job uploads the changelog Markdown after the changelog step, under a run-unique name', () => {
    const changelog = index(boot.steps, (s) => keelHop(s.uses) === 'changelog');
    const upload = index(boot.steps, (s) => (s.uses ?? '').startsWith('actions/upload-artifact@'));
    expect(changelog).toBeGreaterThanOrEqual(0);
    expect(upload).toBeGreaterThan(changelog);
    const u = boot.steps[upload]!;
    expect(u.with!.path).toBe('${{ steps.changelog.outputs.markdown }}');
    expect(u.with!.name).toBe('keel-changelog-${{ github.run_id }}');
    expect(u.if).toBe("steps.changelog.outputs.markdown != ''");
    // Release notes never gate the boot.
    expect(continuesOnError(u)).toBe(true);
  });

  it('the promote job downloads it and publishes the release only after the promote step', () => {
    const steps = promote.steps;
    const p = index(steps, (s) => keelHop(s.uses) === 'promote');
    const dl = index(steps, (s) => (s.uses ?? '').startsWith('actions/download-artifact@'));
    const rel = index(steps, (s) => keelHop(s.uses) === 'github-release');
    expect(p).toBeGreaterThanOrEqual(0);
    expect(dl).toBeGreaterThan(p);
    expect(rel).toBeGreaterThan(dl);
    const d = steps[dl]!;
    const upload = boot.steps.find((s) => (s.uses ?? '').startsWith('actions/upload-artifact@'))!;
    expect(d.with!.name).toBe(upload.with!.name);
    expect(d.with!['run-id']).toBeUndefined(); // this run's artifact, no token needed
    const r = steps[rel]!;
    // No if: the default success() means only when promote (and every step before) succeeded.
    expect(r.if).toBeUndefined();
    expect(continuesOnError(r)).toBeUndefined();
    expect(r.with).toEqual({
      'release-date': '${{ needs.boot.outputs.release-date }}',
      'stable-tag': expect.stringMatching(/^(stable|\$\{\{ inputs\.stable-tag \}\})$/) as unknown as string,
      'notes-file': `${d.with!.path as string}/changelog.md`,
      token: '${{ secrets.GITHUB_TOKEN }}',
    });
    expect(r.with!['stable-tag']).toBe(steps[p]!.with!['stable-tag']);
  });

  it('the promote job gains contents: write and nothing else; the boot job no new permission', () => {
    expect(promote.permissions).toEqual({ contents: 'write', packages: 'write' });
    expect(boot.permissions).toEqual({ actions: 'read', contents: 'read', packages: 'read' });
  });

  it('needs no secret beyond the run token (a reusable caller passes nothing new)', () => {
    const releaseSteps = promote.steps.filter((s) => s.id === 'release-notes' || s.id === 'github-release');
    expect(releaseSteps).toHaveLength(2);
    const secretsUsed = JSON.stringify(releaseSteps).match(/secrets\.[A-Z_]+/g) ?? [];
    expect([...new Set(secretsUsed)]).toEqual(['secrets.GITHUB_TOKEN']);
    const call = (wf.on as { workflow_call?: { secrets?: Record<string, unknown> } }).workflow_call;
    if (call) expect(Object.keys(call.secrets ?? {})).not.toContain('GITHUB_TOKEN');
  });
});
