// bench/rechunk — how much a client downloads for a one-package update, with and without Keel's
// rechunker. The example distro is built twice: v1 as declared, v2 on a base with one more
// package (jq, with its libraries). For (a) the images as buildah built them and (b) Keel
// rechunk with previous-image = the rechunked v1, it prints the bytes a client downloads (v2
// layers absent from v1), the ideal (the compressed size of the files that actually changed),
// and the ratio to the ideal. Also the rechunk time and peak memory on the example image.
// Run: npm run bench:rechunk   (prints; asserts nothing; builds images: root, a few minutes)
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { bootstrapArgs } from '../../actions/build/src/base-bootstrap.js';
import { loadDeclarations } from '../../actions/lib/declarations.js';
import { OciLayout } from '../../actions/lib/oci/layout.js';
import { ImageManifestSchema } from '../../actions/lib/oci/media.js';
import { LayeredRootfs } from '../../actions/lib/rootfs/layered.js';
import { writeTar, type WriteEntry } from '../../actions/lib/tar/writer.js';
import { inputEnvName, repoRoot, runStep } from '../../cli/step.js';
import { ensureExampleImage } from '../../test/harness/example-image.js';
import { sh, tmpdir } from '../../test/harness/tools.js';

const EXTRA = process.env.KEEL_BENCH_PACKAGE ?? 'jq';
const mb = (n: number) => `${(n / 1048576).toFixed(2)} MiB`;

function layoutOf(ref: string): { layout: OciLayout; layers: { digest: string; size: number }[] } {
  const [, dir, tag] = /^oci:(.*):([^:/]+)$/.exec(ref)!;
  const layout = OciLayout.open(dir!);
  const m = ImageManifestSchema.parse(JSON.parse(layout.readBlob(layout.resolve(tag).digest).toString()));
  return { layout, layers: m.layers.map((l) => ({ digest: l.digest, size: l.size })) };
}

/** path → fingerprint (type, mode, owner, content hash) of an image's final filesystem. */
async function fingerprints(
  ref: string,
): Promise<Map<string, { fp: string; entry: WriteEntry['header']; content?: Buffer }>> {
  const { layout, layers } = layoutOf(ref);
  const fs2 = new LayeredRootfs(
    layers.map((l) => ({ digest: l.digest, compression: 'gzip' as const, open: () => layout.openBlob(l.digest) })),
  );
  const out = new Map<string, { fp: string; entry: WriteEntry['header']; content?: Buffer }>();
  for await (const { entry, body } of fs2.flatten()) {
    let content: Buffer | undefined;
    if (body) {
      const parts: Buffer[] = [];
      for await (const c of body) parts.push(c);
      content = Buffer.concat(parts);
    }
    const h = content ? crypto.createHash('sha256').update(content).digest('hex') : '';
    out.set(entry.path, {
      fp: [entry.type, entry.mode, entry.uid, entry.gid, entry.linkname, h].join('|'),
      entry,
      content,
    });
  }
  return out;
}

/** The ideal update: the changed and new files of v2, as one gzip tar (what any delivery must carry). */
async function idealBytes(v1: string, v2: string): Promise<{ bytes: number; files: number }> {
  const a = await fingerprints(v1);
  const b = await fingerprints(v2);
  const changed: WriteEntry[] = [];
  for (const [p, e] of b) {
    if (a.get(p)?.fp === e.fp) continue;
    changed.push({ header: { ...e.entry, mtime: 0 }, body: e.content });
  }
  const chunks: Buffer[] = [];
  for await (const c of writeTar(changed)) chunks.push(c);
  return { bytes: zlib.gzipSync(Buffer.concat(chunks), { level: 6 }).length, files: changed.length };
}

const download = (v1: string, v2: string) => {
  const have = new Set(layoutOf(v1).layers.map((l) => l.digest));
  return layoutOf(v2)
    .layers.filter((l) => !have.has(l.digest))
    .reduce((n, l) => n + l.size, 0);
};

