// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildImage, type BuildRequest, type BuildState } from '../../actions/build/src/build.js';
import { bootstrapArgs } from '../../actions/build/src/base-bootstrap.js';
import { Buildah, theKernel } from '../../actions/build/src/buildah.js';
import { globToRegExp, inputsDigest, matchInputs } from '../../actions/build/src/inputs-digest.js';
import {
  buildArgv,
  computeBuildArgs,
  computeLabels,
  localImageName,
  parseSecretLine,
  secretsFromDeclarations,
  versionOf,
  type BaseImage,
} from '../../actions/build/src/plan.js';
import { contextFromEnv, type RunContext } from '../../actions/lib/context.js';
import { parseDeclarations } from '../../actions/lib/declarations.js';
import { InputError, UserError } from '../../actions/lib/errors.js';
import type { CommandRunner } from '../../actions/lib/exec.js';
import { memoryLogger } from '../../actions/lib/log.js';
import { D_BASE, D_IMG, fakeBuildah, ID1, ID2, type Call } from '../harness/fake-buildah.js';

/**
 * The build hop's logic without buildah: a recording runner plays buildah (inspect, build,
 * from/mount) and the tests assert the exact argv, the order of operations and what is logged.
 */
const DECL = parseDeclarations(`
version: 1
image: { registry: ghcr.io/acme, name: acme-os, title: Acme OS, description: Acme's OS, vendor: Acme, licenses: MIT, keywords: [bootc, acme] }
os: { id: acme-os, name: Acme OS, pretty-name: Acme OS (test), id-like: debian, variant-id: acme }
tags: { candidate: nightly, stable: stable }
base: { image: localhost/acme-base:trixie }
build:
  build-args: { EXTRA: declared, OS_NAME: Declared Name }
  inputs: [Containerfile, build_files/**]
staleness: { warn-after-days: 9 }
`);

const KVER = '6.12.1-test-amd64';
const NOW = new Date('2025-03-04T05:06:07.890Z');

const tmps: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-build-plan-'));
  tmps.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmps) fs.rmSync(d, { recursive: true, force: true });
});

function rootfsWithKernels(...kvers: string[]): string {
  const r = tmp();
  for (const k of kvers) {
    fs.mkdirSync(path.join(r, 'usr/lib/modules', k), { recursive: true });
    fs.writeFileSync(path.join(r, 'usr/lib/modules', k, 'vmlinuz'), 'kernel');
  }
  return r;
}

function context(over: Partial<RunContext> = {}): RunContext {
  return {
    ...contextFromEnv({}),
    runnerTemp: tmp(),
    workspace: tmp(),
    repository: 'acme/os',
    sha: 'abc123'.padEnd(40, '0'),
    serverUrl: 'https://github.com',
    now: () => NOW,
    ...over,
  };
}

function request(over: Partial<BuildRequest> = {}): BuildRequest {
  return {
    containerfile: 'Containerfile',
    context: '.',
    image: '',
    tags: [],
    baseImage: '',
    buildArgs: {},
    labels: {},
    storageDriver: 'overlay',
    isolation: 'chroot',
    declarations: DECL,
    registry: {},
    ...over,
  };
}

const buildCalls = (calls: Call[]) => calls.filter((c) => c.args.includes('build')).map((c) => c.args);

