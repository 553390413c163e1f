// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { loadDeclarations } from '../../actions/lib/declarations.js';
import { ensureBaseImage, ensureExampleImage, repoRoot, type ExampleImage } from '../harness/example-image.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { errors, runAction } from '../harness/run-action.js';
import { tmpdir } from '../harness/tools.js';

/**
 * The bundled build action, driven the way the runner drives it, with real buildah: the example
 * distro from the declarations, secrets that must not reach any layer, log or argv, a kernel
 * label computed from content, the build-inputs digest that makes buildah rebuild after a
 * script edit, a registry base with credentials, and the input errors.
 */
const decl = loadDeclarations(path.join(repoRoot, 'declarations', 'distro.yaml'));
const PREFIX = 'localhost/keel-test-build';
let base: ExampleImage;
let example: ExampleImage;
let baseDigest = '';
const dirs: string[] = [];

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}
function fixture(files: Record<string, string>, modes: Record<string, number> = {}): string {
  const d = tmpdir('keel-build-fixture-');
  dirs.push(d);
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(d, name)), { recursive: true });
    fs.writeFileSync(path.join(d, name), content, { mode: modes[name] ?? 0o644 });
  }
  return d;
}
/** Reads a file from a local image through a mounted working container. */
function readFromImage(image: string, file: string): string {
  const name = `keel-test-build-read-${crypto.randomUUID().slice(0, 8)}`;
  sh('buildah', ['from', '--pull=never', '--name', name, image]);
  try {
    const mnt = sh('buildah', ['mount', name]).trim();
    return fs.readFileSync(path.join(mnt, file), 'utf8');
  } finally {
    spawnSync('buildah', ['umount', name]);
    spawnSync('buildah', ['rm', name]);
  }
}
function inspect(ref: string): { labels: Record<string, string>; annotations: Record<string, string> } {
  const j = JSON.parse(sh('buildah', ['inspect', '--type', 'image', ref])) as {
    OCIv1: { config?: { Labels?: Record<string, string> } };
    ImageAnnotations?: Record<string, string> | null;
  };
  return { labels: j.OCIv1.config?.Labels ?? {}, annotations: j.ImageAnnotations ?? {} };
}
const labelsOf = (ref: string) => inspect(ref).labels;
/** Whether every RUN step buildah announced was answered from its layer cache. */
function runStepsCached(stdout: string): boolean[] {
  const lines = stdout.split('\n');
  const out: boolean[] = [];
  lines.forEach((l, i) => {
    if (/STEP \d+\/\d+: RUN /.test(l)) out.push(/^--> Using cache /.test(lines[i + 1] ?? ''));
  });
  return out;
}
/** Every output line a user would see, without the runner's own mask commands. */
const visible = (r: { stdout: string; stderr: string }) => `${r.stdout.replace(/^::add-mask::.*$/gm, '')}\n${r.stderr}`;

beforeAll(
  async () => {
    base = await ensureBaseImage({ oci: false });
    // Warms buildah's layer cache with the same inputs the first test builds.
    example = await ensureExampleImage({ oci: false });
    baseDigest = sh('buildah', ['inspect', '--type', 'image', '--format', '{{.FromImageDigest}}', base.imageId]).trim();
  },
  40 * 60 * 1000,
);