async function rechunk(
  image: string,
  out: string,
  previous?: string,
): Promise<{ ref: string; seconds: number; rssMiB: number; report: Record<string, unknown> }> {
  const temp = tmpdir('keel-bench-rc-');
  const inputs: Record<string, string> = {
    image,
    output: out,
    'max-layers': String(decl.rechunk['max-layers']),
    ...(previous ? { 'previous-image': previous } : {}),
  };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RUNNER_TEMP: temp,
    GITHUB_OUTPUT: path.join(temp, 'out'),
    GITHUB_STEP_SUMMARY: path.join(temp, 'sum'),
  };
  for (const [k, v] of Object.entries(inputs)) env[inputEnvName(k)] = v;
  fs.writeFileSync(env.GITHUB_OUTPUT!, '');
  fs.writeFileSync(env.GITHUB_STEP_SUMMARY!, '');
  const r = spawnSync(
    '/usr/bin/time',
    ['-f', '%M %e', process.execPath, path.join(repoRoot, 'dist/rechunk/index.js')],
    { env, encoding: 'utf8', maxBuffer: 1 << 28 },
  );
  if (r.status !== 0) throw new Error(`rechunk failed: ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
  const [rss, secs] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
  const report = JSON.parse(fs.readFileSync(path.join(temp, 'keel-rechunk-report.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  return { ref: `oci:${out}:keel`, seconds: secs!, rssMiB: rss! / 1024, report };
}

const decl = loadDeclarations(path.join(repoRoot, 'declarations/distro.yaml'));
console.log(`bench/rechunk — example distro, v2 adds '${EXTRA}'; rechunk max-layers ${decl.rechunk['max-layers']}`);
const v1 = await ensureExampleImage({ oci: true });

// v2: the same build on a base with one more package.
const base2 = 'localhost/keel-os-base:bench-plus';
const args = bootstrapArgs({ ...decl, base: { ...decl.base, image: base2 } })!;
console.log(`building base + ${EXTRA} and v2 …`);
sh('bash', [path.join(repoRoot, 'build_files/base/bootstrap.sh'), ...args, '--package', EXTRA]);
const v2name = 'localhost/keel-os:bench-plus';
const b = await runStep({
  action: 'build',
  inputs: { 'base-image': base2, image: v2name, 'release-date': '20261122' },
});
if (b.code !== 0) throw new Error(`build failed: ${b.stdout.slice(-3000)}`);
const v2dir = tmpdir('keel-bench-v2-');
sh('skopeo', ['copy', '-q', `containers-storage:${v2name}`, `oci:${v2dir}:latest`]);
const v2 = `oci:${v2dir}:latest`;

const ideal = await idealBytes(v1.ociRef, v2);
const plain = download(v1.ociRef, v2);
const r1 = await rechunk(v1.ociRef, tmpdir('keel-bench-r1-'));
const r2 = await rechunk(v2, tmpdir('keel-bench-r2-'), r1.ref);
const rc = (r2.report.update as {
  downloadBytes: number;
  reusedLayers: number;
  newLayers: number;
  totalBytes: number;
}) ?? { downloadBytes: NaN };

const total = (ref: string) => layoutOf(ref).layers.reduce((n, l) => n + l.size, 0);
console.log(
  `\nfiles that changed between v1 and v2: ${ideal.files}; ideal update (those files, gzip): ${mb(ideal.bytes)}\n`,
);
const rows = [
  ['(a) as built (buildah layers)', mb(total(v2)), mb(plain), (plain / ideal.bytes).toFixed(1)],
  [
    `(b) Keel rechunk, previous = v1 (${rc.reusedLayers} of ${rc.reusedLayers + rc.newLayers} layers reused)`,
    mb(rc.totalBytes),
    mb(rc.downloadBytes),
    (rc.downloadBytes / ideal.bytes).toFixed(1),
  ],
];
const header = ['image', 'size', 'client downloads', 'ratio to ideal'];
const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
for (const r of [header, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i]!)).join('  '));
console.log(
  `\nrechunk of the example image (v1, fresh plan): ${r1.seconds.toFixed(1)} s, peak RSS ${r1.rssMiB.toFixed(0)} MiB; v2 with previous plan: ${r2.seconds.toFixed(1)} s, peak RSS ${r2.rssMiB.toFixed(0)} MiB`,
);
