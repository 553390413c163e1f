import fs from 'node:fs';
import path from 'node:path';
import { errorMessage, InputError, UserError } from '../errors.js';
import { asRoot, type CommandRunner } from '../exec.js';
import type { Logger } from '../log.js';
import { connect, type RegistryAccess } from '../registry.js';
import type { RegistryClient } from '../oci/client.js';
import { OciLayout, parseOciRef } from '../oci/layout.js';
import {
  ImageConfigSchema,
  ImageManifestSchema,
  IndexSchema,
  isIndexType,
  layerCompression,
  manifestMediaType,
  type ImageConfig,
  type ImageManifest,
} from '../oci/media.js';
import { InvalidReferenceError, parseReference, type ImageReference } from '../oci/reference.js';
import type { LayerRef } from '../rootfs/layered.js';

/**
 * Opens an image for reading wherever it is: a registry reference (layers downloaded once into
 * a content-addressed cache, digests verified), an OCI layout (`oci:DIR[:TAG]`, read in place),
 * or containers-storage (`containers-storage:REF`, exported through skopeo to a temporary
 * layout). Multi-arch indexes resolve to the platform asked for (linux/amd64 by default).
 */
export type ImageLocation =
  | { kind: 'registry'; ref: ImageReference }
  | { kind: 'oci'; dir: string; tag?: string }
  | { kind: 'containers-storage'; ref: string };

