// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { validate } from '@actions/languageservice';
import fs from 'node:fs';
import path from 'node:path';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { parse } from 'yaml';
import { parseDeclarations, type Distro } from '../../actions/lib/declarations.js';
import { checkWorkflow, renderWorkflow, workflows, type Workflow } from '../../workflows-src/index.js';
import { evaluateCondition, type EvalContext } from '../../workflows-src/expr.js';
import type { Job } from '../../workflows-src/model.js';
import { variantLegs } from '../../workflows-src/variants.js';
import { lintWorkflow } from './checks.js';
import { keelHop, root, type YJob, type YStep, type YWorkflow } from './helpers.js';

/**
 * Image variants (issue 19) in the generated build workflow: with two variants the build and
 * sign jobs are matrices, one leg per variant, each pushing, signing and queueing under its own
 * image; with one variant the constants are filled in and no matrix is emitted.
 */
const baseYaml = fs.readFileSync(path.join(root, 'declarations', 'distro.yaml'), 'utf8');
const withVariants = (list: string): Distro => parseDeclarations(`${baseYaml}\nvariants:\n${list}`);
const TWO = withVariants(
  '  - { name: main }\n  - name: nvidia\n    build-args: { GPU: nvidia, DRIVER: "570" }\n    containerfile: Containerfile.nvidia\n    target: gpu\n',
);
const buildOf = (d: Distro): Workflow => workflows(d, { mode: 'dogfood' }).find((w) => w.file === 'build.yml')!;
const yamlOf = (wf: Workflow) => parse(renderWorkflow(wf)) as YWorkflow;
const keelStep = (j: YJob, hop: string): YStep => j.steps.find((s) => keelHop(s.uses) === hop)!;

