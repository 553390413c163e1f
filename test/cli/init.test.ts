// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import { validate } from '@actions/languageservice';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { parse } from 'yaml';
import { bootstrapArgs } from '../../actions/build/src/base-bootstrap.js';
import { loadDeclarations, parseDeclarations } from '../../actions/lib/declarations.js';
import { init, renderInit } from '../../cli/commands/init.js';
import { DEBIAN_BASE_PACKAGES } from '../../cli/init/declarations.js';
import { loadKeelRelease } from '../../workflows-src/pins.js';
import { tmpdir } from '../harness/tools.js';
import { WORKFLOW_RUN_CONDITIONS } from '../workflows/checks.js';
import { readWorkflow, root, type YWorkflow } from '../workflows/helpers.js';

/**
 * `keel init`: what it writes (valid declarations, a Containerfile on the base contract, caller
 * workflows GitHub accepts and that keep Keel's workflow policy), and what it refuses (bad
 * flags, existing files) before writing anything.
 */
const COMMIT = 'a'.repeat(40);
const IMAGE = 'ghcr.io/acme/acme-os';
const release = loadKeelRelease(root);

const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = tmpdir('keel-init-');
  scratch.push(d);
  return d;
};

const debian = () => renderInit({ dir: '.', image: IMAGE, debian: 'trixie', keelRef: COMMIT });
const fedora = () => renderInit({ dir: '.', image: IMAGE, base: 'quay.io/fedora/fedora-bootc:42', keelRef: COMMIT });
const text = (r: ReturnType<typeof renderInit>, rel: string) => r.files.get(rel)!.text;
const callerOf = (r: ReturnType<typeof renderInit>, name: string) =>
  parse(text(r, `.github/workflows/${name}.yml`)) as YWorkflow & {
    jobs: Record<
      string,
      { uses: string; if?: string; with?: Record<string, unknown>; permissions: Record<string, string> }
    >;
  };

/** A listing of every file under dir (relative paths). */
function listing(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((p) => fs.statSync(path.join(dir, p)).isFile())
    .sort();
}

const WRITTEN = [
  '.github/workflows/build-disk.yml',
  '.github/workflows/build.yml',
  '.github/workflows/smoke-boot.yml',
  'Containerfile',
  'KEEL-SETUP.md',
  'build_files/finalize.sh',
  'declarations/distro.yaml',
];

