// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { validate } from '@actions/languageservice';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { stringify } from 'yaml';
import { parseDeclarations, type Distro } from '../../actions/lib/declarations.js';
import { imageRefProblem } from '../../workflows-src/common.js';
import { evaluateString, input, lit, secret, type Expr } from '../../workflows-src/expr.js';
import {
  checkWorkflow,
  evaluateCondition,
  loadRepoDeclarations,
  renderWorkflow,
  workflows,
  type Workflow,
} from '../../workflows-src/index.js';
import type { Job } from '../../workflows-src/model.js';
import {
  environmentProblems,
  isReleaseSecret,
  lintWorkflow,
  pullRequestProblems,
  runnableOnPullRequest,
  secretsOf,
  secretsOnPullRequest,
  type Environments,
} from './checks.js';
import { readText, readWorkflow, root, workflowFiles, type YWorkflow } from './helpers.js';
/**
 * Issue 15 on the workflow side: pull requests never reach the release key, every secret lives
 * in an environment, the linters' checks (actionlint, zizmor) hold, and a dispatched or
 * handed-over image reference outside the distro's repository is refused before any registry
 * call. Each check runs on every generated workflow, on workflows generated from other
 * declarations, and on a broken copy (so it is known to fail when it should).
 */
const decl = loadRepoDeclarations();
const files = workflowFiles();
const models = workflows(decl);
const model = (file: string) => models.find((w) => w.file === file)!;
const TEST_RELEASE = { sha: 'a'.repeat(40), version: 'v9.9.9' };

const envsOf = (wf: Workflow, d: Distro): Environments =>
  wf.on.workflow_call
    ? { release: input('environment'), pullRequests: input('pr-environment') }
    : {
        release: lit(d.environment),
        ...(d.signing?.['pull-requests'] ? { pullRequests: lit(d.signing['pull-requests'].environment) } : {}),
      };

const baseYaml = fs.readFileSync(path.join(root, 'declarations', 'distro.yaml'), 'utf8');
const variant = (edit: (yaml: string) => string): Distro => parseDeclarations(edit(baseYaml));
const withPrKey = (y: string) =>
  y.replace(
    /\n {2}identity: repository\n/,
    '\n  identity: repository\n  pull-requests:\n    public-key: keys/pr.pub\n',
  );
const withBuildSecret = (y: string) =>
  y.replace('  secrets: []\n', '  secrets:\n    - { id: mok, env: MOK_KEY, github-secret: MOK_KEY }\n');
const withEnvironment = (y: string) => `${y}\nenvironment: prod-release\n`;
const withImageVariants = (y: string) =>
  `${y}\nvariants:\n  - { name: main }\n  - { name: nvidia, build-args: { GPU: nvidia }, target: nvidia }\n`;

const VARIANTS: [string, Distro][] = [
  ['this repository', decl],
  ['a pull-request key pair', variant(withPrKey)],
  ['build secrets', variant(withBuildSecret)],
  ['another environment name', variant(withEnvironment)],
  ['all of them', variant((y) => withEnvironment(withBuildSecret(withPrKey(y))))],
  ['two image variants and a pull-request key pair', variant((y) => withImageVariants(withPrKey(y)))],
];

let validated = 0;
async function diagnostics(file: string, text: string): Promise<string[]> {
  // A URI of its own per text: the language service caches by URI.
  const doc = TextDocument.create(`file:///variant-${validated++}/.github/workflows/${file}`, 'yaml', 1, text);
  return (await validate(doc)).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
}

