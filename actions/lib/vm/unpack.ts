import fs from 'node:fs';
import { Readable } from 'node:stream';
import { asRoot, type CommandRunner } from '../exec.js';
import type { Logger } from '../log.js';
import type { LayeredRootfs } from '../rootfs/layered.js';
import { joinInside, UnsafePathError, unsafeEntryReason } from '../safe-path.js';
import { writeTar, type WriteEntry } from '../tar/writer.js';

/**
 * Materialises an image's final filesystem in a directory: the layered view (whiteouts applied)
 * is streamed as one tar into GNU tar, which keeps owners, modes, hardlinks, device nodes and
 * xattrs (capabilities, SELinux labels). Runs tar as root (sudo when needed) so ownership is real.
 *
 * The stream is the validated final view: `index()` has refused unsafe names and writes through
 * symlinks before anything is created here, and each streamed name is checked again. GNU tar's
 * own guards are its defaults (leading `/` stripped, `..` members skipped, symlinks that point
 * out of the tree created only after everything else); `-P`/`--absolute-names` and
 * `--keep-directory-symlink` would turn them off and are never passed. GNU tar has no flag that
 * refuses to follow a symlink on extraction, so the check before it is what keeps writes inside.
 */
export async function unpackRootfs(
  rootfs: LayeredRootfs,
  dest: string,
  runner: CommandRunner,
  log: Logger,
): Promise<{ entries: number; bytes: number }> {
  await rootfs.index(); // refuses a hostile image before anything is created
  fs.mkdirSync(dest, { recursive: true });
  let entries = 0;
  let bytes = 0;
  async function* entriesOf(): AsyncGenerator<WriteEntry> {
    for await (const { entry, body } of rootfs.flatten()) {
      const reason =
        unsafeEntryReason(entry.path) ?? (entry.type === 'hardlink' ? unsafeEntryReason(entry.linkname) : undefined);
      if (reason) throw new UnsafePathError(entry.path, reason);
      entries++;
      bytes += entry.size;
      yield { header: entry, body };
    }
  }
  const [cmd, args] = asRoot('tar', [
    '-x',
    '--numeric-owner',
    '--same-owner',
    '--same-permissions',
    '--xattrs',
    '--xattrs-include=*',
    '--no-overwrite-dir',
    '-f',
    '-',
    '-C',
    dest,
  ]);
  const t0 = Date.now();
  await runner.run(cmd, args, { input: Readable.from(writeTar(entriesOf())) });
  log.info(
    `unpacked ${entries} entries (${(bytes / 1048576).toFixed(0)} MiB) into ${dest} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  return { entries, bytes };
}

/**
 * Copies a regular file out of an unpacked tree (boot files for a disk or ISO): refuses a path
 * that leaves the tree or goes through a symlink, and anything but a regular file (a FIFO would
 * block the copy, a device would copy the runner's).
 */
export function copyOutOf(root: string, rel: string, dest: string): void {
  const src = joinInside(root, rel);
  if (!fs.lstatSync(src).isFile()) throw new UnsafePathError(rel, 'it is not a regular file');
  fs.copyFileSync(src, dest);
}

/** Removes a tree that may hold root-owned files. */
export async function removeTree(dir: string, runner: CommandRunner): Promise<void> {
  if (!fs.existsSync(dir)) return;
  if (process.getuid?.() === 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  const [cmd, args] = asRoot('rm', ['-rf', '--one-file-system', '--', dir]);
  await runner.run(cmd, args);
}