export function parseImageLocation(s: string): ImageLocation {
  const v = s.trim();
  if (v.startsWith('oci:')) return { kind: 'oci', ...parseOciRef(v) };
  if (v.startsWith('containers-storage:')) {
    const ref = v.slice('containers-storage:'.length);
    // Handed to podman/skopeo as an argument: an option-like name is refused, never passed.
    if (!ref || ref.startsWith('-'))
      throw new InvalidReferenceError(v, 'a local image name cannot be empty or start with -');
    return { kind: 'containers-storage', ref };
  }
  return { kind: 'registry', ref: parseReference(v.replace(/^docker:\/\//, '')) };
}

/**
 * `image` as a user writes it: containers-storage:REF or localhost/NAME:TAG (local storage),
 * oci:DIR[:TAG] or a directory holding an OCI layout, or a registry reference.
 */
export function locateImage(image: string): ImageLocation {
  const v = image.trim();
  if (/^localhost\/[^:/]/.test(v) && !/^localhost:\d/.test(v)) return { kind: 'containers-storage', ref: v };
  if (!v.includes(':') || v.startsWith('/') || v.startsWith('.')) {
    if (fs.existsSync(path.join(v, 'oci-layout'))) return { kind: 'oci', dir: v };
  }
  return parseImageLocation(v);
}

/** locateImage for an action input: a reference it cannot read is that input's error. */
export function locateInput(input: string, value: string): ImageLocation {
  try {
    return locateImage(value);
  } catch (e) {
    throw new InputError(
      input,
      value,
      `expected containers-storage:REF, localhost/NAME, oci:DIR[:TAG] or REGISTRY/REPO[:TAG|@sha256:…]: ${errorMessage(e)}`,
    );
  }
}

export function describeLocation(l: ImageLocation): string {
  return l.kind === 'registry'
    ? l.ref.toString()
    : l.kind === 'oci'
      ? `oci:${l.dir}${l.tag ? `:${l.tag}` : ''}`
      : `containers-storage:${l.ref}`;
}

/**
 * Exports a containers-storage image to an OCI layout in `dir` (skopeo compresses the layers).
 * Images live in root's storage (the build hop puts them there, through sudo on a non-root
 * runner), so a non-root process reads them through `sudo -n` and takes ownership of the export.
 */
export async function exportFromStorage(ref: string, dir: string, tag: string, runner: CommandRunner): Promise<void> {
  const [cmd, args] = asRoot('skopeo', ['copy', '--quiet', '--', `containers-storage:${ref}`, `oci:${dir}:${tag}`]);
  await runner.run(cmd, args, { echo: true });
  const uid = process.getuid?.();
  if (uid !== undefined && uid !== 0)
    await runner.run('sudo', ['-n', 'chown', '-R', `${uid}:${process.getgid?.() ?? uid}`, dir]);
}

export interface OpenedImage {
  source: string;
  manifestDigest: string;
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: string;
  labels: Record<string, string>;
  layers: LayerRef[];
  /** Registry client when the image came from a registry. */
  client?: RegistryClient;
  ref?: ImageReference;
  dispose(): void;
}

export interface OpenOptions {
  access?: RegistryAccess;
  log: Logger;
  runner: CommandRunner;
  tmpDir: string;
  /** Where registry blobs are cached (content-addressed; default <tmpDir>/keel-blobs). */
  cacheDir?: string;
  platform?: { os: string; architecture: string };
  /**
   * Called before a registry image's layers are downloaded, with the bytes still to fetch and
   * where they go: a disk space check fails there, before anything is written.
   */
  beforeDownload?: (bytes: number, dir: string) => void;
}

function pickPlatform(indexBody: Buffer, platform: { os: string; architecture: string }): string {
  const idx = IndexSchema.parse(JSON.parse(indexBody.toString()));
  const m = idx.manifests.find(
    (d) => d.platform?.os === platform.os && d.platform?.architecture === platform.architecture,
  );
  if (!m) {
    const have = idx.manifests.map((d) => `${d.platform?.os}/${d.platform?.architecture}`).join(', ');
    throw new UserError(`the index has no ${platform.os}/${platform.architecture} image (has: ${have})`);
  }
  return m.digest;
}

/** The compressed size of a registry image's layers (its platform's, for an index): no blob is fetched. */
export async function registryLayerBytes(
  client: RegistryClient,
  ref: ImageReference,
  platform = { os: 'linux', architecture: 'amd64' },
): Promise<number> {
  let m = await client.getManifest(ref.repository, ref.reference);
  if (isIndexType(m.mediaType)) m = await client.getManifest(ref.repository, pickPlatform(m.body, platform));
  const manifest = ImageManifestSchema.parse(JSON.parse(m.body.toString()));
  return manifest.layers.reduce((n, l) => n + l.size, 0);
}

export async function openImage(loc: ImageLocation, opts: OpenOptions): Promise<OpenedImage> {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  if (loc.kind === 'containers-storage') {
    const dir = fs.mkdtempSync(path.join(opts.tmpDir, 'keel-read-'));
    try {
      await exportFromStorage(loc.ref, dir, 'keel', opts.runner);
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new UserError(`cannot read containers-storage:${loc.ref}: ${(e as Error).message}`);
    }
    const img = await openImage({ kind: 'oci', dir, tag: 'keel' }, opts);
    return {
      ...img,
      source: `containers-storage:${loc.ref}`,
      dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (loc.kind === 'oci') {
    const layout = OciLayout.open(loc.dir);
    let desc = layout.resolve(loc.tag);
    let body = layout.readBlob(desc.digest);
    if (isIndexType(desc.mediaType || manifestMediaType(body))) {
      const d = pickPlatform(body, platform);
      body = layout.readBlob(d);
      desc = { ...desc, digest: d };
    }
    const manifest = ImageManifestSchema.parse(JSON.parse(body.toString()));
    const config = ImageConfigSchema.parse(JSON.parse(layout.readBlob(manifest.config.digest).toString()));
    return {
      source: describeLocation(loc),
      manifestDigest: desc.digest,
      manifest,
      config,
      configDigest: manifest.config.digest,
      labels: { ...(config.config?.Labels ?? {}) },
      layers: manifest.layers.map((l) => ({
        digest: l.digest,
        compression: layerCompression(l.mediaType),
        open: () => layout.openBlob(l.digest),
      })),
      dispose: () => {},
    };
  }
  const ref = loc.ref;
  const client = connect(ref, opts.access ?? {}, opts.log);
  let m = await client.getManifest(ref.repository, ref.reference);
  if (isIndexType(m.mediaType)) m = await client.getManifest(ref.repository, pickPlatform(m.body, platform));
  const manifest = ImageManifestSchema.parse(JSON.parse(m.body.toString()));
  const config = ImageConfigSchema.parse(
    JSON.parse((await client.getBlob(ref.repository, manifest.config.digest)).toString()),
  );
  const cache = opts.cacheDir ?? path.join(opts.tmpDir, 'keel-blobs');
  const missing = manifest.layers.filter((l) => !fs.existsSync(path.join(cache, l.digest.replace(':', '-'))));
  opts.beforeDownload?.(
    missing.reduce((n, l) => n + l.size, 0),
    cache,
  );
  const files: string[] = [];
  for (const l of manifest.layers) {
    const f = path.join(cache, l.digest.replace(':', '-'));
    await client.downloadBlob(ref.repository, l.digest, f);
    files.push(f);
  }
  return {
    source: ref.toString(),
    manifestDigest: m.digest,
    manifest,
    config,
    configDigest: manifest.config.digest,
    labels: { ...(config.config?.Labels ?? {}) },
    layers: manifest.layers.map((l, i) => ({
      digest: l.digest,
      compression: layerCompression(l.mediaType),
      open: () => fs.createReadStream(files[i]!, { highWaterMark: 1 << 20 }),
    })),
    client,
    ref,
    dispose: () => {},
  };
}