describe('build.yml with two image variants', () => {
  const wf = buildOf(TWO);
  const y = yamlOf(wf);
  const image = `${TWO.image.registry}/${TWO.image.name}`;

  it('one leg per variant: the first is the main image, the second <image>-<name>, with its build inputs', () => {
    expect(variantLegs(TWO)).toEqual([
      { variant: 'main', image, 'build-args': '', containerfile: 'Containerfile', target: '' },
      {
        variant: 'nvidia',
        image: `${image}-nvidia`,
        'build-args': 'DRIVER=570\nGPU=nvidia',
        containerfile: 'Containerfile.nvidia',
        target: 'gpu',
      },
    ]);
    for (const id of ['build', 'sign'])
      expect([id, y.jobs[id]!.strategy]).toEqual([id, { 'fail-fast': false, matrix: { include: variantLegs(TWO) } }]);
  });

  it('the build hop gets the leg’s build-args, containerfile and target; push, rechunk and the group its image', () => {
    const build = y.jobs.build!;
    expect(keelStep(build, 'build').with).toMatchObject({
      'build-args': '${{ matrix.build-args }}',
      containerfile: '${{ matrix.containerfile }}',
      target: '${{ matrix.target }}',
      'credentials-for': '${{ matrix.image }}',
    });
    expect(keelStep(build, 'push').with).toMatchObject({ image: '${{ matrix.image }}' });
    expect(keelStep(build, 'rechunk').with).toMatchObject({ 'previous-image': '${{ matrix.image }}:stable' });
    expect(build.concurrency!.group).toBe('keel-build-${{ matrix.image }}-${{ github.ref }}');
    expect(build.outputs).toBeUndefined();
  });

  it('each leg hands over under its own artifact name, and signs the digest its own leg pushed', () => {
    const upload = y.jobs.build!.steps.find((s) => s.uses?.includes('upload-artifact'))!;
    expect(upload.with!.name).toBe('keel-image-${{ matrix.variant }}');
    const sign = y.jobs.sign!;
    const download = sign.steps.find((s) => s.uses?.includes('download-artifact'))!;
    expect(download.with).toEqual({ name: 'keel-image-${{ matrix.variant }}', path: 'keel-image' });
    expect(keelStep(sign, 'sign').with!['image-ref']).toBe('${{ steps.handoff.outputs.image-ref }}');
    // The pull-request job stays off (no pull-request key declared) and the release environment holds.
    expect(sign.environment).toBe(TWO.environment);
  });

  it('is a sound model, passes the workflow policy checks and GitHub’s validator', async () => {
    expect(checkWorkflow(wf)).toEqual([]);
    const text = renderWorkflow(wf);
    expect(lintWorkflow(wf.file, text)).toEqual([]);
    const doc = TextDocument.create('file:///variants/.github/workflows/build.yml', 'yaml', 1, text);
    expect((await validate(doc)).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });
});

const smokeBootOf = (d: Distro, mode: 'dogfood' | 'reusable' = 'dogfood'): Workflow =>
  workflows(d, { mode, release: { sha: 'a'.repeat(40), version: 'v9.9.9' } }).find((w) =>
    w.file.endsWith('smoke-boot.yml'),
  )!;

describe('smoke-boot.yml with two image variants', () => {
  const wf = smokeBootOf(TWO);
  const y = yamlOf(wf);
  const image = `${TWO.image.registry}/${TWO.image.name}`;
  const stepNamed = (j: YJob, name: RegExp): YStep => j.steps.find((s) => name.test(s.name ?? ''))!;

  it('boots and promotes each variant in its own leg, the promote leg queueing under its own image', () => {
    for (const id of ['boot', 'promote'])
      expect([id, y.jobs[id]!.strategy]).toEqual([id, { 'fail-fast': false, matrix: { include: variantLegs(TWO) } }]);
    expect(y.jobs.boot!.outputs).toBeUndefined();
    expect(y.jobs.promote!.needs).toEqual(['boot']);
    expect(y.jobs.promote!.concurrency).toEqual({
      group: 'keel-promote-${{ matrix.image }}',
      'cancel-in-progress': false,
    });
    expect(y.jobs.promote!.environment).toBe(TWO.environment);
  });

  it('each boot leg takes its own variant’s digest from the build run, checks its repository, boots and update-tests it', () => {
    const boot = y.jobs.boot!;
    const download = boot.steps.find((s) => s.uses?.includes('download-artifact'))!;
    expect(download.with).toMatchObject({
      name: 'keel-image-${{ matrix.variant }}',
      'run-id': '${{ github.event.workflow_run.id }}',
    });
    expect(stepNamed(boot, /handed-over image-ref/).env).toEqual({
      IMAGE: '${{ matrix.image }}',
      IMAGE_REF: '${{ steps.handoff.outputs.image-ref }}',
    });
    const ref = '${{ steps.handoff.outputs.image-ref || inputs.image-ref }}';
    expect(keelStep(boot, 'verify').with!['image-ref']).toBe(ref);
    expect(keelStep(boot, 'smoke-boot').with!.image).toBe(ref);
    expect(keelStep(boot, 'update-test').with!['image-ref']).toBe('${{ steps.boot.outputs.image-ref }}');
    const changelog = boot.steps.find((s) => s.uses?.includes('upload-artifact') && /notes/.test(s.name ?? ''))!;
    expect(changelog.with!.name).toBe('keel-changelog-${{ matrix.variant }}-${{ github.run_id }}');
    // The verdict is the last thing a leg does: it exists only when verify, boot and update test passed.
    const [record, upload] = boot.steps.slice(-2);
    expect(record!.env!.IMAGE_REF).toBe('${{ steps.boot.outputs.image-ref }}');
    expect(upload!.with).toMatchObject({
      name: 'keel-boot-${{ matrix.variant }}',
      path: 'keel-boot/',
      'if-no-files-found': 'error',
    });
  });

  it('each promote leg promotes the digest its own boot leg booted, refusing one outside its repository', () => {
    const promote = y.jobs.promote!;
    const download = promote.steps.find((s) => s.uses?.includes('download-artifact') && /verdict/.test(s.name ?? ''))!;
    expect(download.with).toEqual({ name: 'keel-boot-${{ matrix.variant }}', path: 'keel-boot' });
    expect(stepNamed(promote, /outside this variant/).env).toEqual({
      IMAGE: '${{ matrix.image }}',
      IMAGE_REF: '${{ steps.booted.outputs.image-ref }}',
    });
    expect(keelStep(promote, 'promote').with).toMatchObject({
      'image-ref': '${{ steps.booted.outputs.image-ref }}',
      'release-date': '${{ steps.booted.outputs.release-date }}',
      'require-tag': 'candidate',
    });
    // One GitHub Release per date: the main image's leg publishes it, with its own changelog.
    expect(keelStep(promote, 'github-release').if).toMatch(/matrix\.variant == 'main'\)?$/);
    expect(promote.steps.find((s) => s.id === 'release-notes')!.with!.name).toBe(
      'keel-changelog-${{ matrix.variant }}-${{ github.run_id }}',
    );
  });

  // Conditions evaluated as GitHub does, for a leg of the model's matrix.
  const legOf = (variant: string) => variantLegs(TWO).find((l) => l.variant === variant)!;
  const ctx = (event: string, variant: string, ref = ''): EvalContext => ({
    github: (p) => (p === 'event_name' ? event : undefined),
    input: (n) => (n === 'image-ref' ? ref : ''),
    matrix: (k) => legOf(variant)[k],
    // A hosted runner, and every earlier step wrote its outputs.
    runner: (p) => (p === 'environment' ? 'github-hosted' : undefined),
    stepOutput: () => 'written',
  });
  const runs = (j: Job, c: EvalContext) => j.steps.map((s) => !s.if || evaluateCondition(s.if, c));
  const jobOf = (id: string) => wf.jobs.find((j) => j.id === id)!;
  const digest = 'sha256:' + 'e'.repeat(64);

  it('on workflow_run every leg runs every step of its own', () => {
    for (const v of ['main', 'nvidia']) {
      const c = ctx('workflow_run', v);
      for (const id of ['boot', 'promote']) {
        const skipped = jobOf(id)
          .steps.filter((s, i) => !runs(jobOf(id), c)[i])
          .map((s) => s.id ?? s.name);
        // The dispatch-only guards; the GitHub Release is the main image's leg's.
        const expected = [
          ...(id === 'boot'
            ? [
                "Refuse a dispatched image-ref outside every variant's repository",
                "Refuse a dispatched image-ref outside this variant's repository",
              ]
            : ["Refuse a dispatched image-ref outside every variant's repository"]),
          ...(id === 'promote' && v !== 'main' ? ['release-notes', 'github-release'] : []),
        ];
        expect([id, v, skipped]).toEqual([id, v, expected]);
      }
    }
  });

  it('a dispatched digest is tested and promoted by the leg of its repository only', () => {
    const ref = `${image}-nvidia@${digest}`;
    const nvidia = ctx('workflow_dispatch', 'nvidia', ref);
    const main = ctx('workflow_dispatch', 'main', ref);
    const boot = jobOf('boot');
    const bootIndex = boot.steps.findIndex((s) => s.id === 'boot');
    expect(runs(boot, nvidia)[bootIndex]).toBe(true);
    expect(runs(boot, main).some(Boolean)).toBe(false);
    const promote = jobOf('promote');
    const promoteIndex = promote.steps.findIndex((s) => s.id === 'promote');
    expect(runs(promote, nvidia)[promoteIndex]).toBe(true);
    expect(runs(promote, main).some(Boolean)).toBe(false);
  });

  it('a dispatched digest of no variant’s repository is refused in every leg, before any other step', () => {
    for (const ref of [`ghcr.io/someone/else@${digest}`, `${image}-nvidia:latest`, `${image}-amd@${digest}`])
      for (const v of ['main', 'nvidia']) {
        for (const id of ['boot', 'promote']) {
          const r = runs(jobOf(id), ctx('workflow_dispatch', v, ref));
          expect([ref, v, id, r.indexOf(true), r.lastIndexOf(true)]).toEqual([ref, v, id, 0, 0]);
          expect(jobOf(id).steps[0]!.name).toMatch(/outside every variant/);
        }
      }
  });

  it('the failure notification does not claim one leg’s reason for the run', () => {
    const notify = y.jobs.notify!;
    expect(notify.needs).toEqual(['boot', 'promote']);
    expect(String(notify.steps.at(-1)!.with!.message)).toMatch(
      /boot or update test failed \(the run''s summary names the leg/,
    );
  });

  it('is a sound model, passes the workflow policy checks and GitHub’s validator', async () => {
    expect(checkWorkflow(wf)).toEqual([]);
    const text = renderWorkflow(wf);
    expect(lintWorkflow(wf.file, text)).toEqual([]);
    const doc = TextDocument.create('file:///variants/.github/workflows/smoke-boot.yml', 'yaml', 1, text);
    expect((await validate(doc)).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('without variants, and in the reusable workflow, smoke-boot is the repository’s, byte for byte', () => {
    const plain = parseDeclarations(baseYaml);
    expect(renderWorkflow(smokeBootOf(plain))).toBe(
      fs.readFileSync(path.join(root, '.github/workflows/smoke-boot.yml'), 'utf8'),
    );
    expect(renderWorkflow(smokeBootOf(TWO, 'reusable'))).toBe(renderWorkflow(smokeBootOf(plain, 'reusable')));
  });
});

describe('rollback.yml and cleanup.yml with two image variants', () => {
  const byFile = (file: string) => workflows(TWO, { mode: 'dogfood' }).find((w) => w.file === file)!;

  it('rollback moves each variant’s stable to its own stable.<date>, in that variant’s promotion group', () => {
    const wf = byFile('rollback.yml');
    const j = yamlOf(wf).jobs.rollback!;
    expect(j.strategy).toEqual({ 'fail-fast': false, matrix: { include: variantLegs(TWO) } });
    expect(keelStep(j, 'resolve').with!.image).toBe('${{ matrix.image }}:stable.${{ inputs.date }}');
    expect(j.concurrency!.group).toBe('keel-promote-${{ matrix.image }}');
    expect(j.outputs).toBeUndefined();
    expect(checkWorkflow(wf)).toEqual([]);
    expect(lintWorkflow(wf.file, renderWorkflow(wf))).toEqual([]);
  });

  it('cleanup cleans each variant’s repository', () => {
    const wf = byFile('cleanup.yml');
    const j = yamlOf(wf).jobs.cleanup!;
    expect(j.strategy).toEqual({ 'fail-fast': false, matrix: { include: variantLegs(TWO) } });
    expect(keelStep(j, 'cleanup').with!.image).toBe('${{ matrix.image }}');
    expect(j.concurrency!.group).toBe('keel-cleanup-${{ matrix.image }}');
    expect(checkWorkflow(wf)).toEqual([]);
    expect(lintWorkflow(wf.file, renderWorkflow(wf))).toEqual([]);
  });

  it('without variants both are the repository’s, byte for byte', () => {
    const plain = parseDeclarations(baseYaml);
    for (const file of ['rollback.yml', 'cleanup.yml'])
      expect(renderWorkflow(workflows(plain, { mode: 'dogfood' }).find((w) => w.file === file)!)).toBe(
        fs.readFileSync(path.join(root, '.github/workflows', file), 'utf8'),
      );
  });
});

describe('build.yml with one or no variant', () => {
  it('no variants: the repository workflow, byte for byte, without a matrix', () => {
    const plain = parseDeclarations(baseYaml);
    const wf = buildOf(plain);
    expect(renderWorkflow(wf)).toBe(fs.readFileSync(path.join(root, '.github/workflows/build.yml'), 'utf8'));
    expect(wf.jobs.every((j) => !j.strategy)).toBe(true);
  });

  it('one variant: its constants, no matrix, the job outputs kept', () => {
    const one = withVariants('  - { name: desk, image-name: desk-os, build-args: { DE: kde } }\n');
    const y = yamlOf(buildOf(one));
    const build = y.jobs.build!;
    expect(build.strategy).toBeUndefined();
    expect(keelStep(build, 'build').with).toMatchObject({ 'build-args': 'DE=kde', containerfile: 'Containerfile' });
    expect(keelStep(build, 'push').with!.image).toBe(`${one.image.registry}/desk-os`);
    expect(Object.keys(build.outputs!)).toContain('image-ref');
  });

  it('the reusable workflows ignore the declarations’ variants (the caller’s are unknown when generating)', () => {
    const reusable = (d: Distro) =>
      workflows(d, { mode: 'reusable', release: { sha: 'a'.repeat(40), version: 'v9.9.9' } }).map(renderWorkflow);
    expect(reusable(TWO)).toEqual(reusable(parseDeclarations(baseYaml)));
  });
});
