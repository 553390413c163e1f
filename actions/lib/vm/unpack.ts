import fs from 'node:fs';
import { Readable } from 'node:stream';
import { asRoot, type CommandRunner } from '../exec.js';
import type { Logger } from '../log.js';
import type { LayeredRootfs } from '../rootfs/layered.js';
import { writeTar, type WriteEntry } from '../tar/writer.js';

/**
 * Materialises an image's final filesystem in a directory: the layered view (whiteouts applied)
 * is streamed as one tar into GNU tar, which keeps owners, modes, hardlinks, device nodes and
 * xattrs (capabilities, SELinux labels). Runs tar as root (sudo when needed) so ownership is real.
 */
export async function unpackRootfs(
  rootfs: LayeredRootfs,
  dest: string,
  runner: CommandRunner,
  log: Logger,
): Promise<{ entries: number; bytes: number }> {
  fs.mkdirSync(dest, { recursive: true });
  let entries = 0;
  let bytes = 0;
  async function* entriesOf(): AsyncGenerator<WriteEntry> {
    for await (const { entry, body } of rootfs.flatten()) {
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