describe('build plan', () => {
  it('names the local image from the declarations, the stream and the input', () => {
    expect(localImageName('', DECL, undefined).toString()).toBe('localhost/acme-os:nightly');
    expect(localImageName('', DECL, { number: 7, labels: [] }).toString()).toBe('localhost/acme-os:pr-7');
    expect(localImageName('my-os', DECL, undefined).toString()).toBe('localhost/my-os:nightly');
    expect(localImageName('localhost/x:dev', undefined, undefined).toString()).toBe('localhost/x:dev');
    expect(localImageName('quay.io/o/x', undefined, undefined).toString()).toBe('quay.io/o/x:candidate');
    expect(() => localImageName('', undefined, undefined)).toThrow(InputError);
    expect(() => localImageName(`localhost/x@sha256:${'0'.repeat(64)}`, DECL, undefined)).toThrow(
      /cannot carry a digest/,
    );
    expect(() => localImageName('localhost/x:latest', DECL, undefined)).toThrow(/never writes 'latest'/);
  });

  it('parses secret lines without reading values into anything but masks', () => {
    const f = path.join(tmp(), 'key.pem');
    fs.writeFileSync(f, 'x');
    expect(parseSecretLine(`mok=${f}`)).toEqual({ id: 'mok', kind: 'file', ref: f });
    expect(parseSecretLine('tok=env:TOKEN', { TOKEN: 'v' })).toEqual({ id: 'tok', kind: 'env', ref: 'TOKEN' });
    expect(parseSecretLine('tok=env:TOKEN', {})).toBe('environment variable TOKEN is not set or empty');
    expect(parseSecretLine('tok=/nope/nothing')).toBe('secret file /nope/nothing does not exist');
    expect(parseSecretLine('bad id=/x')).toMatch(/may only contain/);
    expect(parseSecretLine('novalue')).toBe('expected id=path or id=env:VAR');
  });

  it('skips declared secrets that are not provided, with a warning', () => {
    const decl = parseDeclarations(
      `version: 1\nimage: { registry: r.io/o, name: x, title: X, description: X, vendor: X }\nos: { id: x, name: X, pretty-name: X }\nbase: { image: localhost/b:1 }\nbuild:\n  secrets: [{ id: a, env: A_SET }, { id: b, github-secret: B_UNSET }]\n`,
    );
    const log = memoryLogger();
    expect(secretsFromDeclarations(decl, { A_SET: 'v' }, log)).toEqual([{ id: 'a', kind: 'env', ref: 'A_SET' }]);
    expect(log.lines).toEqual([
      {
        level: 'warning',
        message: "declared build secret 'b': environment variable B_UNSET is not set; building without it",
      },
    ]);
  });

  const base: BaseImage = {
    given: 'localhost/acme-base:trixie',
    digest: D_BASE,
    pinned: `localhost/acme-base@${D_BASE}`,
    source: 'local',
  };

  it('computes the OCI label set, refuses overriding facts, drops empty values with a warning', () => {
    const log = memoryLogger();
    const labels = computeLabels(
      { created: 'T', version: 'nightly.20250304', revision: undefined, source: 'https://x', base, decl: DECL },
      { extra: 'yes', 'org.opencontainers.image.vendor': '' },
      log,
    );
    expect(labels).toEqual({
      'org.opencontainers.image.created': 'T',
      'org.opencontainers.image.version': 'nightly.20250304',
      'org.opencontainers.image.source': 'https://x',
      'org.opencontainers.image.title': 'Acme OS',
      'org.opencontainers.image.description': "Acme's OS",
      'org.opencontainers.image.licenses': 'MIT',
      'org.opencontainers.image.base.name': 'localhost/acme-base:trixie',
      'org.opencontainers.image.base.digest': D_BASE,
      'io.artifacthub.package.keywords': 'bootc,acme',
      'containers.bootc': '1',
      'ostree.bootable': 'true',
      extra: 'yes',
    });
    expect(log.lines.map((l) => l.message)).toEqual([
      'labels omitted because their value is empty (never published empty): org.opencontainers.image.revision, org.opencontainers.image.vendor',
    ]);
    for (const k of ['ostree.linux', 'org.opencontainers.image.base.digest', 'org.opencontainers.image.created']) {
      expect(() => computeLabels({ created: 'T', version: 'v', base }, { [k]: 'x' }, log)).toThrow(
        /is set by the build itself/,
      );
    }
  });

  it('derives build-args from declarations and labels, lets declared and input args override, pins BASE_IMAGE', () => {
    const labels = { 'org.opencontainers.image.created': 'T', 'org.opencontainers.image.version': 'V' };
    const args = computeBuildArgs({ base, labels, decl: DECL, inputsDigest: 'sha256:d', user: { EXTRA: 'input' } });
    expect(args).toEqual({
      OS_ID: 'acme-os',
      OS_NAME: 'Declared Name',
      OS_PRETTY_NAME: 'Acme OS (test)',
      OS_ID_LIKE: 'debian',
      OS_VARIANT_ID: 'acme',
      STALENESS_WARN_DAYS: '9',
      IMAGE_CREATED: 'T',
      IMAGE_VERSION: 'V',
      BUILD_INPUTS_DIGEST: 'sha256:d',
      EXTRA: 'input',
      BASE_IMAGE: `localhost/acme-base@${D_BASE}`,
    });
    expect(() => computeBuildArgs({ base, labels, user: { BASE_IMAGE: 'x' } })).toThrow(/set base-image instead/);
  });

  it('writes the buildah argv with secrets by reference only', () => {
    const argv = buildArgv(
      {
        containerfile: 'Containerfile',
        context: '.',
        isolation: 'chroot',
        buildArgs: { A: '1' },
        labels: { l: 'v' },
        annotations: { an: 'x' },
        secrets: [
          { id: 'f', kind: 'file', ref: '/s/key' },
          { id: 'e', kind: 'env', ref: 'TOKEN' },
        ],
        tags: ['localhost/x:1'],
        iidfile: '/t/iid',
        tlsVerify: false,
        authfile: '/t/auth.json',
      },
      { 'ostree.linux': 'K' },
    );
    expect(argv).toEqual([
      'build',
      '--isolation',
      'chroot',
      '--layers',
      '--iidfile',
      '/t/iid',
      '--file',
      'Containerfile',
      '--tls-verify=false',
      '--authfile',
      '/t/auth.json',
      '--build-arg',
      'A=1',
      '--secret',
      'id=f,src=/s/key',
      '--secret',
      'id=e,env=TOKEN',
      '--annotation',
      'an=x',
      '--label',
      'l=v',
      '--label',
      'ostree.linux=K',
      '--tag',
      'localhost/x:1',
      '--',
      '.',
    ]);
  });

  it('builds a multi-stage target only when one is given', () => {
    const plan = {
      containerfile: 'Containerfile.nvidia',
      context: '.',
      isolation: 'chroot',
      buildArgs: {},
      labels: {},
      annotations: {},
      secrets: [],
      tags: [],
      iidfile: '/t/iid',
      tlsVerify: true,
    };
    const withTarget = buildArgv({ ...plan, target: 'nvidia' });
    expect(withTarget.slice(6, 10)).toEqual(['--file', 'Containerfile.nvidia', '--target', 'nvidia']);
    expect(buildArgv(plan)).not.toContain('--target');
  });

  it('maps declarations base.bootstrap onto the bootstrap script flags', () => {
    const d = parseDeclarations(
      `version: 1\nimage: { registry: r.io/o, name: x, title: X, description: X, vendor: X }\nos: { id: x, name: X, pretty-name: X }\n` +
        `base:\n  image: localhost/x-base:trixie\n  bootstrap: { suite: trixie, mirror: 'http://mirror.example/debian', packages: [systemd, udev] }\n`,
    );
    expect(bootstrapArgs(d, { cacheKey: '2025-W10' })).toEqual([
      '--image',
      'localhost/x-base:trixie',
      '--suite',
      'trixie',
      '--mirror',
      'http://mirror.example/debian',
      '--cache-key',
      '2025-W10',
      '--package',
      'systemd',
      '--package',
      'udev',
    ]);
    expect(bootstrapArgs(DECL)).toBeUndefined();
  });

  it('versions as <stream>.<date>', () => {
    expect(versionOf(DECL, undefined, '20250304')).toBe('nightly.20250304');
    expect(versionOf(undefined, { number: 3, labels: [] }, '20250304')).toBe('pr-3.20250304');
  });

  it('demands exactly one kernel directory holding vmlinuz', () => {
    expect(theKernel([{ name: 'k', hasVmlinuz: true, hasInitramfs: true }])).toBe('k');
    expect(() => theKernel([])).toThrow(/has no kernel/);
    expect(() =>
      theKernel([
        { name: 'a', hasVmlinuz: true, hasInitramfs: true },
        { name: 'b', hasVmlinuz: false, hasInitramfs: false },
      ]),
    ).toThrow(/2 kernel directories under \/usr\/lib\/modules \(a, b\)/);
    expect(() => theKernel([{ name: 'k', hasVmlinuz: false, hasInitramfs: true }])).toThrow(/vmlinuz is missing/);
  });
});

