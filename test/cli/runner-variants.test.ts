// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { parseDeclarations } from '../../actions/lib/declarations.js';
import { runWorkflow, type RunRecord } from '../../cli/runner.js';
import { repoRoot } from '../../workflows-src/action-specs.js';
import { and, eq, lit, matrix, or, type Expr } from '../../workflows-src/expr.js';
import { workflows } from '../../workflows-src/index.js';
import type { AnyKeelStep, Step, Workflow } from '../../workflows-src/model.js';
import { fakeServices } from '../harness/local-services.js';
import { standInHops } from '../harness/stand-ins.js';
import { tmpdir } from '../harness/tools.js';

/**
 * smoke-boot.yml with two image variants, walked by `keel run` as GitHub would: the generated
 * workflow with every Keel hop replaced by a stand-in that only sets its outputs (the hops
 * themselves run in the demo and their own tests). What is under test is the wiring: which leg
 * takes which artifact, what reaches each promote leg, and which legs run at all.
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

const decl = parseDeclarations(
  `${fs.readFileSync(path.join(repoRoot, 'declarations/distro.yaml'), 'utf8')}\nvariants:\n  - { name: main }\n  - { name: nvidia }\n`,
);
const image = `${decl.image.registry}/${decl.image.name}`;
const images: Record<string, string> = { main: image, nvidia: `${image}-nvidia` };
const digestOf = (v: string) => `sha256:${(v === 'main' ? 'a' : 'b').repeat(64)}`;
const refOf = (v: string) => `${images[v]}@${digestOf(v)}`;

/** What a stand-in hop outputs: the values the later steps read, computed from its own inputs. */
function standInOutputs(step: AnyKeelStep): Record<string, Expr> {
  const w = step.with as Record<string, Expr>;
  switch (step.hop) {
    case 'smoke-boot':
      return { 'image-ref': w.image!, digest: lit(''), passed: lit('true'), reason: lit('multi-user') };
    case 'update-test':
      return { passed: lit('true'), reason: lit('updated and rolled back') };
    case 'changelog':
      return { markdown: lit('') };
    case 'promote':
      return { 'image-ref': w['image-ref']!, 'release-date': w['release-date']!, digest: lit(''), tags: lit('') };
    default:
      return {};
  }
}

/** The main leg's boot stand-in reports `forged` as what it booted (a tampered verdict). */
const forging =
  (forged: string) =>
  (step: AnyKeelStep): Record<string, Expr> => {
    const out = standInOutputs(step);
    if (step.hop !== 'smoke-boot') return out;
    return { ...out, 'image-ref': or(and(eq(matrix('variant'), 'main'), lit(forged)), out['image-ref']!) };
  };

/** The workflow with each hop a stand-in; `failBoot`: that variant's boot fails (a refused check). */
function standIns(wf: Workflow, failBoot?: string, forged?: string): Workflow {
  const stood = standInHops(wf, forged ? forging(forged) : standInOutputs);
  if (!failBoot) return stood;
  const failing = (s: Step): Step =>
    s.id === 'boot'
      ? ({
          ...s,
          if: s.if ? and(eq(matrix('variant'), failBoot), s.if) : eq(matrix('variant'), failBoot),
          local: { local: 'check-image-ref', ref: lit('the boot failed'), repository: lit(image) },
        } as Step)
      : s;
  return { ...stood, jobs: stood.jobs.map((j) => ({ ...j, steps: j.steps.map(failing) })) };
}

const smokeBoot = workflows(decl, { mode: 'dogfood' }).find((w) => w.file === 'smoke-boot.yml')!;

/** A finished build run of main that handed over both variants' digests. */
function buildRun(runsDir: string): string {
  const id = 'build-run';
  for (const v of ['main', 'nvidia']) {
    const d = path.join(runsDir, id, 'artifacts', `keel-image-${v}`);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'image-ref'), `${refOf(v)}\n`);
    fs.writeFileSync(path.join(d, 'digest'), `${digestOf(v)}\n`);
    fs.writeFileSync(path.join(d, 'release-date'), '20261204\n');
  }
  return id;
}

