import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { CommandRunner } from '../exec.js';
import type { Logger } from '../log.js';
import { exportFromStorage } from '../image/open.js';
import { OciLayout, parseOciRef } from './layout.js';

/**
 * Where an image to push comes from: an OCI image layout (`oci:DIR[:TAG]`), or what
 * `buildah build` left in containers-storage (`containers-storage:REF`), exported through
 * skopeo (via sudo when not root) to a temporary layout, layers compressed there, so the
 * pushed digest is final.
 */
export interface ImageSource {
  layout: OciLayout;
  tag?: string;
  /** Removes temporary exports. */
  dispose(): void;
  describe: string;
}

export function sourceProblem(source: string): string | undefined {
  if (source.startsWith('oci:')) {
    const { dir } = parseOciRef(source);
    return dir ? undefined : 'oci: needs a directory (oci:DIR[:TAG])';
  }
  if (source.startsWith('containers-storage:')) {
    return source.length > 'containers-storage:'.length ? undefined : 'containers-storage: needs an image reference';
  }
  return 'expected oci:DIR[:TAG] or containers-storage:REF';
}

export async function openSource(
  source: string,
  opts: { runner: CommandRunner; tmpDir: string; log: Logger; storageDriver?: string },
): Promise<ImageSource> {
  if (source.startsWith('oci:')) {
    const { dir, tag } = parseOciRef(source);
    return { layout: OciLayout.open(dir), tag, dispose: () => {}, describe: source };
  }
  const ref = source.slice('containers-storage:'.length);
  const dir = fs.mkdtempSync(path.join(opts.tmpDir, 'keel-export-'));
  opts.log.info(`exporting ${ref} from containers-storage to a temporary OCI layout`);
  try {
    await exportFromStorage(ref, dir, 'keel-export', opts.runner);
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new UserError(`cannot export ${source}: ${(e as Error).message}`);
  }
  return {
    layout: OciLayout.open(dir),
    tag: 'keel-export',
    dispose: () => fs.rmSync(dir, { recursive: true, force: true }),
    describe: source,
  };
}