describe('reading the kernel as a non-root user', () => {
  it('lists /usr/lib/modules inside buildah unshare with a fixed script, the container name as an argument', async () => {
    const calls: string[][] = [];
    const runner: CommandRunner = {
      async run(_cmd, args) {
        calls.push(args);
        const out = args[0] === 'unshare' ? '6.1-a\tvmlinuz\tinitramfs\nstray\t-\t-\n' : '';
        return { code: 0, stdout: Buffer.from(out), stderr: '' };
      },
    };
    const dirs = await new Buildah(runner, memoryLogger(), 'vfs', 'user').kernelDirs('img-id');
    expect(dirs).toEqual([
      { name: '6.1-a', hasVmlinuz: true, hasInitramfs: true },
      { name: 'stray', hasVmlinuz: false, hasInitramfs: false },
    ]);
    const name = calls[0]![calls[0]!.length - 3]!;
    expect(calls[0]).toEqual(['--storage-driver', 'vfs', 'from', '--pull=never', '--name', name, '--', 'img-id']);
    const unshare = calls[1]!;
    expect(unshare.slice(0, 4)).toEqual(['unshare', '--', 'sh', '-c']);
    expect(unshare.slice(-3)).toEqual(['sh', name, 'vfs']);
    expect(unshare[4]).not.toContain(name);
    expect(calls[2]).toEqual(['--storage-driver', 'vfs', 'rm', name]);
  });

  it('keeps images in root storage through sudo -n, env secrets through --preserve-env', async () => {
    const fake = fakeBuildah({ rootfs: rootfsWithKernels(KVER) });
    const calls: { cmd: string; args: string[] }[] = [];
    const runner: CommandRunner = {
      async run(cmd, args, o = {}) {
        calls.push({ cmd, args });
        if (cmd === 'sudo' && args[1] === 'sh')
          return { code: 0, stdout: Buffer.from(`${KVER}\tvmlinuz\tinitramfs\n`), stderr: '' };
        if (cmd === 'sudo') return fake.runner.run('buildah', args.slice(args.indexOf('buildah') + 1), o);
        return fake.runner.run(cmd, args, o);
      },
    };
    const env = { ...process.env, KEEL_TEST_TOKEN: 'v' };
    const r = await buildImage(request({ secrets: [{ id: 'tok', kind: 'env', ref: 'KEEL_TEST_TOKEN' }] }), {
      runner,
      log: memoryLogger(),
      context: context(),
      env,
      uid: 1001,
    });
    expect(r.kernelVersion).toBe(KVER);
    const builds = calls.filter((c) => c.args.includes('build'));
    expect(builds).toHaveLength(2);
    for (const b of builds) {
      expect(b.cmd).toBe('sudo');
      expect(b.args.slice(0, 5)).toEqual([
        '-n',
        '--preserve-env=KEEL_TEST_TOKEN',
        'buildah',
        '--storage-driver',
        'overlay',
      ]);
    }
    expect(calls.filter((c) => c.cmd !== 'git').map((c) => c.cmd)).toEqual(
      calls.filter((c) => c.cmd !== 'git').map(() => 'sudo'),
    );
    const list = calls.find((c) => c.args[1] === 'sh')!;
    expect(list.args.slice(0, 3)).toEqual(['-n', 'sh', '-c']);
    expect(list.args.slice(-3)).toEqual(['sh', expect.stringMatching(/^keel-kver-/), 'overlay']);
  });
});

