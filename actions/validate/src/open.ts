import { errorMessage } from '../../lib/errors.js';
import type { CommandRunner } from '../../lib/exec.js';
import { openImage, type ImageLocation } from '../../lib/image/open.js';
import type { Logger } from '../../lib/log.js';
import type { RegistryAccess } from '../../lib/registry.js';
import { DirectoryRootfs } from '../../lib/rootfs/directory.js';
import { LayeredRootfs } from '../../lib/rootfs/layered.js';
import { mountStorageImage, PrivilegedTreeRootfs } from '../../lib/rootfs/storage.js';
import { requireSpace, type SpaceCheckOptions } from '../../lib/disk-space.js';
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
 * Opens the image read-only without a copy where possible: a local image is mounted (`podman
 * image mount` of its ID, as root: through `sudo -n` on a non-root runner) and read in place,
 * directly when this process is root, else through root's find and tar (PrivilegedTreeRootfs);
 * an OCI layout is read layer by layer; a registry image's compressed layers are fetched once
 * into a cache (the space for them checked first).
 */
export async function openForChecks(
  loc: ImageLocation,
  opts: {
    runner: CommandRunner;
    log: Logger;
    tmpDir: string;
    access: RegistryAccess;
    space?: SpaceCheckOptions;
  },
): Promise<OpenedForChecks> {
  if (loc.kind === 'containers-storage') {
    try {
      const img = await mountStorageImage(loc.ref, opts.runner);
      const direct = process.getuid?.() === 0;
      return {
        fs: direct ? new DirectoryRootfs(img.root) : new PrivilegedTreeRootfs(img.root, opts.runner),
        labels: img.labels,
        digest: img.digest,
        localRef: loc.ref,
        how: `mounted read-only (podman image mount ${img.id.slice(0, 12)}) at ${img.root}, read in place${direct ? '' : ' through sudo'}`,
        dispose: img.unmount,
      };
    } catch (e) {
      opts.log.warning(`could not mount ${loc.ref} (${errorMessage(e)}); reading an export of its layers instead`);
    }
  }
  const space = opts.space;
  const img = await openImage(loc, {
    ...opts,
    beforeDownload: space ? (bytes, dir) => requireSpace([{ dir, bytes, what: 'the image layers' }], space) : undefined,
  });
  return {
    fs: new LayeredRootfs(img.layers),
    labels: img.labels,
    digest: img.manifestDigest,
    localRef: loc.kind === 'containers-storage' ? loc.ref : undefined,
    how: `read from ${img.layers.length} layer(s) without unpacking`,
    dispose: async () => img.dispose(),
  };
}
