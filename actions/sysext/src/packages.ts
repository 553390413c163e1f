import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { onCleanup } from '../../lib/cleanup.js';
import { UserError } from '../../lib/errors.js';
import { asRoot, type CommandRunner } from '../../lib/exec.js';
import type { Logger } from '../../lib/log.js';
import { OciLayout } from '../../lib/oci/layout.js';
import { ImageConfigSchema, ImageManifestSchema, layerCompression, MT } from '../../lib/oci/media.js';
import type { RegistryClient } from '../../lib/oci/client.js';
import type { OpenedImage } from '../../lib/image/open.js';
import type { LayerRef } from '../../lib/rootfs/layered.js';

/**
 * Packages installed on top of the pinned base in a throw-away buildah container (chroot
 * isolation, images in root's containers-storage, sudo when not root). The base enters buildah
 * from an OCI layout of the blobs Keel's own client downloaded and verified, so buildah builds on
 * exactly the digest that was asked for and needs no registry credentials. The container is
 * committed to a second OCI layout; its top layer is the build's whole difference against the
 * base (added and changed files, whiteouts for removals), read like any other image layer.
 */
export interface PackageBuild {
  /** The build's top layer (the difference against the base). */
  layer: LayerRef;
  /** The installed version of the first package (dpkg's spelling). */
  installedVersion: string;
}

/** An OCI layout holding the base under tag `base`, built from already verified blobs (hard links). */
export async function baseLayout(
  image: OpenedImage,
  client: RegistryClient,
  blobFile: (digest: string) => string,
  dir: string,
): Promise<string> {
  const repo = image.ref!.repository;
  const layout = OciLayout.create(dir);
  const manifest = await client.getManifest(repo, image.manifestDigest);
  layout.writeBlob(manifest.body);
  layout.writeBlob(await client.getBlob(repo, image.configDigest));
  for (const l of image.manifest.layers) {
    const dest = layout.blobPath(l.digest);
    if (fs.existsSync(dest)) continue;
    try {
      fs.linkSync(blobFile(l.digest), dest);
    } catch {
      fs.copyFileSync(blobFile(l.digest), dest);
    }
  }
  layout.setRef('base', {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.body.length,
  });
  return dir;
}

/**
 * The install script, fixed: the package list arrives as positional arguments ("$@"), never
 * spliced into the text. Retried fetches; apt sources from /run/keel-sysext-apt/ when given.
 */
const INSTALL_SCRIPT = [
  'set -eu',
  'command -v apt-get >/dev/null 2>&1 || { echo "keel: the base has no apt-get: packages needs a Debian-based base (use source-dir otherwise)" >&2; exit 3; }',
  'opts="-o Acquire::Retries=3 -o Dpkg::Use-Pty=0"',
  'if [ -f /run/keel-sysext-apt/sources.list ]; then',
  '  opts="$opts -o Dir::Etc::SourceList=/run/keel-sysext-apt/sources.list -o Dir::Etc::SourceParts=/run/keel-sysext-apt/sources.list.d"',
  'fi',
  'apt-get $opts update -qq',
  'apt-get $opts install -y -qq --no-install-recommends "$@"',
  'first=$1; first=${first%%=*}; first=${first%%/*}',
  'printf "keel-installed-version\\t%s\\n" "$(dpkg-query -W -f=\'${Version}\' "$first")"',
].join('\n');

export interface PackageRequest {
  baseLayoutDir: string;
  baseLayers: number;
  baseDiffIds: string[];
  packages: string[];
  /** sources.list lines used instead of the base's own (empty: the base's). */
  aptSources: string;
  workDir: string;
  runner: CommandRunner;
  log: Logger;
}

