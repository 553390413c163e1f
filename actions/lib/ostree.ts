import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import { asRoot, type CommandRunner } from './exec.js';
import type { Logger } from './log.js';
import { LayeredRootfs, type FsEntry } from './rootfs/layered.js';
import type { BootEntry } from './vm/bls.js';
import type { Ext4Image } from './vm/ext4-image.js';
import { removeTree } from './vm/unpack.js';

/**
 * An image installed the way bootc does it under the hood, with the host's `ostree` CLI (run as
 * root: a bare repository keeps real owners and xattrs): the image's filesystem becomes an
 * ostree commit with /etc moved to /usr/etc (the image's defaults, the base of the 3-way /etc
 * merge), an ostree sysroot is initialised (`admin init-fs`, `os-init`), and the commit is
 * deployed with its kernel arguments, which writes the BLS entry ostree boots from
 * (`/boot/loader/entries/*.conf`, kernel and initramfs copied from /usr/lib/modules/<kver>/).
 */

/** bootc's stateroot name for an installed system. */
export const STATEROOT = 'default';

/**
 * The image's filesystem as an ostree commit holds it: /etc (the image's defaults) under
 * /usr/etc, everything else where it is. Streamed into the shared hardened unpack
 * (`unpackRootfs`), so no path is moved on the runner afterwards.
 */
export class CommitLayout extends LayeredRootfs {
  /** Refuses an image that cannot be laid out: no /usr directory, or a /usr/etc of its own. */
  async check(): Promise<void> {
    const index = await this.index();
    if (index.get('usr')?.type !== 'dir')
      throw new UserError('the image has no /usr directory (a bootc image keeps its OS in /usr)');
    if (index.has('usr/etc'))
      throw new UserError(
        'the image ships /usr/etc: ostree keeps the image /etc there, so an image must ship /etc (bootc lint refuses /usr/etc too)',
      );
  }

  override async *flatten(): AsyncGenerator<{ entry: FsEntry; body?: AsyncIterable<Buffer> }> {
    await this.check();
    const move = (p: string) => (p === 'etc' || p.startsWith('etc/') ? `usr/${p}` : p);
    for await (const { entry, body } of super.flatten()) {
      yield {
        entry: {
          ...entry,
          path: move(entry.path),
          linkname: entry.type === 'hardlink' ? move(entry.linkname) : entry.linkname,
        },
        body,
      };
    }
  }
}

async function ostree(runner: CommandRunner, args: string[], timeoutMs: number): Promise<string> {
  const [cmd, a] = asRoot('ostree', args);
  const r = await runner.run(cmd, a, { timeoutMs });
  return r.stdout.toString('utf8').trim();
}

const CHECKSUM = /^[0-9a-f]{64}$/;

/** A new repository (`bare`: real owners, modes and xattrs, what a sysroot uses). */
export async function initRepo(repo: string, runner: CommandRunner): Promise<void> {
  fs.mkdirSync(repo, { recursive: true });
  await ostree(runner, [`--repo=${repo}`, 'init', '--mode=bare'], 60_000);
}

/** Commits a directory tree (consumed: its files move into the repository). Returns the checksum. */
export async function commitTree(
  repo: string,
  tree: string,
  branch: string,
  subject: string,
  runner: CommandRunner,
  timeoutMs: number,
): Promise<string> {
  const out = await ostree(
    runner,
    [`--repo=${repo}`, 'commit', '--consume', `--branch=${branch}`, `--subject=${subject}`, `--tree=dir=${tree}`],
    timeoutMs,
  );
  const checksum = out.split('\n').at(-1) ?? '';
  if (!CHECKSUM.test(checksum)) throw new Error(`ostree commit printed no checksum: ${out.slice(-200)}`);
  return checksum;
}

/**
 * An empty sysroot in `dir`: the physical root of an ostree system (/boot, /ostree with its
 * repository and the stateroot). `bootloader=none`: ostree writes BLS entries only, the host
 * reads them (there is no bootloader configuration for it to regenerate).
 */
export async function initSysroot(dir: string, runner: CommandRunner): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await ostree(runner, ['admin', 'init-fs', '--modern', dir], 60_000);
  await ostree(runner, ['admin', 'os-init', `--sysroot=${dir}`, STATEROOT], 60_000);
  await ostree(runner, [`--repo=${sysrootRepo(dir)}`, 'config', 'set', 'sysroot.bootloader', 'none'], 60_000);
}

export function sysrootRepo(sysroot: string): string {
  return path.join(sysroot, 'ostree', 'repo');
}

/** Deploys `checksum` as the default deployment with `kargs`; returns the deployment's path in the sysroot. */
export async function deploy(
  sysroot: string,
  checksum: string,
  kargs: string[],
  runner: CommandRunner,
  log: Logger,
  timeoutMs: number,
): Promise<string> {
  const out = await ostree(
    runner,
    ['admin', 'deploy', `--sysroot=${sysroot}`, `--os=${STATEROOT}`, ...kargs.map((k) => `--karg=${k}`), checksum],
    timeoutMs,
  );
  log.debug(out);
  const rel = `ostree/deploy/${STATEROOT}/deploy/${checksum}.0`;
  if (!fs.existsSync(path.join(sysroot, rel))) throw new Error(`ostree admin deploy did not create /${rel}`);
  return `/${rel}`;
}

/**
 * Removes a sysroot directory. ostree makes every deployment's root immutable (chattr +i), which
 * stops even root's rm: the flag is cleared first.
 */
export async function removeSysroot(sysroot: string, runner: CommandRunner): Promise<void> {
  const deployments = path.join(sysroot, 'ostree', 'deploy', STATEROOT, 'deploy');
  const dirs = fs.existsSync(deployments)
    ? fs
        .readdirSync(deployments, { withFileTypes: true })
        .filter((d) => d.isDirectory() && !d.isSymbolicLink())
        .map((d) => path.join(deployments, d.name))
    : [];
  if (dirs.length) {
    const [cmd, args] = asRoot('chattr', ['-i', '--', ...dirs]);
    await runner.run(cmd, args);
  }
  await removeTree(sysroot, runner);
}

/**
 * The commit a BLS entry boots, read from the disk like ostree-prepare-root does: its `ostree=`
 * argument names `/ostree/boot.N/<stateroot>/<bootcsum>/<index>`, a symlink to the deployment
 * `…/deploy/<stateroot>/deploy/<commit>.<serial>`. Undefined when the entry is not an ostree one
 * or the link does not lead to a deployment.
 */
export async function commitOfEntry(img: Ext4Image, entry: BootEntry): Promise<string | undefined> {
  const arg = /(?:^| )ostree=(\S+)/.exec(entry.options)?.[1];
  if (!arg || !/^\/ostree\/boot\.[01]\/[A-Za-z0-9._-]+\/[0-9a-f]{64}\/\d{1,4}$/.test(arg)) return undefined;
  if ((await img.stat(arg))?.type !== 'symlink') return undefined;
  const target = await img.readLink(arg);
  return /^(?:\.\.\/)+deploy\/[A-Za-z0-9._-]+\/deploy\/([0-9a-f]{64})\.\d+$/.exec(target)?.[1];
}