async function run(opts: { dispatch?: string; failBoot?: string; forged?: string }): Promise<RunRecord> {
  const runsDir = tmp('keel-variant-runs-');
  const buildId = buildRun(runsDir);
  const project = tmp('keel-variant-project-');
  fs.writeFileSync(path.join(project, 'README'), 'a distro\n');
  const repository = 'keel-project/keel';
  return runWorkflow({
    workflow: standIns(smokeBoot, opts.failBoot, opts.forged),
    ...(opts.dispatch
      ? { event: 'workflow_dispatch' as const, inputs: { 'image-ref': opts.dispatch, 'release-date': '' } }
      : {
          event: 'workflow_run' as const,
          eventPayload: {
            workflow_run: {
              id: buildId,
              conclusion: 'success',
              event: 'push',
              head_repository: { full_name: repository },
            },
          },
        }),
    services: fakeServices(tmp('keel-variant-key-')),
    runsDir,
    projectDir: project,
    repository,
    log: () => undefined,
  });
}

const ran = (r: RunRecord, job: string, step: string) => r.jobs[job]?.steps[step]?.result;
const promoted = (r: RunRecord, v: string) => r.jobs[`promote (${v})`]?.steps.promote?.outputs;

describe('keel run smoke-boot.yml with two image variants', () => {
  it('workflow_run: each variant boots the digest its build leg handed over, and its promote leg promotes exactly that', async () => {
    const r = await run({});
    expect(r.ok).toBe(true);
    for (const v of ['main', 'nvidia']) {
      expect(r.jobs[`boot (${v})`]!.steps.boot!.outputs['image-ref']).toBe(refOf(v));
      expect(promoted(r, v)).toMatchObject({ 'image-ref': refOf(v), 'release-date': '20261204' });
    }
    // The GitHub Release is the main image's; the failure report did not run.
    expect([ran(r, 'promote (main)', 'github-release'), ran(r, 'promote (nvidia)', 'github-release')]).toEqual([
      'success',
      'skipped',
    ]);
    expect(r.jobs.notify!.result).toBe('skipped');
  });

  it('one variant fails its boot: no variant is promoted, and the failure is reported', async () => {
    const r = await run({ failBoot: 'nvidia' });
    expect(r.ok).toBe(false);
    expect([r.jobs['boot (main)']!.result, r.jobs['boot (nvidia)']!.result]).toEqual(['success', 'failure']);
    expect(r.jobs['promote (main)']?.result ?? r.jobs.promote!.result).toBe('skipped');
    expect(promoted(r, 'main')).toBeUndefined();
    expect(r.jobs.notify!.steps.notify!.result).toBe('success');
  });

  it('a dispatched digest is booted and promoted by its own variant’s legs only', async () => {
    const r = await run({ dispatch: refOf('nvidia') });
    expect(r.ok).toBe(true);
    expect(promoted(r, 'nvidia')).toMatchObject({ 'image-ref': refOf('nvidia'), 'release-date': '' });
    const main = r.jobs['boot (main)']!;
    expect(Object.values(main.steps).every((s) => s.result === 'skipped')).toBe(true);
    expect(ran(r, 'promote (main)', 'promote')).toBe('skipped');
    expect(ran(r, 'promote (main)', 'notify-promoted')).toBe('skipped');
  });

  it.each([
    ["another variant's digest", refOf('nvidia'), /outside this variant's repository/],
    ['no digest reference', `${image}:stable\nrm -rf /`, /Read and check the verdict/],
  ])(
    'a boot leg that hands over %s: its promote leg refuses the verdict before promoting',
    async (_what, forged, at) => {
      const r = await run({ forged });
      expect(r.ok).toBe(false);
      const leg = r.jobs['promote (main)']!;
      const failed = leg.order.filter((k) => leg.steps[k]!.result === 'failure');

      expect(failed.map((k) => leg.steps[k]!.name)).toEqual([expect.stringMatching(at)]);
      expect(ran(r, 'promote (main)', 'promote')).toBe('skipped');
    },
  );

  it('a dispatched digest of no variant’s repository fails every leg at its first step, nothing promoted', async () => {
    const r = await run({ dispatch: `${image}-amd@${digestOf('main')}` });
    expect(r.ok).toBe(false);
    for (const v of ['main', 'nvidia']) {
      const leg = r.jobs[`boot (${v})`]!;
      expect(leg.steps[leg.order[0]!]!.result).toBe('failure');
      expect(leg.steps.boot!.result).toBe('skipped');
    }
    expect(promoted(r, 'main')).toBeUndefined();
    expect(promoted(r, 'nvidia')).toBeUndefined();
  });
});

// A guard that the stand-ins keep the generated conditions (a stand-in without them would pass
// the dispatch test for the wrong reason).
it('the stand-ins keep every step condition of the generated workflow', () => {
  const conds = (wf: Workflow) => wf.jobs.flatMap((j) => j.steps.map((s) => JSON.stringify(s.if ?? null)));
  expect(conds(standIns(smokeBoot))).toEqual(conds(smokeBoot));
});