export async function installPackages(req: PackageRequest): Promise<PackageBuild> {
  if (req.workDir.includes(':'))
    throw new UserError(`the work directory ${req.workDir} contains ':' (an OCI layout reference cannot hold it)`);
  const name = `keel-sysext-${crypto.randomUUID().slice(0, 12)}`;
  const buildah = (args: string[]) => asRoot('buildah', args);
  const aptDir = path.join(req.workDir, 'apt');
  fs.mkdirSync(path.join(aptDir, 'sources.list.d'), { recursive: true });
  if (req.aptSources.trim()) fs.writeFileSync(path.join(aptDir, 'sources.list'), `${req.aptSources.trim()}\n`);
  const built = path.join(req.workDir, 'built-oci');
  let version = '';
  // Into root's storage under a name of our own (buildah 1.28 names an image pulled from oci:DIR
  // after DIR, and refuses a directory with upper-case letters); its layers are shared, not copied.
  const baseName = `localhost/${name}-base:latest`;
  const [copyCmd, copyArgs] = asRoot('skopeo', [
    'copy',
    '--quiet',
    `oci:${req.baseLayoutDir}:base`,
    `containers-storage:${baseName}`,
  ]);
  await req.runner.run(copyCmd, copyArgs, { echo: true, timeoutMs: 30 * 60_000 });
  try {
    const [fromCmd, fromArgs] = buildah(['from', '--quiet', '--pull=never', '--name', name, baseName]);
    await req.runner.run(fromCmd, fromArgs, { echo: true, timeoutMs: 30 * 60_000 });
  } catch (e) {
    await removeImage(baseName, req);
    throw e;
  }
  // A cancelled step (SIGINT/SIGTERM) skips the finally below: remove the container and the
  // base's name synchronously then.
  const unregister = onCleanup(() => {
    for (const args of [
      ['rm', name],
      ['rmi', baseName],
    ]) {
      const [cmd, argv] = buildah(args);
      spawnSync(cmd, argv, { stdio: 'ignore', timeout: 30_000 });
    }
  });
  try {
    const [runCmd, runArgs] = buildah([
      'run',
      '--isolation',
      'chroot',
      '--env',
      'DEBIAN_FRONTEND=noninteractive',
      '--env',
      'SOURCE_DATE_EPOCH=0',
      '--volume',
      `${aptDir}:/run/keel-sysext-apt:ro`,
      name,
      '--',
      'sh',
      '-c',
      INSTALL_SCRIPT,
      'sh',
      ...req.packages,
    ]);
    const r = await req.runner.run(runCmd, runArgs, {
      echo: true,
      timeoutMs: 30 * 60_000,
      onStderrLine: (l) => req.log.info(l),
      okCodes: [0, 3, 100],
    });
    const out = r.stdout.toString('utf8');
    for (const l of out.split('\n')) if (l && !l.startsWith('keel-installed-version\t')) req.log.info(l);
    if (r.code === 3) throw new UserError(r.stderr.trim().split('\n').pop() ?? 'the base has no apt-get');
    if (r.code !== 0)
      throw new UserError(
        `installing ${req.packages.join(' ')} failed (apt-get exit ${r.code}${req.aptSources ? '' : '; if the base ships no apt sources, give apt-sources'}):\n${r.stderr.trim().split('\n').slice(-15).join('\n')}`,
      );
    version = /^keel-installed-version\t(.*)$/m.exec(out)?.[1]?.trim() ?? '';
    const [commitCmd, commitArgs] = buildah(['commit', '--quiet', '--format', 'oci', name, `oci:${built}:built`]);
    await req.runner.run(commitCmd, commitArgs, { echo: true, timeoutMs: 30 * 60_000 });
  } finally {
    const [rmCmd, rmArgs] = buildah(['rm', name]);
    await req.runner
      .run(rmCmd, rmArgs)
      .catch((e: unknown) => req.log.warning(`could not remove ${name}: ${String(e)}`));
    await removeImage(baseName, req);
    unregister();
  }
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0)
    await req.runner.run('sudo', ['-n', 'chown', '-R', `${uid}:${process.getgid?.() ?? uid}`, built]);
  return { layer: topLayer(built, req), installedVersion: version };
}

/** Removes the name the base was copied in under (its layers stay while other images use them). */
async function removeImage(ref: string, req: Pick<PackageRequest, 'runner' | 'log'>): Promise<void> {
  const [cmd, args] = asRoot('buildah', ['rmi', ref]);
  await req.runner.run(cmd, args).catch((e: unknown) => req.log.warning(`could not remove ${ref}: ${String(e)}`));
}

/** The committed image's top layer, after checking that everything below it is the base, unchanged. */
function topLayer(dir: string, req: Pick<PackageRequest, 'baseLayers' | 'baseDiffIds'>): LayerRef {
  const layout = OciLayout.open(dir);
  const manifest = ImageManifestSchema.parse(JSON.parse(layout.readBlob(layout.resolve('built').digest).toString()));
  const config = ImageConfigSchema.parse(JSON.parse(layout.readBlob(manifest.config.digest).toString()));
  const ids = config.rootfs.diff_ids;
  const same = ids.length === req.baseLayers + 1 && req.baseDiffIds.every((d, i) => ids[i] === d);
  if (!same)
    throw new Error(
      `the committed build has layers ${ids.join(', ')}; expected the base's ${req.baseDiffIds.join(', ')} plus one`,
    );
  const top = manifest.layers[manifest.layers.length - 1]!;
  return {
    digest: top.digest,
    compression: layerCompression(top.mediaType || MT.ociLayerTar),
    open: () => layout.openBlob(top.digest),
  };
}
