// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { memoryLogger } from '../../actions/lib/log.js';
import { RegistryClient } from '../../actions/lib/oci/client.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { verifyImage } from '../../actions/lib/sign/index.js';
import { parsePublicKeyInput } from '../../actions/lib/signature-gate.js';
import { ensureBaseImage, withLock } from '../harness/example-image.js';
import { startRegistry, type Registry } from '../harness/registry.js';
import { tmpdir } from '../harness/tools.js';
import { cosignVerify, fetchVerifiers } from '../harness/verifiers.js';

/**
 * Adoption end to end, the way a new user goes: Keel packed (`npm pack`) and installed into a
 * temporary prefix (no dependency installed: the package runs its bundles), `keel init` of a
 * Debian-based distro in a directory outside Keel's repository, then `keel run build smoke-boot`
 * there: base (reused from the example's cache: same bootstrap inputs) → build → validate →
 * rechunk → push → sign → boot → promote, into a loopback registry the test runs. The end state
 * is checked independently of the runs: `:stable` is the digest that booted and verifies with the
 * run's key (Keel's verifier and the real cosign), and the project directory holds only what
 * init wrote plus keel's run state (.keel/).
 */
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const scratch: string[] = [];
let registry: Registry | undefined;
afterAll(async () => {
  await registry?.stop();
  for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
  // The names this test gave images in the shared storage (the layers stay: the example uses them).
  const names = spawnSync('buildah', ['images', '--format', '{{.Name}}:{{.Tag}}'], { encoding: 'utf8' }).stdout;
  for (const n of names.split('\n').map((l) => l.trim()))
    if (n.startsWith('localhost/acme-os') || (registry && n.startsWith(`${registry.host}/acme/`)))
      spawnSync('buildah', ['rmi', n]);
});

