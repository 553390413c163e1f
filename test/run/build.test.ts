// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../actions/build/src/main.js';
import type { RunContext } from '../../actions/lib/context.js';
import { recordingIO } from '../../actions/lib/io.js';
import { finalBase, fromLines, requireBuiltFromBase } from '../../actions/build/src/containerfile.js';
import { D_BASE, D_IMG, fakeBuildah, ID1, ID2 } from '../harness/fake-buildah.js';

/**
 * build's run() through recordingIO and a fake buildah: inputs and the event → the exact buildah
 * argv of both passes and the outputs; bad input fails before buildah is called.
 */
const KVER = '6.12.9-table-amd64';
const NOW = new Date('2025-03-04T05:06:07Z');
let work: string;
let rootfs: string;
let decl: string;
let containerfile: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-build-'));
  rootfs = path.join(work, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'usr/lib/modules', KVER), { recursive: true });
  fs.writeFileSync(path.join(rootfs, 'usr/lib/modules', KVER, 'vmlinuz'), 'kernel');
  containerfile = path.join(work, 'Containerfile');
  fs.writeFileSync(containerfile, 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n');
  decl = path.join(work, 'distro.yaml');
  fs.writeFileSync(
    decl,
    [
      'version: 1',
      'image: { registry: ghcr.io/acme, name: acme-os, title: Acme OS, description: An OS, vendor: Acme }',
      'os: { id: acme-os, name: Acme OS, pretty-name: Acme OS }',
      'tags: { candidate: nightly, stable: stable }',
      'base: { image: localhost/acme-base:trixie }',
      'build: { inputs: [Containerfile] }',
      '',
    ].join('\n'),
  );
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function runBuild(
  extra: Record<string, string>,
  context: Partial<RunContext> = {},
  ignoreBase = false,
  env: NodeJS.ProcessEnv = {},
) {
  const fake = fakeBuildah({ rootfs, ignoreBase });
  const io = recordingIO(
    { containerfile, context: work, declarations: decl, 'root-storage': 'false', ...extra },
    { now: () => NOW, runnerTemp: work, workspace: work, sha: 'f'.repeat(40), eventName: 'push', ...context },
    fake.runner,
  );
  return { io, fake, done: run(io, env) };
}

const builds = (calls: { cmd: string; args: string[] }[]) =>
  calls.filter((c) => c.cmd === 'buildah' && c.args.includes('build')).map((c) => c.args);
const flag = (argv: string[], name: string) => argv.flatMap((a, i) => (argv[i - 1] === name ? [a] : []));

describe('build run()', () => {
  it.each([
    ['a push', {}, {}, 'localhost/acme-os:nightly', 'nightly.20250304', []],
    [
      'a labelled pull request',
      {},
      { eventName: 'pull_request', event: { pull_request: { number: 7, labels: [{ name: 'vm-test' }] } } },
      'localhost/acme-os:pr-7',
      'pr-7.20250304',
      [],
    ],
    [
      'a named image with extra tags',
      { image: 'localhost/x:dev', tags: 'edge' },
      {},
      'localhost/x:dev',
      'nightly.20250304',
      ['localhost/x:edge'],
    ],
    [
      'an explicit version and date',
      { version: '1.0', 'release-date': '20240101' },
      {},
      'localhost/acme-os:nightly',
      '1.0',
      [],
    ],
  ])('%s: two passes, the second labelled and tagged', async (_what, extra, context, image, version, moreTags) => {
    const { io, fake, done } = runBuild(extra, context);
    await done;
    const [pass1, pass2] = builds(fake.calls);
    expect(flag(pass1!, '--isolation')).toEqual(['chroot']);
    expect(flag(pass1!, '--file')).toEqual([containerfile]);
    expect(flag(pass1!, '--build-arg')).toContain(`BASE_IMAGE=localhost/acme-base@${D_BASE}`);
    expect(flag(pass1!, '--label')).toContain(`org.opencontainers.image.version=${version}`);
    expect(flag(pass1!, '--tag')).toEqual([]);
    expect(flag(pass2!, '--label')).toContain(`ostree.linux=${KVER}`);
    expect(flag(pass2!, '--tag')).toEqual([image, ...moreTags]);
    expect(pass1!.at(-1)).toBe(work);
    expect(io.outputs).toMatchObject({
      'image-id': ID2,
      'local-ref': `containers-storage:${image}`,
      'kernel-version': KVER,
      digest: D_IMG,
      'base-digest': D_BASE,
      'base-image-ref': `localhost/acme-base@${D_BASE}`,
      created: '2025-03-04T05:06:07Z',
      version,
    });
    expect(io.groups).toEqual(['build the image']);
    expect(JSON.parse(io.outputs.labels!)['ostree.linux']).toBe(KVER);
    expect(io.summaries.join('')).toMatch(/### build\n/);
  });

  it('passes the isolation and storage driver to every buildah call', async () => {
    const { fake, done } = runBuild({ isolation: 'oci', 'storage-driver': 'vfs' });
    await done;
    for (const c of fake.calls.filter((x) => x.cmd === 'buildah'))
      expect(c.args.slice(0, 2)).toEqual(['--storage-driver', 'vfs']);
    expect(flag(builds(fake.calls)[0]!, '--isolation')).toEqual(['oci']);
  });

  it.each([
    [
      'a missing Containerfile',
      { containerfile: '/nonexistent/Containerfile' },
      /^Input 'containerfile' has value "\/nonexistent\/Containerfile": expected an existing file/,
    ],
    [
      'a bad secret line',
      { secrets: 'novalue' },
      /^Input 'secrets' has value "novalue": item "novalue": expected id=path or id=env:VAR/,
    ],
    [
      'a bad base image',
      { 'base-image': 'Not A Ref' },
      /^Input 'base-image' has value "Not A Ref": not a valid image reference/,
    ],
    [
      'a bad isolation',
      { isolation: 'vm' },
      /^Input 'isolation' has value "vm": expected one of: chroot, oci, rootless/,
    ],
    ['latest', { image: 'localhost/x:latest' }, /never writes 'latest'/],
  ])('refuses %s before buildah runs', async (_what, extra, message) => {
    const { io, fake, done } = runBuild(extra);
    await expect(done).rejects.toThrow(message);
    expect(fake.calls.filter((c) => c.args.includes('build'))).toEqual([]);
    expect(io.outputs['image-id']).toBeUndefined();
  });
});

/**
 * The reusable build's BUILD_SECRETS: NAME=value lines in KEEL_BUILD_SECRETS give the values of the
 * variables build.secrets entries name. The values reach buildah only through its environment.
 */
describe('build secrets passed by a reusable workflow caller', () => {
  const TOKEN = 'npm-tok-9f8e7d6c5b4a';
  const UNUSED = 'unused-value-0a1b2c3d';
  let declWithSecrets: string;
  beforeAll(() => {
    declWithSecrets = path.join(work, 'distro-secrets.yaml');
    fs.writeFileSync(
      declWithSecrets,
      fs
        .readFileSync(decl, 'utf8')
        .replace(
          'build: { inputs: [Containerfile] }',
          'build: { inputs: [Containerfile], secrets: [{ id: npmtok, github-secret: NPM_TOKEN }] }',
        ),
    );
  });
  const visibleText = (io: ReturnType<typeof recordingIO>, calls: { args: string[] }[]) =>
    JSON.stringify([io.logs, io.summaries, io.outputs, calls.map((c) => c.args)]);

  it('mounts the declared secret from the passed value, masked, never in argv or the log', async () => {
    const env: NodeJS.ProcessEnv = { KEEL_BUILD_SECRETS: `NPM_TOKEN=${TOKEN}\nSTALE_NAME=${UNUSED}\n` };
    const { io, fake, done } = runBuild({ declarations: declWithSecrets }, {}, false, env);
    await done;
    const [pass1] = builds(fake.calls);
    expect(flag(pass1!, '--secret')).toEqual(['id=npmtok,env=NPM_TOKEN']);
    const buildCalls = fake.calls.filter((c) => c.cmd === 'buildah' && c.args.includes('build'));
    for (const c of buildCalls) expect(c.opts?.env?.NPM_TOKEN).toBe(TOKEN);
    expect(io.secrets).toEqual(expect.arrayContaining([TOKEN, UNUSED]));
    expect(env.KEEL_BUILD_SECRETS).toBeUndefined();
    for (const v of [TOKEN, UNUSED]) expect(visibleText(io, fake.calls)).not.toContain(v);
    expect(io.logs).toContainEqual({
      level: 'warning',
      message: 'BUILD_SECRETS passes STALE_NAME, which no build.secrets entry reads: not used',
    });
  });

  it('without passed values (a pull-request run) builds without the secret, saying so', async () => {
    const { io, fake, done } = runBuild({ declarations: declWithSecrets }, {}, false, {});
    await done;
    expect(flag(builds(fake.calls)[0]!, '--secret')).toEqual([]);
    expect(io.logs).toContainEqual({
      level: 'warning',
      message: "declared build secret 'npmtok': environment variable NPM_TOKEN is not set; building without it",
    });
  });

  it.each([
    ['a line without a name', `NPM_TOKEN=${TOKEN}\n=${UNUSED}`, /line 2: expected NAME=value/],
    ['a name that is no variable name', `NPM-TOKEN=${TOKEN}`, /line 1: expected NAME=value/],
    ['a name given twice', `NPM_TOKEN=${TOKEN}\nNPM_TOKEN=${UNUSED}`, /line 2: NPM_TOKEN is given twice/],
  ])('refuses %s before buildah runs, masking and never naming the values', async (_what, text, message) => {
    const env: NodeJS.ProcessEnv = { KEEL_BUILD_SECRETS: text };
    const { io, fake, done } = runBuild({ declarations: declWithSecrets }, {}, false, env);
    const err = await done.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(message);
    expect(err?.message).toMatch(/^KEEL_BUILD_SECRETS \(the reusable build's BUILD_SECRETS\) line/);
    for (const v of [TOKEN, UNUSED]) expect(err?.message).not.toContain(v);
    expect(io.secrets).toEqual(expect.arrayContaining(text.includes(UNUSED) ? [TOKEN, UNUSED] : [TOKEN]));
    expect(fake.calls).toEqual([]);
    expect(env.KEEL_BUILD_SECRETS).toBeUndefined();
  });
});

describe('the FROM ${BASE_IMAGE} contract', () => {
  it.each([
    ['FROM ${BASE_IMAGE}', 'base-image', 1],
    ['ARG BASE_IMAGE=x\nFROM $BASE_IMAGE AS os\nRUN true', 'base-image', 2],
    ['FROM --platform=linux/amd64 ${BASE_IMAGE:-quay.io/x/y:1}', 'base-image', 1],
    ['FROM scratch AS ctx\nCOPY f /\n# FROM quay.io/comment:1\nFROM ${BASE_IMAGE}', 'base-image', 4],
    ['FROM ${BASE_IMAGE} AS base\nRUN a\nFROM base AS final\nFROM final', 'base-image', 1],
    ['FROM \\\n  ${BASE_IMAGE} \\\n  AS os', 'base-image', 1],
    ['FROM ${BASE_IMAGE} AS b\nFROM quay.io/fedora/fedora-bootc:42\nRUN dnf -y install x', 'literal', 2],
    ['FROM ${BASE_IMAGE_OLD}', 'variable', 1],
    ['ARG OTHER\nFROM ${OTHER}', 'variable', 2],
    ['from ghcr.io/acme/base:13 as x\nFROM X', 'literal', 1],
  ])('%j: the final stage starts from %s at line %d', (text, uses, line) => {
    const r = finalBase(text);
    expect([r.uses, r.from?.line]).toEqual([uses, line]);
  });

  it('reads flags, stage names and continued lines', () => {
    expect(fromLines('FROM --platform=$P img AS Build \\\n\nRUN x')).toEqual([
      { line: 1, text: 'FROM --platform=$P img AS Build', image: 'img', stage: 'build' },
    ]);
  });

  it('the layer check: the base must be in storage and its layers first', () => {
    const ctx = { file: 'Containerfile', pinned: 'q.io/b@sha256:1' };
    expect(() => requireBuiltFromBase(['a', 'b', 'c'], ['a', 'b'], ctx)).not.toThrow();
    expect(() => requireBuiltFromBase(['a', 'c'], ['a', 'b'], ctx)).toThrow(
      /^Containerfile: the built image's layers do not start with the pinned base q\.io\/b@sha256:1's 2 layer\(s\)/,
    );
    expect(() => requireBuiltFromBase(['a'], undefined, ctx)).toThrow(
      /^Containerfile: the pinned base q\.io\/b@sha256:1 is not in containers-storage after the build, so the build never used it/,
    );
  });

  it('a literal FROM fails before anything is built, naming the Containerfile line', async () => {
    const file = path.join(work, 'Containerfile.literal');
    fs.writeFileSync(file, 'ARG BASE_IMAGE\nFROM quay.io/fedora/fedora-bootc:42\nRUN true\n');
    const { io, fake, done } = runBuild({ containerfile: file });
    await expect(done).rejects.toThrow(
      `${file}:2: the final stage starts "FROM quay.io/fedora/fedora-bootc:42", which ignores the pinned base localhost/acme-base@${D_BASE}`,
    );
    expect(builds(fake.calls)).toEqual([]);
    expect(io.outputs['image-id']).toBeUndefined();
    expect(io.outputs['base-digest']).toBe(D_BASE);
  });

  it('an image not built from the pinned base fails after the first pass, with no label pass', async () => {
    const file = path.join(work, 'Containerfile.other');
    fs.writeFileSync(file, 'ARG OTHER=quay.io/x/y:1\nFROM ${OTHER}\n');
    const { io, fake, done } = runBuild({ containerfile: file }, {}, true);
    await expect(done).rejects.toThrow(
      new RegExp(
        `^${file.replace(/[.]/g, '\\.')}:2 \\("FROM \\$\\{OTHER\\}"\\): the built image's layers do not start with the pinned base`,
      ),
    );
    expect(builds(fake.calls)).toHaveLength(1);
    expect(io.outputs['image-id']).toBe(ID1);
    expect(io.outputs['local-ref']).toBeUndefined();
  });
});