describe('build inputs digest', () => {
  it('matches globs like the declarations mean them', () => {
    expect(globToRegExp('build_files/**').test('build_files/a/b.sh')).toBe(true);
    expect(globToRegExp('build_files/**').test('build_files2/a')).toBe(false);
    expect(globToRegExp('**/*.sh').test('x.sh')).toBe(true);
    expect(globToRegExp('**/*.sh').test('a/b/x.sh')).toBe(true);
    expect(globToRegExp('*.yaml').test('a/b.yaml')).toBe(false);
    expect(globToRegExp('Containerfile').test('Containerfile')).toBe(true);
    expect(globToRegExp('declarations').test('declarations/distro.yaml')).toBe(true);
  });

  it('changes when a matched file changes and not when another one does', () => {
    const root = tmp();
    fs.mkdirSync(path.join(root, 'build_files/10-x'), { recursive: true });
    fs.mkdirSync(path.join(root, 'node_modules/m'), { recursive: true });
    fs.writeFileSync(path.join(root, 'Containerfile'), 'FROM x');
    fs.writeFileSync(path.join(root, 'build_files/10-x/run.sh'), 'echo 1');
    fs.writeFileSync(path.join(root, 'README.md'), 'a');
    const globs = ['Containerfile', 'build_files/**'];
    expect(matchInputs(root, globs)).toEqual(['Containerfile', 'build_files/10-x/run.sh']);
    const d1 = inputsDigest(root, globs);
    expect(d1.files).toBe(2);
    fs.writeFileSync(path.join(root, 'README.md'), 'b');
    expect(inputsDigest(root, globs).digest).toBe(d1.digest);
    fs.writeFileSync(path.join(root, 'build_files/10-x/run.sh'), 'echo 2');
    expect(inputsDigest(root, globs).digest).not.toBe(d1.digest);
    fs.chmodSync(path.join(root, 'build_files/10-x/run.sh'), 0o755);
    const d3 = inputsDigest(root, globs).digest;
    fs.chmodSync(path.join(root, 'build_files/10-x/run.sh'), 0o644);
    expect(inputsDigest(root, globs).digest).not.toBe(d3);
  });
});

