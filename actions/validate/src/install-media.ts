import { moduleName } from '../../lib/initramfs.js';
import type { RootfsReader } from '../../lib/rootfs/reader.js';
import type { TarHeader } from '../../lib/tar/reader.js';

/**
 * What an image must hold to become the install media it is declared for, judged at build
 * time (before any push), not when build-disk fails after the image was promoted:
 *
 * - `live-iso` (build-disk, live backend, lib/vm/iso.ts): build-disk runs the image's own dracut
 *   in a chroot of the unpacked image (`dracut --no-hostonly --add dmsquash-live --tmpdir /tmp
 *   --kver <kver>`), so the image needs bash and dracut, dracut's dmsquash-live module, a /tmp,
 *   the kernel at /usr/lib/modules/<kver>/vmlinuz, and the kernel modules dmsquash-live puts in
 *   the initramfs to find and mount the medium (squashfs, loop, isofs, overlay: as modules or
 *   built in).
 * - `disk` (build-disk qcow2/raw): the kernel and its initramfs at /usr/lib/modules/<kver>/.
 * - `bib-iso` (bootc-image-builder's anaconda-iso): the same as `disk`, bootc (the installer runs
 *   `bootc install`), and an os-release that
 *   bootc-image-builder builds an installer for (it takes the installer from the distribution's
 *   own repositories: the Fedora/CentOS/RHEL family, by ID or ID_LIKE).
 */
export const INSTALL_MEDIA = ['none', 'live-iso', 'bib-iso', 'disk'] as const;
export type InstallMedia = (typeof INSTALL_MEDIA)[number];

/** The modules dmsquash-live installs into the live initramfs (module-setup.sh: instmods). */
export const LIVE_MODULES = ['squashfs', 'loop', 'isofs', 'overlay'];

/** os-release IDs bootc-image-builder builds an Anaconda installer for. */
const BIB_ISO_FAMILY = ['fedora', 'centos', 'rhel'];

export interface MediaFacts {
  fs: RootfsReader;
  index: Map<string, TarHeader>;
  /** The single kernel version, when there is exactly one. */
  kver?: string;
  /** Built-in module names (modules.builtin). */
  builtin: Set<string>;
}

export interface MediaVerdict {
  ok: boolean;
  /** What is missing, or what was found. */
  evidence: string;
}

export async function installMediaVerdict(media: Exclude<InstallMedia, 'none'>, f: MediaFacts): Promise<MediaVerdict> {
  const found: string[] = [];
  const missing: string[] = [];
  const need = (ok: boolean, what: string, why: string) => (ok ? found : missing).push(ok ? what : `${what} (${why})`);
  const kdir = f.kver ? `usr/lib/modules/${f.kver}` : undefined;
  const isFile = async (p: string) => {
    const real = await f.fs.resolve(p);
    return real !== undefined && f.index.get(real)?.type === 'file';
  };
  need(
    !!kdir && f.index.get(`${kdir}/vmlinuz`)?.type === 'file',
    'the kernel /usr/lib/modules/<kver>/vmlinuz',
    kdir ? `${kdir}/vmlinuz is missing` : 'there is not exactly one kernel directory',
  );
  if (media === 'live-iso') await liveIsoNeeds(f, kdir, need, isFile);
  else await installerNeeds(media, f, kdir, need, isFile);
  const label = `${media}: `;
  return missing.length
    ? {
        ok: false,
        evidence: `${label}missing ${missing.join('; ')}${found.length ? `; present: ${found.join(', ')}` : ''}`,
      }
    : { ok: true, evidence: `${label}${found.join(', ')}` };
}

type Need = (ok: boolean, what: string, why: string) => void;

async function liveIsoNeeds(
  f: MediaFacts,
  kdir: string | undefined,
  need: Need,
  isFile: (p: string) => Promise<boolean>,
): Promise<void> {
  const dracut = (await isFile('usr/bin/dracut')) || (await isFile('usr/sbin/dracut'));
  need(dracut, 'dracut', 'build-disk runs the image’s own dracut to make the live initramfs');
  need(await isFile('usr/bin/bash'), 'bash', 'dracut is a bash script run in a chroot of the image');
  const modulesD = (await f.fs.resolve('usr/lib/dracut/modules.d')) ?? 'usr/lib/dracut/modules.d';
  const live = [...f.index.values()].some(
    (e) =>
      e.type === 'dir' &&
      e.path.startsWith(`${modulesD}/`) &&
      /^\d+dmsquash-live$/.test(e.path.slice(modulesD.length + 1)),
  );
  need(
    live,
    'dracut’s dmsquash-live module',
    '/usr/lib/dracut/modules.d/*dmsquash-live is missing; Debian and Fedora: install dracut-live',
  );
  const tmp = await f.fs.resolve('tmp');
  need(tmp !== undefined && f.index.get(tmp)?.type === 'dir', '/tmp', 'dracut builds the initramfs under /tmp');
  if (!kdir) return;
  const modules = new Set<string>();
  for (const p of f.index.keys()) {
    const n = p.startsWith(`${kdir}/`) ? moduleName(p) : undefined;
    if (n) modules.add(n);
  }
  const absent = LIVE_MODULES.filter((m) => !modules.has(m) && !f.builtin.has(m));
  need(
    absent.length === 0,
    `kernel modules ${LIVE_MODULES.join(', ')}`,
    `kernel modules ${absent.join(', ')} are neither in ${kdir} nor built in: the live initramfs cannot mount the medium`,
  );
}

async function installerNeeds(
  media: 'bib-iso' | 'disk',
  f: MediaFacts,
  kdir: string | undefined,
  need: Need,
  isFile: (p: string) => Promise<boolean>,
): Promise<void> {
  need(
    !!kdir && f.index.get(`${kdir}/initramfs.img`)?.type === 'file',
    'the initramfs /usr/lib/modules/<kver>/initramfs.img',
    'the disk boots the image’s own initramfs',
  );
  if (media !== 'bib-iso') return;
  need(await isFile('usr/bin/bootc'), 'bootc', 'bootc-image-builder installs the image with bootc install');
  const text = (await f.fs.readFiles(['usr/lib/os-release'])).get('usr/lib/os-release')?.toString() ?? '';
  const field = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(text)?.[1]?.replace(/^["']|["']$/g, '') ?? '';
  const ids = [field('ID'), ...field('ID_LIKE').split(/\s+/)].filter(Boolean);
  need(
    ids.some((id) => BIB_ISO_FAMILY.includes(id)),
    `an os-release bootc-image-builder makes an installer for (ID ${field('ID') || 'unset'})`,
    `os-release ID=${field('ID') || '(unset)'}${field('ID_LIKE') ? ` ID_LIKE="${field('ID_LIKE')}"` : ''} is not in the ${BIB_ISO_FAMILY.join('/')} family, whose repositories the Anaconda installer comes from; use install-media: live-iso`,
  );
}