describe('keel init: the files', () => {
  it('writes the Containerfile, finalize.sh, declarations, three caller workflows and the checklist, nothing else', () => {
    const dir = tempDir();
    const r = init({ dir, image: IMAGE, debian: 'trixie', keelRef: COMMIT });
    expect([...r.written].sort()).toEqual(WRITTEN);
    expect(listing(dir)).toEqual(WRITTEN);
    expect(fs.statSync(path.join(dir, 'build_files/finalize.sh')).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(dir, 'Containerfile')).mode & 0o777).toBe(0o644);
  });

  it('the declarations pass Keel’s schema and name the image, the OS and the signing key', () => {
    for (const r of [debian(), fedora()]) {
      const d = parseDeclarations(text(r, 'declarations/distro.yaml'));
      expect(`${d.image.registry}/${d.image.name}`).toBe(IMAGE);
      expect(d.os.id).toBe('acme-os');
      expect(d.image.title).toBe('Acme OS');
      expect(d.signing?.['public-key']).toBe('cosign.pub');
      expect(d.environment).toBe('release');
      expect(d.iso?.backend).toBe('live');
      expect(text(r, 'declarations/distro.yaml')).toContain(
        `# yaml-language-server: $schema=https://raw.githubusercontent.com/keel-project/keel/${COMMIT}/declarations/distro.schema.json`,
      );
    }
    expect(parseDeclarations(text(fedora(), 'declarations/distro.yaml')).base).toEqual({
      image: 'quay.io/fedora/fedora-bootc:42',
    });
  });

  it('--debian: the base bootstrap has the example distro’s inputs, so both share one cached base', () => {
    const mine = parseDeclarations(text(debian(), 'declarations/distro.yaml'));
    const example = loadDeclarations(path.join(root, 'declarations', 'distro.yaml'));
    expect(mine.base.image).toBe('localhost/acme-os-base:trixie');
    expect(DEBIAN_BASE_PACKAGES).toEqual(example.base.bootstrap?.packages);
    // The bootstrap's input hash covers suite, mirror and packages: equal argv but for --image.
    const args = (d: typeof mine) => bootstrapArgs(d)!.slice(2);
    expect(args(mine)).toEqual(args(example));
  });

  it('the Containerfile builds FROM ${BASE_IMAGE} (the base contract) and runs finalize.sh from a bind mount', () => {
    for (const [r, base] of [
      [debian(), 'localhost/acme-os-base:trixie'],
      [fedora(), 'quay.io/fedora/fedora-bootc:42'],
    ] as const) {
      const cf = text(r, 'Containerfile');
      const lines = cf.split('\n').filter((l) => !l.startsWith('#') && l.trim());
      expect(lines[0]).toBe(`ARG BASE_IMAGE=${base}`);
      expect(lines.filter((l) => l.startsWith('FROM '))).toEqual(['FROM scratch AS ctx', 'FROM ${BASE_IMAGE}']);
      expect(cf).toContain('RUN --mount=type=bind,from=ctx,source=/,target=/ctx,ro /ctx/finalize.sh');
      expect(cf).toContain('ARG BUILD_INPUTS_DIGEST');
      expect(cf).not.toContain('@@');
    }
    // A registry base gets dracut-live installed (the live ISO's dmsquash-live); Keel's Debian base has it.
    expect(text(fedora(), 'Containerfile')).toMatch(/dnf -y install dracut-live/);
    expect(text(debian(), 'Containerfile')).not.toMatch(/install.*dracut-live/);
  });

  it('finalize.sh is valid bash and checks the live ISO module, regenerates the initramfs, declares /var', () => {
    const sh = text(debian(), 'build_files/finalize.sh');
    expect(spawnSync('bash', ['-n'], { input: sh }).status).toBe(0);
    expect(sh).toMatch(/dmsquash-live/);
    expect(sh).toMatch(/dracut --force --no-hostonly/);
    expect(sh).toMatch(/tmpfiles\.d/);
  });

  it('the checklist names the secrets, the environment restricted to main, the label and branch protection', () => {
    const c = debian().checklist;
    for (const s of ['COSIGN_PRIVATE_KEY', 'COSIGN_PASSWORD', 'IA_ACCESS_KEY', 'IA_SECRET_KEY'])
      expect([s, c.includes(`gh secret set ${s} --env release`)]).toEqual([s, true]);
    expect(c).toContain('environments/release/deployment-branch-policies -f name=main');
    expect(c).toContain('gh label create vm-test');
    expect(c).toContain('branches/main/protection');
    expect(c).toContain('keel run build smoke-boot');
  });
});

