import { errorMessage } from '../../lib/errors.js';
import type { CommandRunner } from '../../lib/exec.js';
import { openImage, type ImageLocation } from '../../lib/image/open.js';
import type { Logger } from '../../lib/log.js';
import type { RegistryAccess } from '../../lib/registry.js';
import { DirectoryRootfs } from '../../lib/rootfs/directory.js';
import { LayeredRootfs } from '../../lib/rootfs/layered.js';
import type { RootfsReader } from '../../lib/rootfs/reader.js';

export interface OpenedForChecks {
  fs: RootfsReader;
  labels: Record<string, string>;
  digest?: string;
  localRef?: string;
  how: string;
  dispose(): Promise<void>;
}

/**
 * Opens the image read-only without a second full copy where possible: a local image is
 * mounted (`podman image mount`, root only) and read in place; an OCI layout is read layer by
 * layer; a registry image's compressed layers are fetched once into a cache.
 */
export async function openForChecks(
  loc: ImageLocation,
  opts: { runner: CommandRunner; log: Logger; tmpDir: string; access: RegistryAccess },
): Promise<OpenedForChecks> {
  if (loc.kind === 'containers-storage' && process.getuid?.() === 0) {
    try {
      const inspect = JSON.parse(
        (await opts.runner.run('podman', ['image', 'inspect', '--', loc.ref])).stdout.toString(),
      ) as {
        Labels?: Record<string, string> | null;
        Digest?: string;
      }[];
      const mount = (await opts.runner.run('podman', ['image', 'mount', '--', loc.ref])).stdout.toString().trim();
      return {
        fs: new DirectoryRootfs(mount),
        labels: { ...(inspect[0]?.Labels ?? {}) },
        digest: inspect[0]?.Digest,
        localRef: loc.ref,
        how: `mounted read-only (podman image mount) at ${mount}`,
        dispose: async () => {
          await opts.runner.run('podman', ['image', 'unmount', '--', loc.ref]).catch(() => undefined);
        },
      };
    } catch (e) {
      opts.log.warning(`could not mount ${loc.ref} (${errorMessage(e)}); reading its layers instead`);
    }
  }
  const img = await openImage(loc, { ...opts });
  return {
    fs: new LayeredRootfs(img.layers),
    labels: img.labels,
    digest: img.manifestDigest,
    localRef: loc.kind === 'containers-storage' ? loc.ref : undefined,
    how: `read from ${img.layers.length} layer(s) without unpacking`,
    dispose: async () => img.dispose(),
  };
}
