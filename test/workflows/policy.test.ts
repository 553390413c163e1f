// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import {
  evaluateCondition,
  loadKeelRelease,
  loadRepoDeclarations,
  workflows,
  type Step,
} from '../../workflows-src/index.js';
import { repoRoot } from '../../workflows-src/action-specs.js';
import { buildPaths } from '../../workflows-src/workflows/build.js';
import { smokeBootWorkflow } from '../../workflows-src/workflows/smoke-boot.js';
import { keelHop, needsOf, readText, readWorkflow, strings, workflowFiles, type YWorkflow } from './helpers.js';

/**
 * The security and release policy of the generated workflows, on the YAML GitHub reads and on
 * the models a local runner walks. The linter stand-ins, the pull-request and environment
 * checks and the image-ref guard are in policy-security.test.ts.
 */
const decl = loadRepoDeclarations();
const release = loadKeelRelease(repoRoot);
const files = workflowFiles();
const models = workflows(decl);
const model = (file: string) => models.find((w) => w.file === file)!;

const allSteps = (wf: YWorkflow) => Object.entries(wf.jobs).flatMap(([jobId, j]) => j.steps.map((s) => ({ jobId, s })));

describe('least privilege, timeouts, pins', () => {
  it.each(files)('%s: permissions {} at workflow level; every job grants its own and has a timeout', (file) => {
    const wf = readWorkflow(file);
    expect(wf.permissions).toEqual({});
    for (const [id, j] of Object.entries(wf.jobs)) {
      expect([id, typeof j.permissions]).toEqual([id, 'object']);
      expect([
        id,
        Number.isInteger(j['timeout-minutes']) && j['timeout-minutes']! > 0 && j['timeout-minutes']! <= 360,
      ]).toEqual([id, true]);
      for (const level of Object.values(j.permissions ?? {})) expect(['read', 'write', 'none']).toContain(level);
    }
  });

  it.each(files)('%s: third-party actions are pinned to a full commit SHA with a version comment', (file) => {
    const text = readText(file);
    const uses = [...text.matchAll(/^\s*(?:- )?uses: (\S+)(.*)$/gm)].map((m) => ({ ref: m[1]!, rest: m[2]! }));
    expect(uses.length).toBeGreaterThan(0);
    for (const u of uses) {
      if (keelHop(u.ref)) continue;
      expect(u.ref).toMatch(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(\/[^@]+)?@[0-9a-f]{40}$/);
      expect(u.rest).toMatch(/^ # v\d+\.\d+\.\d+$/);
    }
  });

  it("dogfood workflows use this repository's actions after checkout; reusable ones (and cleanup) the released actions", () => {
    const released = models.filter((w) => w.actions.kind === 'remote').map((w) => w.file);
    expect(released.filter((f) => !f.startsWith('reusable-'))).toEqual(['cleanup.yml']);
    for (const file of files) {
      const wf = readWorkflow(file);
      for (const j of Object.values(wf.jobs)) {
        const keel = j.steps.filter((s) => keelHop(s.uses));
        if (released.includes(file)) {
          // The stamped release commit, never a moving tag.
          for (const s of keel) expect(s.uses).toBe(`keel-project/keel/actions/${keelHop(s.uses)}@${release.sha}`);
          expect(readText(file)).not.toMatch(/@v\d+\s*$/m);
        } else {
          for (const s of keel) expect(s.uses).toMatch(/^\.\/actions\/[a-z0-9-]+$/);
          const checkoutAt = j.steps.findIndex((s) => s.uses?.startsWith('actions/checkout@'));
          if (keel.length) expect([checkoutAt >= 0, checkoutAt < j.steps.indexOf(keel[0]!)]).toEqual([true, true]);
        }
        for (const s of j.steps)
          if (s.uses?.startsWith('actions/checkout@')) expect(s.with?.['persist-credentials']).toBe(false);
      }
    }
  });
});

describe('no injection, no leaked secrets', () => {
  it.each(files)('%s: no run: script interpolates an expression (event text, secrets or anything else)', (file) => {
    for (const { jobId, s } of allSteps(readWorkflow(file))) {
      if (s.run === undefined) continue;
      expect([jobId, s.name, s.run.includes('${{')]).toEqual([jobId, s.name, false]);
      expect(s.run).not.toMatch(/github\.event|secrets\./);
    }
  });

  it.each(files)('%s: secrets reach steps only as action inputs or step env, never echoed', (file) => {
    const wf = readWorkflow(file);
    for (const [at, text] of strings(wf.jobs)) {
      if (!text.includes('secrets.')) continue;
      // jobs.<job>.steps.<i>.(with|env).<name>
      expect([at.join('.'), at[1] === 'steps' && (at[3] === 'with' || at[3] === 'env')]).toEqual([at.join('.'), true]);
      // A whole secret, or one withheld from pull-request runs.
      expect(text).toMatch(
        /^\$\{\{ (secrets\.[A-Z_]+|\(!startsWith\(github\.event_name, 'pull_request'\) && secrets\.[A-Z_]+\) \|\| '') \}\}$/,
      );
    }
    for (const { s } of allSteps(wf))
      if (s.run) expect(s.run).not.toMatch(/\b(echo|printf)\b[^\n]*\$(COSIGN|IA_|SITE_|GITHUB_TOKEN|TOKEN|PASSWORD)/);
  });

  it('uses exactly the documented secrets', () => {
    const used = new Set(files.flatMap((f) => [...readText(f).matchAll(/secrets\.([A-Z_]+)/g)].map((m) => m[1]!)));
    expect([...used].sort()).toEqual([
      'BUILD_SECRETS',
      'COSIGN_PASSWORD',
      'COSIGN_PRIVATE_KEY',
      'COSIGN_PR_PASSWORD',
      'COSIGN_PR_PRIVATE_KEY',
      'GITHUB_TOKEN',
      'IA_ACCESS_KEY',
      'IA_SECRET_KEY',
      'NTFY_TOKEN',
      'NTFY_URL',
      'SITE_BUMP_TOKEN',
      'SYSEXT_GPG_PASSPHRASE',
      'SYSEXT_GPG_PRIVATE_KEY',
    ]);
  });
});

describe('local runner hints', () => {
  it('every non-Keel step tells a local runner what to do instead; Keel steps name their hop', () => {
    const kinds = new Set([
      'skip',
      'release-date',
      'artifact-upload',
      'artifact-download',
      'write-files',
      'read-files',
      'bootstrap-base',
      'apt-install',
      'expand-templates',
      'check-image-ref',
      'check-date',
    ]);
    for (const wf of models) {
      for (const j of wf.jobs) {
        for (const s of j.steps as Step[]) {
          if (s.type === 'keel') expect(typeof s.hop).toBe('string');
          else expect([wf.file, s.name, kinds.has(s.local.local)]).toEqual([wf.file, s.name, true]);
        }
      }
    }
  });

  it('expressions stay structured in the model (evaluated without parsing any ${{ }} text)', () => {
    const build = model('build.yml').jobs.find((j) => j.id === 'build')!;
    const ctx = (event: string, extra: Record<string, unknown> = {}) => ({
      github: (p: string) => ({ event_name: event, repository: 'keel-project/keel', ...extra })[p],
    });
    expect(evaluateCondition(build.if!, ctx('push'))).toBe(true);
    expect(
      evaluateCondition(
        build.if!,
        ctx('pull_request', { 'event.action': 'synchronize', 'event.pull_request.labels.*.name': ['docs'] }),
      ),
    ).toBe(false);
    const labelled = {
      'event.action': 'labeled',
      'event.label.name': 'vm-test',
      'event.pull_request.head.repo.full_name': 'keel-project/keel',
    };
    expect(evaluateCondition(build.if!, ctx('pull_request', labelled))).toBe(true);
    expect(
      evaluateCondition(
        build.if!,
        ctx('pull_request', { ...labelled, 'event.pull_request.head.repo.full_name': 'fork/keel' }),
      ),
    ).toBe(false);
    const push = build.steps.find((s) => s.id === 'push')!;
    expect(push.type === 'keel' && push.with['release-date']).toEqual({
      kind: 'step-output',
      step: 'date',
      output: 'release-date',
    });
  });
});

describe('build.yml', () => {
  const wf = readWorkflow('build.yml');
  const on = wf.on as {
    push: { branches: string[]; paths: string[] };
    pull_request: { types: string[]; paths: string[] };
    schedule: { cron: string }[];
    workflow_dispatch: unknown;
  };

  it('triggers: push to main with a paths allow-list derived from the jobs, labelled PRs, weekly, dispatch', () => {
    expect(on.push.branches).toEqual(['main']);
    // The hops are those the jobs' steps run (read back from the YAML), not a hand-kept list.
    const hops = [...new Set(Object.values(wf.jobs).flatMap((j) => j.steps.map((s) => keelHop(s.uses))))].filter(
      (h): h is string => Boolean(h),
    );
    expect(hops).toEqual(['build', 'validate', 'rechunk', 'push', 'sbom', 'sign', 'notify']);
    expect(on.push.paths).toEqual(buildPaths(decl, 'build.yml', hops));
    for (const h of hops) expect(on.push.paths).toContain(`actions/${h}/action.yml`);
    for (const p of [...decl.build.inputs, 'dist/**', '.github/workflows/build.yml'])
      expect(on.push.paths).toContain(p);
    expect(readText('build.yml')).not.toContain('paths-ignore');
    expect(on.pull_request.types).toEqual(['labeled', 'synchronize']);
    expect(on.pull_request.paths).toEqual(on.push.paths);
    expect(on.schedule).toHaveLength(1);
    expect(on).toHaveProperty('workflow_dispatch');
    expect(wf.jobs.build!.if).toContain(`'${decl.tags['pr-label']}'`);
  });

  it('jobs: build (build → validate → rechunk → push, one containers-storage) then sign, separately', () => {
    // notify (last) only reports a failed build or sign job: notifications.test.ts.
    expect(Object.keys(wf.jobs)).toEqual(['build', 'sign', 'notify']);
    const hops = wf.jobs.build!.steps.map((s) => keelHop(s.uses)).filter(Boolean);
    expect(hops).toEqual(['build', 'validate', 'rechunk', 'push']);
    expect(Object.keys(wf.jobs.build!.outputs!).sort()).toEqual(['digest', 'image-ref', 'release-date', 'tags']);
    const sign = wf.jobs.sign!;
    expect(needsOf(sign)).toEqual(['build']);
    expect(sign.if).toBe("github.event_name != 'pull_request'");
    expect(sign.environment).toBe(decl.environment);
    const s = sign.steps.find((x) => keelHop(x.uses) === 'sign')!;
    expect(s.with!['image-ref']).toBe('${{ needs.build.outputs.image-ref }}');
    expect(s.with!['private-key']).toBe('${{ secrets.COSIGN_PRIVATE_KEY }}');
    expect(s.with!.password).toBe('${{ secrets.COSIGN_PASSWORD }}');
  });

  it('the release date is computed once, first, and handed to every hop that takes one', () => {
    const steps = wf.jobs.build!.steps;
    const dates = steps.filter((s) => s.run?.includes('date -u +%Y%m%d'));
    expect(dates).toHaveLength(1);
    // First after checkout and the free-disk step (which runs no hop and reads no date).
    const before = steps.slice(0, steps.indexOf(dates[0]!));
    expect(before.map((s) => s.uses?.split('@')[0] ?? s.name)).toEqual([
      'actions/checkout',
      expect.stringMatching(/^Free disk on a GitHub-hosted runner/),
    ]);
    for (const s of steps)
      if (s.with && 'release-date' in s.with)
        expect(s.with['release-date']).toBe('${{ steps.date.outputs.release-date }}');
    expect(steps.filter((s) => s.with && 'release-date' in s.with).map((s) => keelHop(s.uses))).toEqual([
      'build',
      'push',
    ]);
  });

  it('the base is bootstrapped from Debian packages before the build (declarations base.bootstrap)', () => {
    const steps = wf.jobs.build!.steps;
    const i = steps.findIndex((s) => s.run?.includes('build_files/base/bootstrap.sh'));
    expect(i).toBeGreaterThan(0);
    expect(i).toBeLessThan(steps.findIndex((s) => keelHop(s.uses) === 'build'));
    for (const p of decl.base.bootstrap!.packages) expect(steps[i]!.run).toContain(`--package ${p}`);
  });

  it('validate runs before any push; push feeds on the rechunked image', () => {
    const steps = wf.jobs.build!.steps;
    const at = (h: string) => steps.findIndex((s) => keelHop(s.uses) === h);
    expect(at('validate')).toBeLessThan(at('push'));
    expect(steps[at('push')]!.with!.source).toBe('${{ steps.rechunk.outputs.oci-ref }}');
  });

  it('hands the pushed digest to smoke-boot as an artifact of the run', () => {
    const steps = wf.jobs.build!.steps;
    const up = steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(up.with!.name).toBe('keel-image');
    const write = steps[steps.indexOf(up) - 1]!;
    expect(write.env!.IMAGE_REF).toBe('${{ steps.push.outputs.image-ref }}');
  });

  it('per image and ref concurrency: only a superseded pull-request build is cancelled, never a build of main', () => {
    expect(wf.concurrency).toBeUndefined();
    const c = wf.jobs.build!.concurrency!;
    expect(c.group).toBe(`keel-build-${decl.image.registry}/${decl.image.name}-\${{ github.ref }}`);
    expect(c['cancel-in-progress']).toBe("${{ github.event_name == 'pull_request' }}");
    const buildJob = model('build.yml').jobs.find((j) => j.id === 'build')!;
    const cancel = buildJob.concurrency!.cancelInProgress;
    const on = (event: string) =>
      typeof cancel === 'boolean' ? cancel : evaluateCondition(cancel, { github: (p) => ({ event_name: event })[p] });
    expect(['push', 'schedule', 'workflow_dispatch', 'pull_request'].map(on)).toEqual([false, false, false, true]);
  });
});

describe('smoke-boot.yml', () => {
  const wf = readWorkflow('smoke-boot.yml');
  const on = wf.on as {
    workflow_run: { workflows: string[]; types: string[]; branches: string[] };
    workflow_dispatch: { inputs: Record<string, { required: boolean }> };
  };

  it("runs after a completed build of main (that build's name), or on dispatch with a digest", () => {
    expect(on.workflow_run.workflows).toEqual([readWorkflow('build.yml').name]);
    expect(on.workflow_run.types).toEqual(['completed']);
    expect(on.workflow_run.branches).toEqual(['main']);
    expect(on.workflow_dispatch.inputs['image-ref']!.required).toBe(true);
    expect(wf.jobs.boot!.if).toContain("github.event.workflow_run.conclusion == 'success'");
    expect(wf.jobs.boot!.if).toContain("github.event.workflow_run.event != 'pull_request'");
  });

  it("takes the digest from the triggering run's artifact, verifies, boots, then promotes it", () => {
    const steps = wf.jobs.boot!.steps;
    const dl = steps.find((s) => s.uses?.startsWith('actions/download-artifact@'))!;
    expect(dl.with!['run-id']).toBe('${{ github.event.workflow_run.id }}');
    expect(dl.with!['github-token']).toBe('${{ secrets.GITHUB_TOKEN }}');
    expect(wf.jobs.boot!.permissions).toMatchObject({ actions: 'read' });
    const hops = steps.map((s) => keelHop(s.uses)).filter(Boolean);
    expect(hops).toEqual(['verify', 'smoke-boot', 'update-test', 'changelog']);
    const verify = steps.find((s) => keelHop(s.uses) === 'verify')!;
    const boot = steps.find((s) => keelHop(s.uses) === 'smoke-boot')!;
    expect(verify.with!['image-ref']).toBe('${{ steps.handoff.outputs.image-ref || inputs.image-ref }}');
    expect(boot.with!.image).toBe(verify.with!['image-ref']);
    expect(boot.with!['public-key']).toBe(decl.signing!['public-key']);
    expect(steps.some((s) => /resolve/.test(s.uses ?? ''))).toBe(false); // no re-resolved tag
  });

  it('updates a machine on stable to the booted digest, and promotion needs that too', () => {
    const update = wf.jobs.boot!.steps.find((s) => keelHop(s.uses) === 'update-test')!;
    expect(update.with!['image-ref']).toBe('${{ steps.boot.outputs.image-ref }}');
    expect(update.with!['previous-image']).toBe(decl.tags.stable);
    expect(update.with!['public-key']).toBe(decl.signing!['public-key']);
    expect(update.if).toBeUndefined();
    expect(wf.jobs.boot!.outputs!.updated).toBe('${{ steps.update.outputs.passed }}');
    expect(wf.jobs.promote!.if).toContain("needs.boot.outputs.updated != 'false'");
    const reusable = readWorkflow('reusable-smoke-boot.yml');
    const callInputs = (reusable.on as { workflow_call: { inputs: Record<string, { default?: unknown }> } })
      .workflow_call.inputs;
    expect(callInputs['update-test']!.default).toBe(true);
    const gated = reusable.jobs.boot!.steps.find((s) => keelHop(s.uses) === 'update-test')!;
    // The input and the caller's declarations (smoke-boot.update-test, through the settings step) must both allow it.
    expect(gated.if).toBe("inputs.update-test == true && steps.settings.outputs.update-test == 'true'");
  });

  it('without the update test declared, the boot job has no such step', () => {
    const off = smokeBootWorkflow(
      { ...decl, 'smoke-boot': { ...decl['smoke-boot'], 'update-test': false } },
      'dogfood',
    );
    const boot = off.jobs.find((j) => j.id === 'boot')!;
    expect(JSON.stringify(boot.steps)).not.toMatch(/update-test/);
  });

  it("promotes only the booted candidate digest, after a passed boot, with the build's release date", () => {
    const promote = wf.jobs.promote!;
    expect(needsOf(promote)).toEqual(['boot']);
    expect(promote.if).toContain("needs.boot.outputs.passed == 'true'");
    const s = promote.steps.find((x) => keelHop(x.uses) === 'promote')!;
    expect(s.with!['image-ref']).toBe('${{ needs.boot.outputs.image-ref }}');
    expect(s.with!['require-tag']).toBe(decl.tags.candidate);
    expect(s.with!['public-key']).toBe(decl.signing!['public-key']);
    expect(s.with!['release-date']).toBe('${{ needs.boot.outputs.release-date }}');
    expect(wf.jobs.boot!.outputs!['image-ref']).toBe('${{ steps.boot.outputs.image-ref }}');
    expect(wf.jobs.boot!.outputs!['release-date']).toBe(
      '${{ steps.handoff.outputs.release-date || inputs.release-date }}',
    );
    expect(promote.permissions).toEqual({ contents: 'write', packages: 'write' }); // write: the GitHub Release
    expect(wf.jobs.boot!.permissions!.packages).toBe('read');
  });

  it('one promotion at a time per image, never cancelled, in the release environment (a job-level group)', () => {
    expect(wf.concurrency).toBeUndefined();
    const promote = wf.jobs.promote!;
    expect(promote.concurrency).toEqual({
      group: `keel-promote-${decl.image.registry}/${decl.image.name}`,
      'cancel-in-progress': false,
    });
    expect(promote.environment).toBe(decl.environment);
    expect(wf.jobs.boot!.concurrency).toBeUndefined();
  });
});

describe('build-disk.yml', () => {
  const wf = readWorkflow('build-disk.yml');

  it('dispatch and a weekly schedule', () => {
    expect(Object.keys(wf.on).sort()).toEqual(['schedule', 'workflow_dispatch']);
  });

  it('pins :stable to a digest once and builds and boot-tests the media from that digest', () => {
    const steps = wf.jobs.disk!.steps;
    const resolves = steps.filter((s) => keelHop(s.uses) === 'resolve');
    expect(resolves).toHaveLength(1);
    expect(resolves[0]!.with!.image).toBe(`${decl.image.registry}/${decl.image.name}:${decl.tags.stable}`);
    const disk = steps.find((s) => keelHop(s.uses) === 'build-disk')!;
    expect(disk.with!['image-ref']).toBe(`\${{ steps.${resolves[0]!.id}.outputs.image-ref }}`);
    expect(disk.with!['boot-test']).toBe(true);
    const up = steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(String(up.with!.path)).toContain('steps.disk.outputs.sha256sums');
  });

  it("publishes from a separate job, only after a passed boot test, with the build job's date and file name", () => {
    const pub = wf.jobs.publish!;
    expect(needsOf(pub)).toEqual(['disk']);
    expect(pub.if).toBe("github.event_name != 'pull_request' && needs.disk.outputs.boot-passed == 'true'");
    expect(pub['timeout-minutes']).toBeGreaterThanOrEqual(300);
    expect(pub.steps.some((s) => s.uses?.startsWith('actions/download-artifact@'))).toBe(true);
    const ia = pub.steps.find((s) => keelHop(s.uses) === 'ia-upload')!;
    const site = pub.steps.find((s) => keelHop(s.uses) === 'site-bump')!;
    expect(pub.steps.indexOf(ia)).toBeLessThan(pub.steps.indexOf(site));
    const ident = decl['internet-archive']!.identifier.replace('{date}', '${{ needs.disk.outputs.release-date }}');
    expect(ia.with!.identifier).toBe(ident);
    expect(String(ia.with!.files)).toContain('${{ needs.disk.outputs.file }}');
    expect(String(ia.with!.metadata)).toContain('${{ needs.disk.outputs.digest }}');
    expect(site.with!.value).toBe('${{ needs.disk.outputs.release-date }}');
    expect(site.with!['extra-constants']).toBe('LATEST_ISO_FILE=${{ needs.disk.outputs.file }}');
    expect(site.with!.repository).toBe(decl.site!.repository);
    for (const s of pub.steps) expect(s.run ?? '').not.toContain('date -u');
  });

  it('a running publication is never cancelled; media build and publication queue in groups of their own', () => {
    expect(wf.concurrency).toBeUndefined();
    expect(wf.jobs.publish!.concurrency!['cancel-in-progress']).toBe(false);
    expect(wf.jobs.disk!.concurrency!['cancel-in-progress']).toBe(false);
    expect(wf.jobs.publish!.concurrency!.group).not.toBe(wf.jobs.disk!.concurrency!.group);
    expect(wf.jobs.publish!.environment).toBe(decl.environment);
  });

  it('build-disk verifies the pinned digest with the public key', () => {
    const disk = wf.jobs.disk!.steps.find((s) => keelHop(s.uses) === 'build-disk')!;
    expect(disk.with!['public-key']).toBe(decl.signing!['public-key']);
    expect(disk.with!['allow-unsigned']).toBeUndefined();
  });
});

describe('reusable workflows', () => {
  it.each(['reusable-build.yml', 'reusable-smoke-boot.yml', 'reusable-build-disk.yml'])(
    '%s is workflow_call only, with typed inputs',
    (file) => {
      const wf = readWorkflow(file);
      expect(Object.keys(wf.on)).toEqual(['workflow_call']);
      const call = wf.on.workflow_call as {
        inputs: Record<string, { type: string; required: boolean; default?: unknown }>;
      };
      for (const [k, i] of Object.entries(call.inputs)) {
        expect([k, ['string', 'number', 'boolean'].includes(i.type)]).toEqual([k, true]);
        if (i.required) expect([k, i.default]).toEqual([k, undefined]);
      }
      // No value of this repository's distro leaks into a workflow other repositories call.
      expect(readText(file)).not.toContain(decl.image.name);
    },
  );
});
