// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { validate } from '@actions/languageservice';
import fs from 'node:fs';
import path from 'node:path';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { parse } from 'yaml';
import { parseDeclarations, type Distro } from '../../actions/lib/declarations.js';
import { checkWorkflow, renderWorkflow, workflows, type Workflow } from '../../workflows-src/index.js';
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
