// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseDeclarations } from '../../actions/lib/declarations.js';
import { SETTINGS } from '../../actions/lib/settings.js';
import { renderWorkflow, workflows } from '../../workflows-src/index.js';
import { keelHop, readWorkflow, root, type YJob, type YStep, type YWorkflow } from './helpers.js';

/**
 * Issue 21: the reusable workflows take the validate and smoke-boot settings from the caller's
 * declarations (the settings hop, right after checkout and free-disk), with each workflow input
 * an override that is empty (or 0) by default; the dogfood workflows keep them as constants.
 */
const hopStep = (j: YJob, hop: string): YStep => j.steps.find((s) => keelHop(s.uses) === hop)!;
const callInputs = (wf: YWorkflow) =>
  (wf.on.workflow_call as { inputs: Record<string, { type: string; default?: unknown }> }).inputs;

describe.each([
  [
    'reusable-smoke-boot.yml',
    'boot',
    'smoke-boot',
    ['backend', 'memory', 'cpus', 'boot-timeout', 'kernel-args', 'success-pattern', 'failure-pattern'],
  ],
  [
    'reusable-build.yml',
    'build',
    'validate',
    [
      'checks',
      'warn-checks',
      'min-initramfs-mb',
      'require-ostree-module',
      'initramfs-modules',
      'repo-globs',
      'var-allow',
    ],
  ],
] as const)('%s', (file, jobId, hop, names) => {
  const wf = readWorkflow(file);
  const j = wf.jobs[jobId]!;
  const settings = j.steps.findIndex((s) => keelHop(s.uses) === 'settings');

  it('runs the settings hop right after checkout and free-disk, with the declarations path and every override', () => {
    expect(j.steps[settings - 2]!.name).toBe('Check out');
    expect(j.steps[settings - 1]!.name).toMatch(/^Free disk/);
    const w = j.steps[settings]!.with!;
    expect(w.declarations).toBe('${{ inputs.declarations }}');
    for (const n of names) expect([n, w[n]]).toEqual([n, `\${{ inputs.${n} }}`]);
  });

  it(`the ${hop} hop reads each setting from the settings step, never the raw input`, () => {
    const w = hopStep(j, hop).with!;
    const inputOf: Record<string, string> = { 'boot-timeout': 'timeout' };
    for (const n of names) expect([n, w[inputOf[n] ?? n]]).toEqual([n, `\${{ steps.settings.outputs.${n} }}`]);
  });

  it('each override is empty (a number: 0) by default and says which declarations key it overrides', () => {
    const inputs = callInputs(wf);
    for (const n of names) {
      const number = n === 'memory' || n === 'cpus' || n === 'boot-timeout' || n === 'min-initramfs-mb';
      expect([n, inputs[n]!.type, inputs[n]!.default]).toEqual([n, number ? 'number' : 'string', number ? 0 : '']);
      const { section, key } = SETTINGS[n];
      expect(JSON.stringify(inputs[n])).toContain(`your declarations' ${section}.${key}`);
    }
  });
});

describe('reusable-build-disk.yml', () => {
  const wf = readWorkflow('reusable-build-disk.yml');
  const fromSettings = (n: string) => `\${{ steps.settings.outputs.${n} }}`;

  it('the disk job builds the media from the caller’s iso settings, and requires a name', () => {
    const disk = wf.jobs.disk!;
    const settings = hopStep(disk, 'settings').with!;
    expect(settings.required).toBe('iso-name');
    expect(hopStep(disk, 'build-disk').with).toMatchObject({
      type: fromSettings('iso-type'),
      backend: fromSettings('iso-backend'),
      label: fromSettings('iso-label'),
      'boot-test': fromSettings('iso-boot-test'),
      'boot-timeout': fromSettings('iso-boot-timeout'),
      name: `${fromSettings('iso-name')}-\${{ steps.date.outputs.release-date }}`,
    });
    // The publish job decides on the caller's publish-untested, handed over as a job output (text).
    expect(disk.outputs!['publish-untested']).toBe(fromSettings('publish-untested'));
    expect(wf.jobs.publish!.if).toContain("needs.disk.outputs.publish-untested == 'true'");
  });

  it('the publish job takes the Internet Archive and site settings from the caller’s declarations', () => {
    const publish = wf.jobs.publish!;
    const settings = publish.steps.findIndex((x) => keelHop(x.uses) === 'settings');
    const expand = publish.steps.findIndex((x) => x.id === 'expand');
    expect(settings).toBeGreaterThan(-1);
    expect(settings).toBeLessThan(expand);
    expect(publish.steps[expand]!.env).toMatchObject({
      T_IDENTIFIER: fromSettings('ia-identifier'),
      T_METADATA: fromSettings('ia-metadata'),
      T_SITE_VALUE: fromSettings('site-value'),
      T_SITE_EXTRA_CONSTANTS: fromSettings('site-extra-constants'),
    });
    expect(hopStep(publish, 'ia-upload').with).toMatchObject({
      'torrent-timeout': fromSettings('ia-torrent-timeout'),
      'require-torrent': fromSettings('ia-require-torrent'),
    });
    expect(hopStep(publish, 'site-bump').with).toMatchObject({
      repository: fromSettings('site-repository'),
      constant: fromSettings('site-constant'),
      files: fromSettings('site-files'),
      base: fromSettings('site-base'),
      'branch-prefix': fromSettings('site-branch-prefix'),
      'auto-merge': fromSettings('site-auto-merge'),
    });
  });

  it('no input is required beyond the image and the key: the rest is in the caller’s declarations', () => {
    const required = Object.entries(callInputs(wf))
      .filter(([, v]) => (v as { required?: boolean }).required)
      .map(([k]) => k);
    expect(required.sort()).toEqual(['image', 'public-key']);
  });
});

describe('dogfood workflows keep the declarations as constants', () => {
  const baseYaml = fs.readFileSync(path.join(root, 'declarations', 'distro.yaml'), 'utf8');

  it('no settings step; the example distro passes no escape hatch it does not declare', () => {
    for (const file of ['build.yml', 'smoke-boot.yml']) {
      const wf = readWorkflow(file);
      for (const j of Object.values(wf.jobs)) expect(j.steps.some((s) => keelHop(s.uses) === 'settings')).toBe(false);
    }
    const validate = hopStep(readWorkflow('build.yml').jobs.build!, 'validate').with!;
    expect(Object.keys(validate)).not.toEqual(expect.arrayContaining(['checks']));
    expect(validate).not.toHaveProperty('warn-checks');
    expect(validate).not.toHaveProperty('var-allow');
  });

  it('declared escape hatches reach the validate hop as constants', () => {
    const decl = parseDeclarations(
      baseYaml.replace(
        'validate:\n',
        'validate:\n  checks: [one-kernel, passwd]\n  warn-checks: [none]\n  var-allow: [/var/lib/flatpak]\n',
      ),
    );
    const build = workflows(decl, { mode: 'dogfood' }).find((w) => w.file === 'build.yml')!;
    const y = parse(renderWorkflow(build)) as YWorkflow;
    expect(hopStep(y.jobs.build!, 'validate').with).toMatchObject({
      checks: 'one-kernel\npasswd',
      'warn-checks': 'none',
      'var-allow': '/var/lib/flatpak',
    });
  });
});
