// bench/sbom — what the sbom action costs against the package tools reading the same databases.
// For the example distro image: the bundled sbom action (CycloneDX + SPDX, read from the OCI
// layout's compressed layers, nothing unpacked) against `dpkg-query -W` on the image's rootfs
// mounted read-only by podman (the mount itself not counted). For an rpm database built with
// rpmbuild: the action against `rpm -qa`. Median of KEEL_BENCH_RUNS (default 3) runs each: wall
// time and peak RSS (GNU time), side by side with ratios. Prints; asserts nothing.
// Run: npm run bench:sbom   (root: builds the example image when stale, mounts it with podman)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { inputEnvName, repoRoot } from '../../cli/step.js';
import { ensureExampleImage } from '../../test/harness/example-image.js';
import { makeOciImage, sh, tarDir, tmpdir } from '../../test/harness/tools.js';

const RUNS = Number(process.env.KEEL_BENCH_RUNS ?? 3);

interface Sample {
  seconds: number;
  rssMiB: number;
}

/** Runs argv under GNU time: wall seconds (measured here, to the microsecond) and peak RSS. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Sample {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'KEEL_TIME %M', cmd, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = /KEEL_TIME (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-1500)}`);
  return { seconds, rssMiB: Number(m[1]) / 1024 };
}

function median(samples: Sample[]): Sample {
  const mid = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { seconds: mid(samples.map((s) => s.seconds)), rssMiB: mid(samples.map((s) => s.rssMiB)) };
}

function repeat(fn: () => Sample): Sample {
  return median(Array.from({ length: RUNS }, fn));
}

/** The bundled action, run the runner's way (INPUT_* variables, GITHUB_OUTPUT file). */
function sbomAction(imageRef: string, work: string): Sample {
  const out = path.join(work, 'github-output');
  fs.writeFileSync(out, '');
  return timed(process.execPath, [path.join(repoRoot, 'dist', 'sbom', 'index.js')], {
    [inputEnvName('image-ref')]: imageRef,
    [inputEnvName('formats')]: 'cyclonedx\nspdx',
    [inputEnvName('output-dir')]: path.join(work, 'sbom-out'),
    [inputEnvName('tls-verify')]: 'true',
    GITHUB_OUTPUT: out,
    RUNNER_TEMP: work,
    GITHUB_WORKSPACE: work,
  });
}

/** The rechunk test's kind of rpm database: one package, registered with rpm --justdb. */
function rpmImage(work: string): string {
  fs.mkdirSync(path.join(work, 'rpmbuild/SPECS'), { recursive: true });
  const spec = path.join(work, 'rpmbuild/SPECS/bench.spec');
  fs.writeFileSync(
    spec,
    [
      'Name: keel-bench',
      'Version: 1.0',
      'Release: 1',
      'Summary: bench',
      'License: MIT',
      'BuildArch: noarch',
      '%description',
      'bench',
      '%install',
      'mkdir -p %{buildroot}/usr/share/keel-bench',
      'echo x > %{buildroot}/usr/share/keel-bench/x',
      '%files',
      '/usr/share/keel-bench/x',
      '',
    ].join('\n'),
  );
  sh('rpmbuild', ['--quiet', '--define', `_topdir ${work}/rpmbuild`, '-bb', spec]);
  const root = path.join(work, 'root');
  sh('rpm', ['--root', root, '--dbpath', '/usr/lib/sysimage/rpm', '--initdb']);
  const rpm = path.join(work, 'rpmbuild/RPMS/noarch', fs.readdirSync(path.join(work, 'rpmbuild/RPMS/noarch'))[0]!);
  sh('rpm', ['--root', root, '--dbpath', '/usr/lib/sysimage/rpm', '-i', '--nodeps', '--justdb', rpm]);
  fs.rmSync(path.join(root, 'usr/lib/sysimage/rpm/.rpm.lock'), { force: true });
  return root;
}

function row(what: string, keel: Sample, ref: Sample, refName: string): string[] {
  return [
    what,
    `${keel.seconds.toFixed(2)} s`,
    `${ref.seconds.toFixed(3)} s (${refName})`,
    `${(keel.seconds / ref.seconds).toFixed(0)}x`,
    `${keel.rssMiB.toFixed(0)} MiB`,
    `${ref.rssMiB.toFixed(1)} MiB`,
    `${(keel.rssMiB / ref.rssMiB).toFixed(1)}x`,
  ];
}

async function main() {
  if (!fs.existsSync(path.join(repoRoot, 'dist', 'sbom', 'index.js')))
    throw new Error('no dist/sbom bundle: npm run bundle first');
  const work = tmpdir('keel-bench-sbom-');
  try {
    const example = await ensureExampleImage();
    const keelDeb = repeat(() => sbomAction(example.ociRef, work));
    const mnt = sh('podman', ['image', 'mount', example.name]).trim();
    let dpkg: Sample;
    try {
      dpkg = repeat(() => timed('dpkg-query', [`--admindir=${mnt}/var/lib/dpkg`, '-W']));
    } finally {
      spawnSync('podman', ['image', 'unmount', example.name]);
    }
    const root = rpmImage(path.join(work, 'rpm'));
    const img = makeOciImage(path.join(work, 'rpm-img'), { layers: [tarDir(root)] });
    const keelRpm = repeat(() => sbomAction(`oci:${img.dir}:latest`, work));
    const rpmQa = repeat(() => timed('rpm', ['--dbpath', path.join(root, 'usr/lib/sysimage/rpm'), '-qa']));
    const header = [
      'image',
      'keel sbom time',
      'reference time',
      'time ratio',
      'keel peak RSS',
      'reference peak RSS',
      'RSS ratio',
    ];
    const rows = [
      row(`example (dpkg, ${example.kernelVersion})`, keelDeb, dpkg, 'dpkg-query -W'),
      row('rpm fixture (1 package)', keelRpm, rpmQa, 'rpm -qa'),
    ];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    console.log(`bench/sbom — median of ${RUNS} runs each\n`);
    console.log(line(header));
    for (const r of rows) console.log(line(r));
    console.log(
      '\nkeel sbom reads the compressed layers (index pass + one read pass), parses every database, writes and validates' +
        '\nCycloneDX 1.6 and SPDX 2.3; the references only list an already unpacked database.',
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