describe('keel init: refusals, before anything is written', () => {
  it.each([
    [{ image: undefined, debian: 'trixie' }, /--image: expected REGISTRY\/OWNER\/NAME/],
    [{ image: 'acme-os', debian: 'trixie' }, /--image "acme-os".*name the registry and at least one namespace/],
    [{ image: 'ghcr.io/acme-os', debian: 'trixie' }, /name the registry and at least one namespace/],
    [{ image: 'ghcr.io/acme/acme-os:1', debian: 'trixie' }, /without tag or digest.*tags come from Keel's grammar/],
    [{ image: 'ghcr.io/Acme/os', debian: 'trixie' }, /must be lowercase/],
    [{ image: IMAGE }, /exactly one of --base IMAGE .* and --debian SUITE/],
    [{ image: IMAGE, debian: 'trixie', base: 'quay.io/x/y:1' }, /exactly one of/],
    [{ image: IMAGE, debian: 'Trixie!' }, /--debian "Trixie!": expected a Debian suite name/],
    [{ image: IMAGE, base: 'quay.io/fedora/fedora-bootc' }, /--base .*version tag or digest/],
    [{ image: IMAGE, base: 'quay.io/fedora/fedora-bootc:latest' }, /latest moves under you/],
    [{ image: IMAGE, debian: 'trixie', keelRef: 'v0.1.0' }, /--keel-ref "v0.1.0": expected the full 40-hex commit SHA/],
  ])('%j', (flags, message) => {
    const dir = path.join(tempDir(), 'new');
    expect(() => init({ dir, keelRef: COMMIT, ...flags })).toThrow(message);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('refuses to overwrite, naming every existing file, and writes nothing; --force replaces them', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'Containerfile'), 'FROM mine\n');
    fs.mkdirSync(path.join(dir, '.github', 'workflows'), { recursive: true });
    fs.writeFileSync(path.join(dir, '.github', 'workflows', 'build.yml'), 'name: mine\n');
    const before = listing(dir);
    expect(() => init({ dir, image: IMAGE, debian: 'trixie', keelRef: COMMIT })).toThrow(
      /already has Containerfile, \.github\/workflows\/build\.yml: pass --force .*nothing was written/,
    );
    expect(listing(dir)).toEqual(before);
    expect(fs.readFileSync(path.join(dir, 'Containerfile'), 'utf8')).toBe('FROM mine\n');
    init({ dir, image: IMAGE, debian: 'trixie', keelRef: COMMIT, force: true });
    expect(fs.readFileSync(path.join(dir, 'Containerfile'), 'utf8')).toContain('FROM ${BASE_IMAGE}');
  });
});

// ---------------------------------------------------------------------------------------------
// The caller workflows against Keel's committed reusable workflows (read as YAML, as GitHub does)

interface CallInputs {
  on: { workflow_call: { inputs: Record<string, { required: boolean }> } };
  jobs: Record<string, { permissions?: Record<string, string> }>;
}
const reusable = (name: string) => readWorkflow(`reusable-${name}.yml`) as unknown as CallInputs;
const LEVEL: Record<string, number> = { none: 0, read: 1, write: 2 };

/** GitHub's validator on a text; each call gets its own URI (the language service caches by URI). */
let validated = 0;
async function diagnostics(file: string, yamlText: string): Promise<string[]> {
  const doc = TextDocument.create(`file:///acme-${++validated}/.github/workflows/${file}`, 'yaml', 1, yamlText);
  return (await validate(doc)).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
}