function run(cmd: string, args: string[], opts: { cwd: string; timeoutMs?: number }) {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd,
    encoding: 'utf8',
    maxBuffer: 1 << 27,
    timeout: opts.timeoutMs ?? 600_000,
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`, s: (Date.now() - t0) / 1000 };
}

function listing(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((p) => !fs.lstatSync(path.join(dir, p)).isDirectory())
    .sort();
}

interface RunJson {
  workflow: string;
  ok: boolean;
  jobs: Record<string, { outputs: Record<string, string> }>;
}

describe('adoption: a downstream distro from the packed CLI', () => {
  let keel = '';
  let packedFiles: string[] = [];
  let exampleBase = '';
  const times: Record<string, number> = {};

  beforeAll(async () => {
    const t0 = Date.now();
    // The example's base, so the downstream's identical bootstrap inputs find it built.
    exampleBase = (await ensureBaseImage({ oci: false })).imageId;
    times['example base (cache)'] = (Date.now() - t0) / 1000;
    const pack = tmpdir('keel-pack-');
    const prefix = tmpdir('keel-prefix-');
    scratch.push(pack, prefix);
    const p = run('npm', ['pack', '--pack-destination', pack], { cwd: root });
    expect([p.status, p.out.slice(-2000)]).toEqual([0, expect.any(String)]);
    const tgz = fs.readdirSync(pack).find((f) => f.endsWith('.tgz'))!;
    packedFiles = spawnSync('tar', ['tzf', path.join(pack, tgz)], { encoding: 'utf8' }).stdout.split('\n');
    const i = run(
      'npm',
      ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', path.join(pack, tgz)],
      {
        cwd: pack,
      },
    );
    expect([i.status, i.out.slice(-2000)]).toEqual([0, expect.any(String)]);
    times['npm pack + install'] = p.s + i.s;
    keel = path.join(prefix, 'bin', 'keel');
    registry = await startRegistry();
  }, 40 * 60_000);

  it('the package holds no sources or tests, and installs no dependency', () => {
    expect(packedFiles).toContain('package/dist/cli/index.js');
    expect(packedFiles).toContain('package/build_files/base/bootstrap.sh');
    expect(
      packedFiles.filter((f) => /^package\/(cli|test|actions\/[^/]+\/src|workflows-src\/.*\.ts$)/.test(f)),
    ).toEqual([]);
    const installed = path.dirname(path.dirname(fs.realpathSync(keel)));
    expect(fs.existsSync(path.join(installed, 'node_modules'))).toBe(false);
  });

  it(
    'keel init --debian, then keel run build smoke-boot: the booted digest is :stable, signed',
    async () => {
      const project = tmpdir('acme-os-');
      scratch.push(project);
      const image = `${registry!.host}/acme/acme-os`;
      const init = run(keel, ['init', '--debian', 'trixie', '--image', image], { cwd: project });
      expect([init.status, init.out.slice(-3000)]).toEqual([0, expect.any(String)]);
      const written = listing(project);
      expect(written).toContain('declarations/distro.yaml');

      // A second init refuses to overwrite, naming the files, and changes nothing.
      const again = run(keel, ['init', '--debian', 'trixie', '--image', image], { cwd: project });
      expect(again.status).toBe(1);
      expect(again.out).toMatch(/already has Containerfile, build_files\/finalize\.sh, declarations\/distro\.yaml/);
      expect(listing(project)).toEqual(written);

      const t0 = Date.now();
      const r = await withLock('vm', async () =>
        run(keel, ['run', 'build', 'smoke-boot', '--registry', registry!.host], {
          cwd: project,
          timeoutMs: 45 * 60_000,
        }),
      );
      times['keel run build smoke-boot'] = (Date.now() - t0) / 1000;
      expect([r.status, r.out.slice(-6000)]).toEqual([0, expect.any(String)]);
      // The base was not bootstrapped a second time: the downstream's base is the example's image.
      const base = spawnSync(
        'buildah',
        ['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'localhost/acme-os-base:trixie'],
        {
          encoding: 'utf8',
        },
      );
      expect(base.stdout.trim()).toBe(exampleBase);

      // Only what init wrote, plus keel's run state.
      const after = listing(project);
      expect(after.filter((f) => !f.startsWith('.keel/'))).toEqual(written);
      expect(after).toContain('.keel/.gitignore');

      // The end state, read from the registry and checked with the run's public key.
      const runs = fs
        .readdirSync(path.join(project, '.keel', 'runs'))
        .map(
          (id) => JSON.parse(fs.readFileSync(path.join(project, '.keel', 'runs', id, 'run.json'), 'utf8')) as RunJson,
        );
      const smoke = runs.find((x) => x.workflow === 'smoke-boot.yml' && x.ok)!;
      const booted = smoke.jobs.boot!.outputs['image-ref']!;
      expect(booted).toMatch(new RegExp(`^${image.replace(/\./g, '\\.')}@sha256:[0-9a-f]{64}$`));
      const stableRef = parseReference(`${image}:stable`);
      const client = new RegistryClient({ registry: stableRef.registry, tlsVerify: false });
      const stable = await client.headManifest(stableRef.repository, 'stable');
      expect(`${image}@${stable?.digest}`).toBe(booted);
      const pub = path.join(project, '.keel', 'keys', 'cosign.pub');
      const sig = await verifyImage(client, stableRef.withDigest(stable!.digest), parsePublicKeyInput(pub).key, {
        identity: { type: 'matchRepository' },
        log: memoryLogger(),
      });
      expect([sig.verified, sig.reason]).toEqual([true, expect.any(String)]);
      const home = tmpdir('cosign-home-');
      scratch.push(home);
      const cosign = cosignVerify(fetchVerifiers().cosign, booted, pub, home);
      expect([cosign.ok, cosign.stderr.slice(-1500)]).toEqual([true, expect.any(String)]);
      process.stderr.write(
        `\nadoption e2e times (s): ${Object.entries(times)
          .map(([k, v]) => `${k} ${v.toFixed(0)}`)
          .join(', ')}\n`,
      );
    },
    60 * 60_000,
  );
});