afterAll(() => {
  // The images this file made: its tags, and the registry base buildah pulled (untagged, by digest).
  const out = spawnSync('buildah', ['images', '--format', '{{.Name}}:{{.Tag}} {{.ID}}'], { encoding: 'utf8' }).stdout;
  for (const line of out.split('\n')) {
    const [ref, id] = line.trim().split(/\s+/);
    if (ref?.startsWith(PREFIX) || ref?.includes('/keel-test-build/tiny'))
      spawnSync('buildah', ['rmi', '-f', id ?? ref!]);
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('build (bundled, real buildah)', () => {
  it(
    'builds the example distro from the declarations: outputs, labels and the pinned base',
    async () => {
      const r = await runAction({
        action: 'build',
        inputs: { image: `${PREFIX}:example`, 'release-date': '20250102' },
        env: { GITHUB_REPOSITORY: 'keel-project/keel', GITHUB_SHA: 'f'.repeat(40) },
        cwd: repoRoot,
      });
      expect(errors(r)).toEqual([]);
      expect(r.code).toBe(0);
      expect(r.outputs['image-id']).toMatch(/^[0-9a-f]{64}$/);
      expect(r.outputs['local-ref']).toBe(`containers-storage:${PREFIX}:example`);
      expect(r.outputs['kernel-version']).toBe(example.kernelVersion);
      expect(r.outputs['release-date']).toBe('20250102');
      expect(r.outputs['version']).toBe(`${decl.tags.candidate}.20250102`);
      expect(r.outputs['base-digest']).toBe(baseDigest);
      expect(r.outputs['base-image-ref']).toBe(`localhost/keel-os-base@${baseDigest}`);

      const labels = JSON.parse(r.outputs.labels!) as Record<string, string>;
      // The output is what the image carries, read back from it.
      expect(labels).toEqual(labelsOf(`${PREFIX}:example`));
      expect(labels).toMatchObject({
        'containers.bootc': '1',
        'ostree.linux': example.kernelVersion,
        'org.opencontainers.image.base.name': decl.base.image,
        'org.opencontainers.image.base.digest': baseDigest,
        'org.opencontainers.image.version': `${decl.tags.candidate}.20250102`,
        'org.opencontainers.image.revision': 'f'.repeat(40),
        'org.opencontainers.image.source': 'https://github.com/keel-project/keel',
        'org.opencontainers.image.title': decl.image.title,
        'org.opencontainers.image.description': decl.image.description,
        'org.opencontainers.image.vendor': decl.image.vendor,
        'org.opencontainers.image.licenses': decl.image.licenses,
        'org.opencontainers.image.created': r.outputs.created,
      });
      // The build stamp inside the image carries the same single creation time.
      expect(readFromImage(r.outputs['image-id']!, 'usr/lib/keel/image-info.env')).toContain(
        `IMAGE_CREATED=${r.outputs.created}\n`,
      );
      // The manifest annotations agree with the labels about the base.
      const ann = inspect(`${PREFIX}:example`).annotations;
      expect(ann['org.opencontainers.image.base.digest']).toBe(baseDigest);
      expect(r.summary).toContain(example.kernelVersion);
      expect(r.summary).toContain(baseDigest);
    },
    20 * 60 * 1000,
  );

  it(
    'keeps secrets out of every layer, the config, the log and the argv, while the RUN could read them',
    async () => {
      const fileSecret = `file-secret-${crypto.randomBytes(16).toString('hex')}`;
      const envSecret = `env-secret-${crypto.randomBytes(16).toString('hex')}`;
      const dir = fixture({
        Containerfile: [
          'ARG BASE_IMAGE',
          'FROM ${BASE_IMAGE}',
          // Proves the secrets were there (their hashes land in the image), and prints them to the
          // build log on purpose: the action must redact them.
          'RUN --mount=type=secret,id=filetok --mount=type=secret,id=envtok \\',
          "    sha256sum /run/secrets/filetok /run/secrets/envtok | cut -d' ' -f1 > /usr/share/keel-secret-proof && \\",
          '    echo "leak attempt: $(cat /run/secrets/filetok) $(cat /run/secrets/envtok)"',
          '',
        ].join('\n'),
        'secret.txt': fileSecret,
      });
      const r = await runAction({
        action: 'build',
        inputs: {
          image: `${PREFIX}:secrets`,
          'base-image': decl.base.image,
          secrets: `filetok=${path.join(dir, 'secret.txt')}\nenvtok=env:KEEL_TEST_BUILD_SECRET`,
        },
        env: { KEEL_TEST_BUILD_SECRET: envSecret },
        cwd: dir,
      });
      expect(errors(r)).toEqual([]);
      expect(r.code).toBe(0);
      const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
      expect(readFromImage(`${PREFIX}:secrets`, 'usr/share/keel-secret-proof')).toBe(
        `${sha(fileSecret)}\n${sha(envSecret)}\n`,
      );

      // Log and argv: the echoed buildah command line and the RUN's own output are in stdout.
      expect(r.masked).toEqual(expect.arrayContaining([fileSecret, envSecret]));
      expect(r.stdout).toMatch(/leak attempt: \*\*\* \*\*\*/);
      expect(r.stdout).toMatch(/--secret id=filetok,src=\S+secret\.txt --secret id=envtok,env=KEEL_TEST_BUILD_SECRET/);
      for (const s of [fileSecret, envSecret]) expect(visible(r).includes(s)).toBe(false);

      // Every blob of the image (layers decompressed, config, manifest).
      const oci = tmpdir('keel-build-secrets-oci-');
      dirs.push(oci);
      sh('skopeo', ['copy', '-q', `containers-storage:${r.outputs['image-id']}`, `oci:${oci}:x`]);
      const blobs = fs.readdirSync(path.join(oci, 'blobs', 'sha256'));
      expect(blobs.length).toBeGreaterThanOrEqual(4);
      for (const b of blobs) {
        let data = fs.readFileSync(path.join(oci, 'blobs', 'sha256', b));
        if (data[0] === 0x1f && data[1] === 0x8b) data = zlib.gunzipSync(data);
        for (const s of [fileSecret, envSecret]) expect([b, data.includes(Buffer.from(s))]).toEqual([b, false]);
      }
    },
    20 * 60 * 1000,
  );

  it(
    'computes ostree.linux from the built image, never inheriting the base label',
    async () => {
      const dir = fixture({
        Containerfile:
          'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN mv /usr/lib/modules/* /usr/lib/modules/9.9.9-keel-test\n',
      });
      const r = await runAction({
        action: 'build',
        inputs: { image: `${PREFIX}:kernel`, 'base-image': decl.base.image },
        cwd: dir,
      });
      expect(errors(r)).toEqual([]);
      expect(base.labels['ostree.linux']).toBe(example.kernelVersion);
      expect(r.outputs['kernel-version']).toBe('9.9.9-keel-test');
      expect(labelsOf(`${PREFIX}:kernel`)['ostree.linux']).toBe('9.9.9-keel-test');
    },
    20 * 60 * 1000,
  );

  it(
    'fails on a second kernel directory, naming both, and still reports the image it built',
    async () => {
      const dir = fixture({
        Containerfile: 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN mkdir /usr/lib/modules/0.0.0-stray\n',
      });
      const r = await runAction({
        action: 'build',
        inputs: { image: `${PREFIX}:twokernels`, 'base-image': decl.base.image },
        cwd: dir,
      });
      expect(r.code).toBe(1);
      expect(errors(r)).toEqual([
        `the built image has 2 kernel directories under /usr/lib/modules (0.0.0-stray, ${example.kernelVersion}): a bootc image ships exactly one`,
      ]);
      expect(r.outputs['image-id']).toMatch(/^[0-9a-f]{64}$/);
      expect(r.outputs['local-ref']).toBeUndefined();
      expect(r.outputs['base-digest']).toBe(baseDigest);
      expect(r.summary).toContain('build — failed');
      spawnSync('buildah', ['rmi', r.outputs['image-id']!]);
    },
    20 * 60 * 1000,
  );

  it(
    'FROM ${BASE_IMAGE} contract: a literal FROM fails before building; an image built from elsewhere fails on its layers',
    async () => {
      const literal = fixture({ Containerfile: `ARG BASE_IMAGE\nFROM ${decl.base.image}\nRUN true\n` });
      const r1 = await runAction({
        action: 'build',
        inputs: { image: `${PREFIX}:literal`, 'base-image': decl.base.image },
        cwd: literal,
      });
      expect(r1.code).toBe(1);
      expect(errors(r1)).toEqual([
        expect.stringMatching(
          new RegExp(
            `^Containerfile:2: the final stage starts "FROM ${decl.base.image}", which ignores the pinned base .*@sha256:[0-9a-f]{64}`,
          ),
        ),
      ]);
      expect(r1.outputs['image-id']).toBeUndefined();
      // Through another variable the build runs (from scratch here); its layers give it away.
      const other = fixture({ Containerfile: 'ARG OTHER=scratch\nFROM ${OTHER}\nCOPY f /f\n', f: 'x' });
      const r2 = await runAction({
        action: 'build',
        inputs: { image: `${PREFIX}:other`, 'base-image': decl.base.image },
        cwd: other,
      });
      expect(r2.code).toBe(1);
      expect(errors(r2)).toEqual([
        expect.stringMatching(
          /^Containerfile:2 \("FROM \$\{OTHER\}"\): the built image's layers do not start with the pinned base .*'s \d+ layer\(s\), so it was not built FROM it/,
        ),
      ]);
      expect(r2.outputs['local-ref']).toBeUndefined();
      if (r2.outputs['image-id']) spawnSync('buildah', ['rmi', r2.outputs['image-id']]);
    },
    20 * 60 * 1000,
  );

  it(
    'reruns a bind-mounted build script after it changes (build-inputs digest), and reuses the cache when not',
    async () => {
      const dir = fixture(
        {
          'declarations/distro.yaml': [
            'version: 1',
            'image: { registry: ghcr.io/keel-test, name: keel-test-build, title: T, description: D, vendor: V }',
            'os: { id: keel-test, name: Keel Test, pretty-name: Keel Test }',
            `base: { image: ${decl.base.image} }`,
            'tags: { candidate: inputs, stable: stable }',
            'build: { inputs: [Containerfile, scripts/**] }',
            '',
          ].join('\n'),
          Containerfile: [
            'ARG BASE_IMAGE',
            'FROM scratch AS ctx',
            'COPY scripts /',
            'FROM ${BASE_IMAGE}',
            'ARG BUILD_INPUTS_DIGEST',
            'RUN --mount=type=bind,from=ctx,source=/,target=/ctx,ro /ctx/make.sh',
            '',
          ].join('\n'),
          // A unique comment: this run's first build cannot find a cached layer of an earlier run.
          'scripts/make.sh': `#!/bin/sh\n# ${crypto.randomUUID()}\necho v1 > /usr/share/keel-test-version\n`,
        },
        { 'scripts/make.sh': 0o755 },
      );
      const build = () => runAction({ action: 'build', inputs: {}, cwd: dir });
      const r1 = await build();
      expect(errors(r1)).toEqual([]);
      expect(r1.outputs['local-ref']).toBe(`containers-storage:${PREFIX}:inputs`);
      expect(readFromImage(`${PREFIX}:inputs`, 'usr/share/keel-test-version')).toBe('v1\n');

      // Pass 1 ran the script, pass 2 (the ostree.linux label) reused it.
      expect(runStepsCached(r1.stdout)).toEqual([false, true]);
      const again = await build();
      expect(runStepsCached(again.stdout)).toEqual([true, true]);

      fs.writeFileSync(path.join(dir, 'scripts/make.sh'), '#!/bin/sh\necho v2 > /usr/share/keel-test-version\n', {
        mode: 0o755,
      });
      const r2 = await build();
      expect(errors(r2)).toEqual([]);
      expect(runStepsCached(r2.stdout)).toEqual([false, true]);
      expect(readFromImage(`${PREFIX}:inputs`, 'usr/share/keel-test-version')).toBe('v2\n');
    },
    20 * 60 * 1000,
  );

  describe('with a registry base', () => {
    let reg: Registry;
    let digest = '';
    beforeAll(async () => {
      reg = await startRegistry({ htpasswd: { username: 'keel', password: 'b4se-pw-secret' } });
      // A tiny base with a (fake) kernel and a stale ostree.linux label, made by buildah so it
      // carries a history, pushed with credentials, then removed locally: the build must pull it.
      const files = tmpdir('keel-build-tiny-');
      dirs.push(files);
      fs.mkdirSync(path.join(files, 'usr/lib/modules/9.8.7-tiny'), { recursive: true });
      fs.writeFileSync(path.join(files, 'usr/lib/modules/9.8.7-tiny/vmlinuz'), 'not really a kernel');
      const ctr = sh('buildah', ['from', 'scratch']).trim();
      sh('buildah', ['copy', ctr, path.join(files, 'usr'), '/usr']);
      sh('buildah', ['config', '--label', 'ostree.linux=inherited-old', ctr]);
      sh('buildah', ['commit', '-q', '--rm', ctr, `${PREFIX}-tinybase:1`]);
      const df = path.join(files, 'pushed.digest');
      sh('skopeo', [
        'copy',
        '-q',
        '--dest-tls-verify=false',
        '--dest-creds',
        'keel:b4se-pw-secret',
        '--digestfile',
        df,
        `containers-storage:${PREFIX}-tinybase:1`,
        `docker://${reg.host}/keel-test-build/tiny:1`,
      ]);
      sh('buildah', ['rmi', `${PREFIX}-tinybase:1`]);
      digest = fs.readFileSync(df, 'utf8').trim();
    });
    afterAll(async () => {
      await reg.stop();
    });

    it(
      'resolves it once through the registry with the given credentials, builds FROM that digest, never shows the password',
      async () => {
        const dir = fixture({ Containerfile: 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nLABEL fixture=tiny\n' });
        const r = await runAction({
          action: 'build',
          inputs: {
            image: `${PREFIX}:tiny`,
            'base-image': `${reg.host}/keel-test-build/tiny:1`,
            username: 'keel',
            password: 'b4se-pw-secret',
            'tls-verify': 'false',
          },
          cwd: dir,
        });
        expect(errors(r)).toEqual([]);
        expect(r.outputs['base-digest']).toBe(digest);
        expect(r.outputs['base-image-ref']).toBe(`${reg.host}/keel-test-build/tiny@${digest}`);
        expect(r.outputs['kernel-version']).toBe('9.8.7-tiny');
        const labels = labelsOf(`${PREFIX}:tiny`);
        expect(labels['org.opencontainers.image.base.digest']).toBe(digest);
        expect(labels['org.opencontainers.image.base.name']).toBe(`${reg.host}/keel-test-build/tiny:1`);
        expect(labels['ostree.linux']).toBe('9.8.7-tiny');
        expect(r.stdout).toContain(`BASE_IMAGE=${reg.host}/keel-test-build/tiny@${digest}`);
        expect(r.masked).toContain('b4se-pw-secret');
        expect(visible(r)).not.toContain('b4se-pw-secret');
        // The temporary auth file is gone.
        expect(fs.readdirSync(dir).filter((f) => f.includes('auth'))).toEqual([]);
      },
      10 * 60 * 1000,
    );

    it('fails at once when the registry refuses the credentials, before building', async () => {
      const dir = fixture({ Containerfile: 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n' });
      const r = await runAction({
        action: 'build',
        inputs: {
          image: `${PREFIX}:denied`,
          'base-image': `${reg.host}/keel-test-build/tiny:1`,
          username: 'keel',
          password: 'wrong',
          'tls-verify': 'false',
        },
        cwd: dir,
      });
      expect(r.code).toBe(1);
      expect(errors(r).join('\n')).toMatch(/authentication failed/);
      expect(r.stdout).not.toContain('pass 1: build');
    });
  });

  describe('refuses bad input before any side effect, naming the input', () => {
    const cases: [string, Record<string, string>, RegExp | string][] = [
      [
        'isolation',
        { isolation: 'docker' },
        `Input 'isolation' has value "docker": expected one of: chroot, oci, rootless`,
      ],
      [
        'secrets',
        { secrets: 'tok=/nonexistent/keel-secret' },
        `Input 'secrets' has value "tok=/nonexistent/keel-secret": item "tok=/nonexistent/keel-secret": secret file /nonexistent/keel-secret does not exist`,
      ],
      [
        'secrets env',
        { secrets: 'tok=env:KEEL_TEST_UNSET_VAR' },
        /environment variable KEEL_TEST_UNSET_VAR is not set/,
      ],
      [
        'labels',
        { labels: 'ostree.linux=1.0' },
        /^Input 'labels' has value "ostree\.linux=1\.0": ostree\.linux is set by the build itself/,
      ],
      [
        'build-args',
        { 'build-args': 'BASE_IMAGE=evil/base:1' },
        /^Input 'build-args' has value "BASE_IMAGE=evil\/base:1": BASE_IMAGE is set from the base-image input/,
      ],
      [
        'release-date',
        { 'release-date': '2025-01-02' },
        `Input 'release-date' has value "2025-01-02": expected a UTC date YYYYMMDD (a real calendar day)`,
      ],
      [
        'base-image',
        { 'base-image': 'localhost/keel-test-build-nonexistent:1' },
        /base image localhost\/keel-test-build-nonexistent:1 is not in local containers-storage/,
      ],
      [
        'containerfile',
        { containerfile: 'Nope.containerfile' },
        `Input 'containerfile' has value "Nope.containerfile": expected an existing file`,
      ],
    ];
    it.each(cases)('%s', async (_name, inputs, message) => {
      const dir = fixture({ Containerfile: 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n' });
      const r = await runAction({
        action: 'build',
        inputs: { image: `${PREFIX}:bad`, 'base-image': decl.base.image, ...inputs },
        cwd: dir,
      });
      expect(r.code).toBe(1);
      const errs = errors(r);
      expect(errs).toHaveLength(1);
      if (typeof message === 'string') expect(errs[0]).toBe(message);
      else expect(errs[0]).toMatch(message);
      expect(r.stdout).not.toContain('pass 1: build');
    });
  });
});
