import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { processRunner } from '../../actions/lib/exec.js';
import { OciLayout } from '../../actions/lib/oci/layout.js';
import { MT } from '../../actions/lib/oci/media.js';

export const runner = processRunner();

/** Runs a command synchronously (argv, no shell) and returns stdout; throws with stderr on failure. */
export function sh(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): string {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    input: opts.input,
    env: { ...process.env, ...(opts.env ?? {}) },
    cwd: opts.cwd,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export function tmpdir(prefix = 'keel-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** `skopeo inspect` digest of a registry image (the independent reference). */
export function skopeoDigest(ref: string): string {
  return sh('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${ref}`]).trim();
}

/** A deterministic tar with the given files (GNU tar, fixed mtime/owner, sorted). */
export function makeTar(files: Record<string, string | Buffer>): Buffer {
  const dir = tmpdir('keel-tar-');
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  const out = spawnSync(
    'tar',
    ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', dir, '-cf', '-', '.'],
    { maxBuffer: 1024 * 1024 * 1024 },
  );
  fs.rmSync(dir, { recursive: true, force: true });
  if (out.status !== 0) throw new Error(`tar failed: ${out.stderr}`);
  return out.stdout;
}

/**
 * Writes a small single-image OCI layout: `layers` become gzip layers, plus a config with the
 * given labels. Returns the layout dir and the manifest digest.
 */
export function makeOciImage(
  dir: string,
  opts: {
    tag?: string;
    layers?: (Record<string, string | Buffer> | Buffer)[];
    labels?: Record<string, string>;
    randomBytes?: number;
    created?: string;
  } = {},
): { dir: string; digest: string; manifest: Buffer } {
  const layout = OciLayout.create(dir);
  const layers: (Record<string, string | Buffer> | Buffer)[] = opts.layers ?? [
    { 'hello.txt': `hello ${crypto.randomUUID()}` },
  ];
  if (opts.randomBytes) layers.push({ 'random.bin': crypto.randomBytes(opts.randomBytes) });
  const descs = [];
  const diffIds = [];
  for (const files of layers) {
    // A Buffer is a ready tar (xattrs, hardlinks, devices); a record is a set of plain files.
    const tar = Buffer.isBuffer(files) ? files : makeTar(files);
    diffIds.push(`sha256:${crypto.createHash('sha256').update(tar).digest('hex')}`);
    const gz = zlib.gzipSync(tar, { level: 1 });
    const d = layout.writeBlob(gz);
    descs.push({ mediaType: MT.ociLayerGzip, digest: d.digest, size: d.size });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      ...(opts.created ? { created: opts.created } : {}),
      config: { Labels: opts.labels ?? {} },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const c = layout.writeBlob(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: c.digest, size: c.size },
      layers: descs,
    }),
  );
  const m = layout.writeBlob(manifest);
  layout.setRef(opts.tag ?? 'latest', { mediaType: MT.ociManifest, digest: m.digest, size: m.size });
  return { dir, digest: m.digest, manifest };
}

/** Pushes an OCI layout image to a registry with skopeo (the independent writer). */
export function skopeoPush(ociRef: string, dest: string): string {
  const dir = tmpdir('keel-digest-');
  const df = path.join(dir, 'digest');
  sh('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--digestfile', df, ociRef, `docker://${dest}`]);
  const d = fs.readFileSync(df, 'utf8').trim();
  fs.rmSync(dir, { recursive: true, force: true });
  return d;
}

/** A tar of a directory as GNU tar writes it (PAX, xattrs incl. capabilities, numeric owners). */
export function tarDir(dir: string): Buffer {
  const out = spawnSync(
    'tar',
    ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner', '--sort=name', '-C', dir, '-cf', '-', '.'],
    {
      maxBuffer: 1024 * 1024 * 1024,
    },
  );
  if (out.status !== 0) throw new Error(`tar failed: ${out.stderr}`);
  return out.stdout;
}

/**
 * A new image = the image at `src` (an OCI layout) plus one layer (a tar, e.g. from tarDir),
 * written as a separate layout (blobs hard-linked, not copied). Whiteouts in the tar apply.
 */
export function derivedImage(src: string, srcTag: string, layerTar: Buffer, labels?: Record<string, string>): string {
  const dest = tmpdir('keel-derived-');
  spawnSync('cp', ['-al', path.join(src, 'blobs'), path.join(dest, 'blobs')]);
  const from = OciLayout.open(src);
  const layout = OciLayout.create(dest);
  const m = JSON.parse(from.readBlob(from.resolve(srcTag).digest).toString());
  const cfg = JSON.parse(from.readBlob(m.config.digest).toString());
  const gz = zlib.gzipSync(layerTar, { level: 1 });
  const l = layout.writeBlob(gz);
  cfg.rootfs.diff_ids.push(`sha256:${crypto.createHash('sha256').update(layerTar).digest('hex')}`);
  if (labels) cfg.config = { ...(cfg.config ?? {}), Labels: { ...(cfg.config?.Labels ?? {}), ...labels } };
  const c = layout.writeBlob(JSON.stringify(cfg));
  m.config = { ...m.config, digest: c.digest, size: c.size };
  m.layers.push({ mediaType: MT.ociLayerGzip, digest: l.digest, size: l.size });
  const md = layout.writeBlob(JSON.stringify(m));
  layout.setRef('latest', { mediaType: MT.ociManifest, digest: md.digest, size: md.size });
  return `oci:${dest}:latest`;
}

/** Command lines of live processes containing `needle` (to prove nothing was left running). */
export function processesMatching(needle: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle) && Number(pid) !== process.pid) out.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      /* exited */
    }
  }
  return out;
}
