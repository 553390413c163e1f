// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import type { Distro } from '../../actions/lib/declarations.js';
import {
  evaluateCondition,
  evaluateString,
  loadRepoDeclarations,
  renderWorkflow,
  type EvalContext,
  type WorkflowModel,
} from '../../workflows-src/index.js';
import { UNTESTED_DESCRIPTION, UNTESTED_TEXT } from '../../workflows-src/untested-media.js';
import { buildDiskWorkflow } from '../../workflows-src/workflows/build-disk.js';
import type { YWorkflow } from './helpers.js';

/**
 * The bib publish rule: media whose boot test did not run (boot-passed: skipped) are published
 * only with publish-untested: true, say so in the publish job's summary and the IA description,
 * and the disk job warns whenever the test was skipped.
 */
const base = loadRepoDeclarations();
const withIso = (iso: Partial<NonNullable<Distro['iso']>>): Distro => ({ ...base, iso: { ...base.iso!, ...iso } });

const ctxFor = (bootPassed: string, publishUntested: boolean, event = 'workflow_dispatch'): EvalContext => ({
  jobOutput: (job, output) =>
    job !== 'disk'
      ? undefined
      : (
          {
            'boot-passed': bootPassed,
            'release-date': '20261204',
            file: 'os.iso',
            // Reusable: the settings step's value (the caller's iso.publish-untested or the input), as text.
            'publish-untested': String(publishUntested),
          } as Record<string, string>
        )[output],
  stepOutput: (step, output) =>
    step === 'disk' && output === 'boot-passed'
      ? bootPassed
      : step === 'settings' && output === 'publish-untested'
        ? String(publishUntested)
        : undefined,
  github: (p) => (p === 'event_name' ? event : undefined),
});
const job = (wf: WorkflowModel, id: string) => wf.jobs.find((j) => j.id === id)!;
const publishRuns = (wf: WorkflowModel, ctx: EvalContext) => evaluateCondition(job(wf, 'publish').if!, ctx);

const CASES: [string, boolean, boolean][] = [
  ['true', false, true],
  ['true', true, true],
  ['false', false, false],
  ['false', true, false],
  ['skipped', false, false],
  ['skipped', true, true],
];

describe('the publish job condition', () => {
  const reusable = buildDiskWorkflow(base, 'reusable');

  it.each(CASES)('reusable: boot-passed %s, publish-untested %s → publishes: %s', (bp, untested, runs) => {
    expect(publishRuns(reusable, ctxFor(bp, untested))).toBe(runs);
    // Never on behalf of a pull request.
    expect(publishRuns(reusable, ctxFor(bp, untested, 'pull_request'))).toBe(false);
  });

  it('reusable: publish-untested and iso-boot-test come from the caller’s declarations unless the input overrides', () => {
    const on = (parse(renderWorkflow(reusable)) as YWorkflow).on.workflow_call as {
      inputs: Record<string, { type: string; default: unknown; description: string }>;
    };
    expect(on.inputs['publish-untested']).toMatchObject({ type: 'string', default: '' });
    expect(on.inputs['publish-untested']!.description).toMatch(/your declarations' iso\.publish-untested/);
    expect(on.inputs['iso-boot-test']).toMatchObject({ type: 'string', default: '' });
    // The schema's defaults (iso.publish-untested false, iso.boot-test true) apply through the settings step.
    const y = parse(renderWorkflow(reusable)) as YWorkflow;
    expect(y.jobs.disk!.outputs!['publish-untested']).toBe('${{ steps.settings.outputs.publish-untested }}');
  });

  it.each(CASES)('dogfood: boot-passed %s, iso.publish-untested %s → publishes: %s', (bp, untested, runs) => {
    const wf = buildDiskWorkflow(withIso({ 'publish-untested': untested }), 'dogfood');
    expect(publishRuns(wf, ctxFor(bp, false))).toBe(runs);
  });

  it('dogfood without publish-untested keeps the plain condition', () => {
    const text = parse(renderWorkflow(buildDiskWorkflow(base, 'dogfood'))) as YWorkflow;
    expect(text.jobs.publish!.if).toBe(
      "github.event_name != 'pull_request' && needs.disk.outputs.boot-passed == 'true'",
    );
  });
});

describe('the generator', () => {
  it.each([
    ['boot-test: false', { 'boot-test': false }],
    ['backend: bib', { backend: 'bib' as const }],
  ])('refuses %s without publish-untested (the media would never be published)', (_l, iso) => {
    expect(() => buildDiskWorkflow(withIso(iso), 'dogfood')).toThrow(/iso.publish-untested/);
  });

  it.each([
    ['boot-test: false', { 'boot-test': false }],
    ['backend: bib', { backend: 'bib' as const }],
  ])('accepts %s with publish-untested: true, and passes boot-test through', (_l, iso) => {
    const wf = buildDiskWorkflow(withIso({ ...iso, 'publish-untested': true }), 'dogfood');
    const disk = job(wf, 'disk').steps.find((s) => s.type === 'keel' && s.hop === 'build-disk')!;
    expect(disk.type === 'keel' && disk.with['boot-test']).toEqual({
      kind: 'literal',
      value: 'boot-test' in iso ? iso['boot-test'] : true,
    });
  });
});

describe('a skipped boot test never reads as green', () => {
  for (const mode of ['dogfood', 'reusable'] as const) {
    const decl = mode === 'dogfood' ? withIso({ 'publish-untested': true }) : base;
    const wf = buildDiskWorkflow(decl, mode);
    const yaml = parse(renderWorkflow(wf)) as YWorkflow;

    it(`${mode}: the disk job warns (annotation and summary line) only when the test was skipped`, () => {
      const steps = job(wf, 'disk').steps;
      const warn = steps.find((s) => s.name === 'Warn: the media were not boot-tested')!;
      expect(steps.indexOf(warn)).toBe(steps.findIndex((s) => s.id === 'disk') + 1);
      expect(evaluateCondition(warn.if!, ctxFor('skipped', true))).toBe(true);
      expect(evaluateCondition(warn.if!, ctxFor('true', true))).toBe(false);
      const run = yaml.jobs.disk!.steps.find((s) => s.name === warn.name)!.run!;
      expect(run).toContain(`::warning title=${UNTESTED_TEXT}::`);
      expect(run).toContain('>> "$GITHUB_STEP_SUMMARY"');
      expect(run).toContain('they will not be published (publish-untested: false)');
    });

    it(`${mode}: the publish job says so in its summary and in the IA description`, () => {
      const steps = job(wf, 'publish').steps;
      const notice = steps.find((s) => s.name === 'Say that these media were not boot-tested')!;
      expect(evaluateCondition(notice.if!, ctxFor('skipped', true))).toBe(true);
      expect(evaluateCondition(notice.if!, ctxFor('true', true))).toBe(false);
      const run = yaml.jobs.publish!.steps.find((s) => s.name === notice.name)!.run!;
      expect(run).toContain(`**${UNTESTED_TEXT}**`);
      expect(run).toContain('>> "$GITHUB_STEP_SUMMARY"');
      const ia = steps.find((s) => s.type === 'keel' && s.hop === 'ia-upload')!;
      const meta = ia.type === 'keel' ? ia.with.metadata! : undefined;
      const lines = (bp: string) => evaluateString(meta!, ctxFor(bp, true)).split('\n');
      expect(lines('skipped')[0]).toBe(`description:${UNTESTED_DESCRIPTION}`);
      expect(lines('true').join('\n')).not.toContain(UNTESTED_TEXT);
    });
  }
});