describe('buildImage (recorded buildah)', () => {
  it('resolves the base once, builds, reads the kernel, stamps ostree.linux in a cached second pass', async () => {
    const fake = fakeBuildah({ rootfs: rootfsWithKernels(KVER) });
    const log = memoryLogger();
    const ctx = context();
    fs.mkdirSync(path.join(ctx.workspace, 'build_files'));
    fs.writeFileSync(path.join(ctx.workspace, 'build_files', 'x.sh'), 'echo');
    const r = await buildImage(request({ labels: { team: 'os' } }), { uid: 0, runner: fake.runner, log, context: ctx });

    const baseInspects = fake.calls.filter(
      (c) => c.args.includes('inspect') && c.args.includes('localhost/acme-base:trixie'),
    );
    expect(baseInspects).toHaveLength(1);
    const [pass1, pass2] = buildCalls(fake.calls);
    expect(buildCalls(fake.calls)).toHaveLength(2);
    const created = '2025-03-04T05:06:07Z';
    const common = (iid: string) => [
      '--storage-driver',
      'overlay',
      'build',
      '--isolation',
      'chroot',
      '--layers',
      '--iidfile',
      iid,
      '--file',
      'Containerfile',
      '--build-arg',
      'OS_ID=acme-os',
      '--build-arg',
      'OS_NAME=Declared Name',
      '--build-arg',
      'OS_PRETTY_NAME=Acme OS (test)',
      '--build-arg',
      'OS_ID_LIKE=debian',
      '--build-arg',
      'OS_VARIANT_ID=acme',
      '--build-arg',
      'STALENESS_WARN_DAYS=9',
      '--build-arg',
      `IMAGE_CREATED=${created}`,
      '--build-arg',
      'IMAGE_VERSION=nightly.20250304',
      '--build-arg',
      `IMAGE_REVISION=${ctx.sha}`,
      '--build-arg',
      'IMAGE_SOURCE=https://github.com/acme/os',
      '--build-arg',
      `BUILD_INPUTS_DIGEST=${r.inputs!.digest}`,
      '--build-arg',
      'EXTRA=declared',
      '--build-arg',
      `BASE_IMAGE=localhost/acme-base@${D_BASE}`,
      '--annotation',
      'org.opencontainers.image.base.name=localhost/acme-base:trixie',
      '--annotation',
      `org.opencontainers.image.base.digest=${D_BASE}`,
      '--label',
      `org.opencontainers.image.created=${created}`,
      '--label',
      'org.opencontainers.image.version=nightly.20250304',
      '--label',
      `org.opencontainers.image.revision=${ctx.sha}`,
      '--label',
      'org.opencontainers.image.source=https://github.com/acme/os',
      '--label',
      'org.opencontainers.image.title=Acme OS',
      '--label',
      "org.opencontainers.image.description=Acme's OS",
      '--label',
      'org.opencontainers.image.vendor=Acme',
      '--label',
      'org.opencontainers.image.licenses=MIT',
      '--label',
      'org.opencontainers.image.base.name=localhost/acme-base:trixie',
      '--label',
      `org.opencontainers.image.base.digest=${D_BASE}`,
      '--label',
      'io.artifacthub.package.keywords=bootc,acme',
      '--label',
      'containers.bootc=1',
      '--label',
      'ostree.bootable=true',
      '--label',
      'team=os',
    ];
    expect(pass1).toEqual([...common(pass1![pass1!.indexOf('--iidfile') + 1]!), '--', '.']);
    expect(pass2).toEqual([
      ...common(pass2![pass2!.indexOf('--iidfile') + 1]!),
      '--label',
      `ostree.linux=${KVER}`,
      '--tag',
      'localhost/acme-os:nightly',
      '--',
      '.',
    ]);

    // The base's layers were checked against the built image's (FROM ${BASE_IMAGE}), then the
    // kernel read from the first pass's image, through a mounted working container.
    const order = fake.calls.map((c) => (c.args[0] === '--storage-driver' ? c.args[2] : c.args[0]));
    expect(order).toEqual([
      'inspect',
      'build',
      'inspect',
      'inspect',
      'from',
      'mount',
      'umount',
      'rm',
      'build',
      'inspect',
    ]);
    expect(fake.calls[3]!.args.slice(-2)).toEqual(['--', `localhost/acme-base@${D_BASE}`]);
    expect(fake.calls.find((c) => c.args.includes('from'))!.args.slice(-1)).toEqual([ID1]);

    expect(r).toMatchObject({
      imageId: ID2,
      localRef: 'containers-storage:localhost/acme-os:nightly',
      kernelVersion: KVER,
      releaseDate: '20250304',
      version: 'nightly.20250304',
      created,
      digest: D_IMG,
      base: {
        given: 'localhost/acme-base:trixie',
        digest: D_BASE,
        pinned: `localhost/acme-base@${D_BASE}`,
        source: 'local',
      },
    });
    expect(r.labels['ostree.linux']).toBe(KVER);
    expect(Object.keys(r.labels)).toEqual([...Object.keys(r.labels)].sort());
  });

  it('passes secrets by reference, masks and redacts their values', async () => {
    const secretFile = path.join(tmp(), 'mok.key');
    fs.writeFileSync(secretFile, 'FILE-SECRET-4242\nsecond-line-9999\n');
    const env = { ...process.env, KEEL_TEST_TOKEN: 'ENV-SECRET-1717' };
    const fake = fakeBuildah({
      rootfs: rootfsWithKernels(KVER),
      print: 'RUN printed FILE-SECRET-4242 and ENV-SECRET-1717',
    });
    const log = memoryLogger();
    const masked: string[] = [];
    await buildImage(
      request({
        secrets: [
          { id: 'mok', kind: 'file', ref: secretFile },
          { id: 'tok', kind: 'env', ref: 'KEEL_TEST_TOKEN' },
        ],
      }),
      { uid: 0, runner: fake.runner, log, context: context(), env, mask: (v) => masked.push(v) },
    );
    const all = JSON.stringify(fake.calls.map((c) => c.args)) + JSON.stringify(log.lines);
    for (const s of ['FILE-SECRET-4242', 'second-line-9999', 'ENV-SECRET-1717']) {
      expect([s, all.includes(s)]).toEqual([s, false]);
      expect(masked).toContain(s);
    }
    expect(log.lines.map((l) => l.message)).toContain('RUN printed *** and ***');
    const [pass1] = buildCalls(fake.calls);
    expect(pass1).toEqual(
      expect.arrayContaining(['--secret', `id=mok,src=${secretFile}`, '--secret', 'id=tok,env=KEEL_TEST_TOKEN']),
    );
    // The env secret reaches buildah through its environment, not its argv.
    const buildCall = fake.calls.find((c) => c.args.includes('build'))!;
    expect(buildCall.opts.env).toEqual({ KEEL_TEST_TOKEN: 'ENV-SECRET-1717' });
  });

  it('resolves a registry base through the registry, with credentials in a 0600 auth file that is removed', async () => {
    const fake = fakeBuildah({ rootfs: rootfsWithKernels(KVER), baseExists: false });
    const seen: string[] = [];
    let authDuringBuild = '';
    const runner: CommandRunner = {
      async run(cmd, args, o) {
        if (args.includes('build')) {
          const f = args[args.indexOf('--authfile') + 1]!;
          authDuringBuild = `${(fs.statSync(f).mode & 0o777).toString(8)} ${fs.readFileSync(f, 'utf8')}`;
          seen.push(f);
        }
        return fake.runner.run(cmd, args, o);
      },
    };
    const resolved: string[] = [];
    const r = await buildImage(
      request({
        baseImage: 'registry.example:5000/os/base:stable',
        registry: {
          username: 'u',
          password: 'pw-123',
          'tls-verify': false,
          'insecure-registries': ['registry.example:5000'],
        },
      }),
      {
        uid: 0,
        runner,
        log: memoryLogger(),
        context: context(),
        resolveRegistry: async (ref) => {
          resolved.push(ref.toString());
          return D_BASE;
        },
      },
    );
    expect(resolved).toEqual(['registry.example:5000/os/base:stable']);
    expect(r.base).toEqual({
      given: 'registry.example:5000/os/base:stable',
      digest: D_BASE,
      pinned: `registry.example:5000/os/base@${D_BASE}`,
      source: 'registry',
    });
    expect(authDuringBuild).toBe(
      `600 ${JSON.stringify({ auths: { 'registry.example:5000': { auth: Buffer.from('u:pw-123').toString('base64') } } })}`,
    );
    for (const f of seen) expect(fs.existsSync(f)).toBe(false);
    const [pass1] = buildCalls(fake.calls);
    expect(pass1).toContain('--tls-verify=false');
    expect(pass1).toContain(`BASE_IMAGE=registry.example:5000/os/base@${D_BASE}`);
    expect(JSON.stringify(fake.calls.map((c) => c.args))).not.toContain('pw-123');
  });

  it('refuses tls-verify false for a base registry that is neither loopback nor listed, before any call', async () => {
    const fake = fakeBuildah({ rootfs: rootfsWithKernels(KVER), baseExists: false });
    const resolved: string[] = [];
    await expect(
      buildImage(
        request({
          baseImage: 'registry.example:5000/os/base:stable',
          registry: { username: 'u', password: 'pw-123', 'tls-verify': false },
        }),
        {
          uid: 0,
          runner: fake.runner,
          log: memoryLogger(),
          context: context(),
          resolveRegistry: async (ref) => {
            resolved.push(ref.toString());
            return D_BASE;
          },
        },
      ),
    ).rejects.toThrow(
      /^Input 'tls-verify' has value "false": tls-verify is false but registry\.example:5000 is not a loopback address/,
    );
    expect(resolved).toEqual([]);
    expect(buildCalls(fake.calls)).toEqual([]);
  });

  it('fails on two kernels after the first pass, reporting the image it built and running no second pass', async () => {
    const fake = fakeBuildah({ rootfs: rootfsWithKernels('6.1-a', '6.2-b') });
    const state: BuildState = { timings: {} };
    await expect(
      buildImage(request(), { uid: 0, runner: fake.runner, log: memoryLogger(), context: context() }, state),
    ).rejects.toThrow(
      'the built image has 2 kernel directories under /usr/lib/modules (6.1-a, 6.2-b): a bootc image ships exactly one',
    );
    expect(buildCalls(fake.calls)).toHaveLength(1);
    expect(state.imageId).toBe(ID1);
    expect(state.localRef).toBeUndefined();
    // The working container used to look at the kernel was removed anyway.
    expect(fake.calls.some((c) => c.args.includes('rm'))).toBe(true);
  });

  it('re-reads the kernel when the second pass did not reuse the layers', async () => {
    const fake = fakeBuildah({ rootfs: rootfsWithKernels(KVER), secondPassOtherLayers: true });
    const log = memoryLogger();
    const r = await buildImage(request(), { uid: 0, runner: fake.runner, log, context: context() });
    expect(r.kernelVersion).toBe(KVER);
    expect(fake.calls.filter((c) => c.args.includes('mount'))).toHaveLength(2);
    expect(log.lines.some((l) => l.level === 'warning' && /did not reuse/.test(l.message))).toBe(true);
  });

  it('tags pr-<N> and versions pr-<N>.<date> on a pull request; a missing local base fails with the fix', async () => {
    const fake = fakeBuildah({ rootfs: rootfsWithKernels(KVER) });
    const ctx = context({ eventName: 'pull_request', event: { pull_request: { number: 12, labels: [] } } });
    const r = await buildImage(request({ releaseDate: '20240101' }), {
      uid: 0,
      runner: fake.runner,
      log: memoryLogger(),
      context: ctx,
    });
    expect(r.image).toBe('localhost/acme-os:pr-12');
    expect(r.version).toBe('pr-12.20240101');

    const missing = fakeBuildah({ rootfs: rootfsWithKernels(KVER), baseExists: false });
    await expect(
      buildImage(request(), { uid: 0, runner: missing.runner, log: memoryLogger(), context: context() }),
    ).rejects.toThrow(UserError);
    await expect(
      buildImage(request(), { uid: 0, runner: missing.runner, log: memoryLogger(), context: context() }),
    ).rejects.toThrow(/base image localhost\/acme-base:trixie is not in local containers-storage .*bootstrap\.sh/);
    expect(buildCalls(missing.calls)).toHaveLength(0);
  });
});