/** The problems of a caller workflow: the parts of Keel's workflow policy that apply to a caller. */
function callerProblems(name: string, yamlText: string): string[] {
  const wf = parse(yamlText) as ReturnType<typeof callerOf>;
  const problems: string[] = [];
  if (JSON.stringify(wf.permissions) !== '{}') problems.push('workflow-level permissions are not {}');
  if (/secrets:\s*inherit|\$\{\{\s*secrets/.test(yamlText)) problems.push('passes secrets');
  const called = reusable(name);
  for (const [id, job] of Object.entries(wf.jobs)) {
    const pin = new RegExp(
      `^ +uses: keel-project/keel/\\.github/workflows/reusable-${name}\\.yml@[0-9a-f]{40} # ${release.version.replace(/\./g, '\\.')}$`,
      'm',
    );
    if (!pin.test(yamlText)) problems.push(`job ${id}: not pinned to a full commit SHA with the release as comment`);
    const need: Record<string, string> = {};
    for (const j of Object.values(called.jobs))
      for (const [k, v] of Object.entries(j.permissions ?? {}))
        if ((LEVEL[v] ?? 0) > (LEVEL[need[k]!] ?? 0)) need[k] = v;
    if (JSON.stringify(Object.entries(job.permissions).sort()) !== JSON.stringify(Object.entries(need).sort()))
      problems.push(
        `job ${id}: permissions ${JSON.stringify(job.permissions)}, the called jobs need ${JSON.stringify(need)}`,
      );
    const declared = called.on.workflow_call.inputs;
    for (const k of Object.keys(job.with ?? {}))
      if (!(k in declared)) problems.push(`job ${id}: passes '${k}', which reusable-${name}.yml does not declare`);
    for (const [k, spec] of Object.entries(declared))
      if (spec.required && !(k in (job.with ?? {}))) problems.push(`job ${id}: misses required input '${k}'`);
    if ('workflow_run' in wf.on && !WORKFLOW_RUN_CONDITIONS.every((c) => (job.if ?? '').includes(c)))
      problems.push(`job ${id}: workflow_run without the guards in its if:`);
  }
  if ('workflow_run' in wf.on) {
    const lines = yamlText.split('\n');
    const at = lines.indexOf('  workflow_run:');
    if (!/Guards/.test(lines.slice(Math.max(0, at - 8), at).join('\n')))
      problems.push('workflow_run without a Guards comment');
  }
  return problems;
}

describe('keel init: the caller workflows', () => {
  const names = ['build', 'smoke-boot', 'build-disk'];

  it.each(names)('%s.yml keeps the policy that applies to callers', (name) => {
    for (const r of [debian(), fedora()])
      expect(callerProblems(name, text(r, `.github/workflows/${name}.yml`))).toEqual([]);
  });

  it('the policy check catches a widened permission, a tag pin, a passed secret and an unknown input', () => {
    const good = text(debian(), '.github/workflows/build.yml');
    const bad = good
      .replace('packages: write', 'packages: write\n      id-token: write')
      .replace(/@[0-9a-f]{40} # v/, '@v0 # v')
      .replace('    with:\n', '    secrets: inherit\n    with:\n      colour: blue\n');
    expect(callerProblems('build', bad)).toEqual([
      'passes secrets',
      'job build: not pinned to a full commit SHA with the release as comment',
      expect.stringMatching(/^job build: permissions .*id-token/),
      "job build: passes 'colour', which reusable-build.yml does not declare",
    ]);
  });

  it.each(names)('%s.yml passes @actions/languageservice with no diagnostics', async (name) => {
    for (const r of [debian(), fedora()])
      expect(await diagnostics(`${name}.yml`, text(r, `.github/workflows/${name}.yml`))).toEqual([]);
  });

  it('the validator does catch a broken caller (so the check above is not vacuous)', async () => {
    const good = text(debian(), '.github/workflows/build.yml');
    const broken = good
      .replace('    permissions:\n', '    permission:\n')
      .replace('      - synchronize', '      - synchronise');
    expect(broken).not.toBe(good);
    const found = await diagnostics('build.yml', broken);
    expect(found.some((m) => m.includes("'permission'"))).toBe(true);
    expect(found.some((m) => m.includes("'synchronise'"))).toBe(true);
  });

  it('build: push and labelled pull requests of main trigger it, only the label lets a pull request through', () => {
    const b = callerOf(debian(), 'build');
    const on = b.on as Record<string, { types?: string[]; paths?: string[]; branches?: string[] }>;
    expect(on.pull_request?.types).toEqual(['labeled', 'synchronize']);
    expect(on.push?.branches).toEqual(['main']);
    expect(on.push?.paths).toEqual([
      'Containerfile',
      'build_files/**',
      'declarations/**',
      '.github/workflows/build.yml',
    ]);
    expect(b.jobs.build!.if).toContain("github.event.label.name == 'vm-test'");
    expect(b.jobs.build!.if).toContain('github.event.pull_request.head.repo.full_name == github.repository');
  });

  it('smoke-boot runs on workflow_run of the build workflow by its exact name, or by dispatch with a digest', () => {
    const r = debian();
    const b = callerOf(r, 'build');
    const s = callerOf(r, 'smoke-boot');
    const run = (s.on as Record<string, { workflows: string[]; types: string[] }>).workflow_run!;
    expect(run.workflows).toEqual([b.name]);
    expect(run.types).toEqual(['completed']);
    expect(s.jobs['smoke-boot']!.with).toMatchObject({
      image: IMAGE,
      'public-key': 'cosign.pub',
      'image-ref': '${{ inputs.image-ref }}',
    });
  });

  it('all three pin the commit given, with the stamped release as the version comment', () => {
    for (const name of names) {
      const c = text(fedora(), `.github/workflows/${name}.yml`);
      expect(c).toContain(
        `uses: keel-project/keel/.github/workflows/reusable-${name}.yml@${COMMIT} # ${release.version}`,
      );
    }
  });
});