describe('linters: what actionlint and zizmor check', () => {
  it.each(files)('%s: no finding', (file) => {
    expect(lintWorkflow(file, readText(file))).toEqual([]);
  });

  const mutate = (file: string, edit: (wf: YWorkflow) => void) => {
    const wf = readWorkflow(file);
    edit(wf);
    return lintWorkflow(file, stringify(wf));
  };
  const has = (problems: string[], re: RegExp) =>
    expect([problems.join('\n'), problems.some((p) => re.test(p))]).toEqual([problems.join('\n'), true]);

  it('each check fails on a workflow that breaks it', () => {
    has(
      mutate('build.yml', (w) => void (w.jobs.build!.steps[1]!.run = 'echo ${{ github.event.pull_request.title }}')),
      /template injection/,
    );
    has(
      lintWorkflow(
        'reusable-build.yml',
        readText('reusable-build.yml').replace(/(actions\/push)@[0-9a-f]{40}/, '$1@v0'),
      ),
      /actions\/push@v0: not pinned/,
    );
    has(
      mutate('build.yml', (w) => void delete w.jobs.build!.steps[0]!.with!['persist-credentials']),
      /persist-credentials/,
    );
    has(
      mutate('build-disk.yml', (w) => void (w.jobs.publish!.permissions = { contents: 'read', packages: 'write' })),
      /job publish: permissions/,
    );
    has(
      mutate('smoke-boot.yml', (w) => void (w.jobs.boot!.permissions = { contents: 'read', packages: 'read' })),
      /job boot: permissions/,
    );
    has(
      mutate('build.yml', (w) => void (w.jobs.build!.steps[1]!.run = 'echo "X=1" >> "$GITHUB_ENV"')),
      /GITHUB_ENV/,
    );
    has(
      mutate('build.yml', (w) => void (w.jobs.build!.steps[1]!.run = 'if then fi')),
      /bash -n/,
    );
    has(
      mutate('build.yml', (w) => void (w.jobs.build!.concurrency!['cancel-in-progress'] = true)),
      /cancel-in-progress true/,
    );
    has(
      mutate('build.yml', (w) => void (w.jobs.build!.concurrency!.group = 'keel-build-${{ github.ref }}')),
      /must include the image/,
    );
    has(
      mutate('smoke-boot.yml', (w) => void delete w.jobs.promote!.concurrency),
      /job promote: a release job needs its own concurrency/,
    );
    has(
      mutate('reusable-smoke-boot.yml', (w) => void (w.concurrency = { group: 'x', 'cancel-in-progress': false })),
      /reusable workflow has workflow-level concurrency/,
    );
    has(
      mutate('build.yml', (w) => void (w.jobs.sign!.if = "github.actor == 'dependabot[bot]'")),
      /spoofable/,
    );
    has(
      mutate(
        'build.yml',
        (w) =>
          void (w.jobs.sign!.steps[0]!.with = {
            ...w.jobs.sign!.steps[0]!.with,
            ref: '${{ github.event.workflow_run.head_sha }}',
          }),
      ),
      /another ref/,
    );
  });

  it('a dangerous trigger needs the guards, the comment naming them, and an untrusted artifact stays data', () => {
    const text = readText('smoke-boot.yml');
    expect(text).toMatch(/# [^\n]*Guards:\n( {2}#[^\n]*\n)+ {2}workflow_run:\n/);
    has(lintWorkflow('smoke-boot.yml', text.replace(/^ {2}# .*\n/gm, '')), /workflow_run: no comment/);
    has(
      mutate('smoke-boot.yml', (w) => void (w.jobs.boot!.if = "github.event.workflow_run.conclusion == 'success'")),
      /job boot: workflow_run without/,
    );
    has(
      mutate(
        'smoke-boot.yml',
        (w) =>
          void (w.jobs.boot!.steps = w.jobs.boot!.steps.filter(
            (s) => !(s.name ?? '').startsWith('Refuse a handed-over'),
          )),
      ),
      /before the repository guard/,
    );
    has(
      mutate('smoke-boot.yml', (w) => void (w.jobs.boot!.steps[4]!.run = 'bash keel-image/image-ref')),
      /executes the other run's artifact/,
    );
    has(
      mutate('smoke-boot.yml', (w) => void w.jobs.boot!.steps.push(w.jobs.boot!.steps.shift()!)),
      /gets a token before inputs.image-ref is checked/,
    );
  });

  it('the model refuses a dangerous trigger without guards and a reusable workflow with a workflow-level group', () => {
    const smoke = model('smoke-boot.yml');
    expect(checkWorkflow({ ...smoke, triggerGuards: {} })).toEqual([
      'smoke-boot.yml: trigger workflow_run needs triggerGuards naming the guards that make it safe',
    ]);
    const reusable = model('reusable-build.yml');
    const group = { group: lit('x'), cancelInProgress: false };
    expect(checkWorkflow({ ...reusable, concurrency: group })).toEqual([
      'reusable-build.yml: a reusable workflow takes no workflow-level concurrency (use job-level groups)',
    ]);
  });

  it('every hop the workflows run has a reviewed permission entry', () => {
    const wf = readWorkflow('build.yml');
    wf.jobs.build!.steps.push({ name: 'new hop', uses: './actions/brand-new' });
    expect(lintWorkflow('build.yml', stringify(wf))).toContain(
      'build.yml: job build: hop brand-new has no entry in HOP_PERMISSIONS',
    );
  });
});

describe('pull requests never reach the release key', () => {
  it('the sign job never runs for a pull request and runs in the release environment', () => {
    for (const file of ['build.yml', 'reusable-build.yml']) {
      const sign = model(file).jobs.find((j) => j.id === 'sign')!;
      const ctx = (event: string) => ({ github: (p: string) => ({ event_name: event })[p] });
      expect([
        file,
        evaluateCondition(sign.if!, ctx('pull_request')),
        evaluateCondition(sign.if!, ctx('push')),
      ]).toEqual([file, false, true]);
      expect(secretsOf(sign)).toEqual(new Set(['COSIGN_PRIVATE_KEY', 'COSIGN_PASSWORD', 'GITHUB_TOKEN']));
      expect(JSON.stringify(sign.environment)).toBe(JSON.stringify(envsOf(model(file), decl).release));
    }
  });

  it('only the build job (and the pull-request key job, when configured) is runnable for a pull request', () => {
    const runnable = (wf: Workflow) => wf.jobs.filter((j) => runnableOnPullRequest(wf, j)).map((j) => j.id);
    expect(runnable(model('build.yml'))).toEqual(['build']);
    expect(runnable(model('reusable-build.yml'))).toEqual(['build', 'sign-pr']);
    const withPr = workflows(VARIANTS[1]![1], { mode: 'dogfood' }).find((w) => w.file === 'build.yml')!;
    expect(runnable(withPr)).toEqual(['build', 'sign-pr']);
    const prJob = withPr.jobs.find((j) => j.id === 'sign-pr')!;
    expect(secretsOf(prJob)).toEqual(new Set(['COSIGN_PR_PRIVATE_KEY', 'COSIGN_PR_PASSWORD', 'GITHUB_TOKEN']));
    expect(prJob.environment).toEqual(lit('pull-requests'));
    const sign = prJob.steps.find((s) => s.type === 'keel')!;
    expect(sign.type === 'keel' && sign.with['public-key']).toEqual(lit('keys/pr.pub'));
  });

  it.each(VARIANTS)(
    'declarations with %s: every workflow passes the pull-request, environment and lint checks',
    async (_, d) => {
      for (const wf of workflows(d, { release: TEST_RELEASE })) {
        const envs = envsOf(wf, d);
        expect([wf.file, ...pullRequestProblems(wf, envs), ...environmentProblems(wf, envs)]).toEqual([wf.file]);
        const text = renderWorkflow(wf);
        expect(lintWorkflow(wf.file, text)).toEqual([]);
        expect([wf.file, await diagnostics(wf.file, text)]).toEqual([wf.file, []]);
      }
    },
  );

  it('build secrets are release secrets: no pull_request trigger then, and the build job runs in the environment', () => {
    const build = workflows(VARIANTS[2]![1], { mode: 'dogfood' }).find((w) => w.file === 'build.yml')!;
    expect(Object.keys(build.on)).not.toContain('pull_request');
    const job = build.jobs.find((j) => j.id === 'build')!;
    expect(secretsOf(job)).toContain('MOK_KEY');
    expect(job.environment).toEqual(lit('release'));
  });

  it("the reusable build hands the caller's build secrets to the build hop, never in a pull-request run", () => {
    const wf = model('reusable-build.yml');
    expect(wf.on.workflow_call?.secrets?.BUILD_SECRETS?.required).toBe(false);
    const job = wf.jobs.find((j) => j.id === 'build')!;
    expect(runnableOnPullRequest(wf, job)).toBe(true);
    const readers = job.steps.filter((s) => [...secretsOf({ ...job, steps: [s] })].includes('BUILD_SECRETS'));
    expect(readers.map((s) => [s.type === 'keel' && s.hop, Object.keys(s.env ?? {})])).toEqual([
      ['build', ['KEEL_BUILD_SECRETS']],
    ]);
    const passed = readers[0]!.env!.KEEL_BUILD_SECRETS!;
    const value = (event: string) =>
      evaluateString(passed, {
        github: (p: string) => ({ event_name: event })[p],
        secret: (n: string) => (n === 'BUILD_SECRETS' ? 'NPM_TOKEN=s3cr3t' : undefined),
      });
    expect(
      ['push', 'workflow_dispatch', 'pull_request', 'pull_request_review', 'pull_request_target'].map(value),
    ).toEqual(['NPM_TOKEN=s3cr3t', 'NPM_TOKEN=s3cr3t', '', '', '']);
    expect(secretsOnPullRequest(job)).not.toContain('BUILD_SECRETS');
    // The check sees through the guard only while it is there.
    const unguarded = (e: Expr) => ({ ...wf, jobs: wf.jobs.map((j) => (j === job ? withEnv(j, e) : j)) });
    const withEnv = (j: Job, e: Expr): Job => ({
      ...j,
      steps: j.steps.map((s) => (s === readers[0] ? { ...s, env: { KEEL_BUILD_SECRETS: e } } : s)),
    });
    expect(pullRequestProblems(unguarded(secret('BUILD_SECRETS')), envsOf(wf, decl))).toEqual([
      'reusable-build.yml: job build runs for pull requests and reads BUILD_SECRETS',
    ]);
    expect(isReleaseSecret('BUILD_SECRETS')).toBe(false);
  });

  it('the environment name comes from the declarations', () => {
    const d = VARIANTS[3]![1];
    for (const wf of workflows(d, { mode: 'dogfood' }))
      for (const j of wf.jobs)
        if (j.environment) expect([wf.file, j.id, j.environment]).toEqual([wf.file, j.id, lit('prod-release')]);
  });

  it('the checks fail when a release secret is reachable from a pull request or lacks its environment', () => {
    const wf = workflows(decl, { mode: 'dogfood' }).find((w) => w.file === 'build.yml')!;
    const envs = envsOf(wf, decl);
    const sign = wf.jobs.find((j) => j.id === 'sign')!;
    const noIf = { ...wf, jobs: wf.jobs.map((j) => (j === sign ? { ...j, if: undefined } : j)) };
    expect(pullRequestProblems(noIf, envs)).toEqual([
      'build.yml: job sign runs for pull requests and reads COSIGN_PRIVATE_KEY, COSIGN_PASSWORD',
      'build.yml: job sign runs for pull requests in the release environment',
    ]);
    const noEnv = { ...wf, jobs: wf.jobs.map((j) => (j === sign ? { ...j, environment: undefined } : j)) };
    expect(environmentProblems(noEnv, envs)).toEqual([
      'build.yml: job sign reads release secrets or moves stable outside the release environment',
    ]);
    const promoteNoEnv = model('smoke-boot.yml');
    const stripped = { ...promoteNoEnv, jobs: promoteNoEnv.jobs.map((j) => ({ ...j, environment: undefined })) };
    expect(environmentProblems(stripped, envsOf(promoteNoEnv, decl))).toEqual([
      'smoke-boot.yml: job promote reads release secrets or moves stable outside the release environment',
      'smoke-boot.yml: job notify reads release secrets or moves stable outside the release environment',
    ]);
    expect(isReleaseSecret('COSIGN_PR_PRIVATE_KEY')).toBe(false);
    expect(isReleaseSecret('IA_SECRET_KEY')).toBe(true);
  });

  it('declarations refuse the release key or the release environment for pull requests', () => {
    expect(() =>
      variant((y) =>
        y.replace(
          /\n {2}identity: repository\n/,
          `\n  identity: repository\n  pull-requests:\n    public-key: ${decl.signing!['public-key']}\n`,
        ),
      ),
    ).toThrow(/signing\.pull-requests\.public-key: must not be the release public key/);
    expect(() =>
      variant((y) =>
        withPrKey(y).replace(
          '    public-key: keys/pr.pub\n',
          '    public-key: keys/pr.pub\n    environment: release\n',
        ),
      ),
    ).toThrow(/signing\.pull-requests\.environment: must differ from environment/);
  });
});

describe("smoke-boot: an image-ref outside the distro's repository is refused before any registry call", () => {
  const image = `${decl.image.registry}/${decl.image.name}`;
  const hex = 'ab'.repeat(32);
  const guardScript = readWorkflow('smoke-boot.yml').jobs.boot!.steps[0]!.run!;
  const CASES: [string, string, boolean][] = [
    ['the digest in the repository', `${image}@sha256:${hex}`, true],
    ['another namespace', `ghcr.io/evil/${decl.image.name}@sha256:${hex}`, false],
    ['a longer name with the same prefix', `${image}-evil@sha256:${hex}`, false],
    ['a sub-path', `${image}/x@sha256:${hex}`, false],
    ['another registry in front', `evil.example/${image}@sha256:${hex}`, false],
    ['other case', `${image.toUpperCase()}@sha256:${hex}`, false],
    ['a tag', `${image}:stable`, false],
    ['a short digest', `${image}@sha256:${hex.slice(2)}`, false],
    ['two lines', `ghcr.io/evil/x@sha256:${hex}\n${image}@sha256:${hex}`, false],
    ['a second digest', `${image}@sha256:${hex}@sha256:${hex}`, false],
    ['a workflow command', `::warning::pwned@sha256:${hex}`, false],
    ['nothing', '', false],
  ];

  it.each(CASES)('%s: the guard step (bash) and the local runner (imageRefProblem) agree', (_, ref, ok) => {
    const r = spawnSync('bash', ['-c', guardScript], {
      env: { PATH: process.env.PATH, IMAGE_REF: ref, IMAGE: image },
      encoding: 'utf8',
    });
    expect([r.status, imageRefProblem(ref, image) === undefined]).toEqual([ok ? 0 : 1, ok]);
    if (ref) expect(r.stdout).not.toContain(ref); // untrusted text is never echoed
  });

  it('compares the repository literally (no glob in the distro name can widen it)', () => {
    const r = spawnSync('bash', ['-c', guardScript], {
      env: {
        PATH: process.env.PATH,
        IMAGE_REF: `ghcr.io/keel-project/other@sha256:${hex}`,
        IMAGE: 'ghcr.io/keel-project/*',
      },
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
  });

  it.each(['smoke-boot.yml', 'reusable-smoke-boot.yml'])(
    '%s: the dispatch guard is the first step; the hand-off is guarded as soon as it is read',
    (file) => {
      const steps = readWorkflow(file).jobs.boot!.steps;
      expect(steps[0]!.if).toBe("github.event_name != 'workflow_run'");
      expect(steps[0]!.env!.IMAGE_REF).toBe('${{ inputs.image-ref }}');
      const handoff = steps.findIndex((s) => s.id === 'handoff');
      expect(steps[handoff + 1]!.env!.IMAGE_REF).toBe('${{ steps.handoff.outputs.image-ref }}');
      const firstRegistryStep = steps.findIndex(
        (s) => JSON.stringify(s.with ?? {}).includes('secrets.GITHUB_TOKEN') && !s.uses?.startsWith('actions/'),
      );
      expect(handoff + 1).toBeLessThan(firstRegistryStep);
    },
  );
});
