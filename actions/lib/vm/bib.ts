/**
 * bootc-image-builder (BIB) invocations for GitHub runners: BIB needs a privileged container
 * and reads the image from local containers-storage, so the image is pulled by digest first.
 * It cannot run on the Keel development machine (no privileged podman); the command lines are
 * built here, documented, and tested for their exact shape.
 *
 * Pinned by digest (never :latest, a lesson of the anchor pipeline). Override with the
 * `bib-image` input to move the pin.
 */
import { asRoot } from '../exec.js';

export const BIB_IMAGE =
  'quay.io/centos-bootc/bootc-image-builder@sha256:7ae88b8d6f2cabfa971d7836b96d6cac19cd1384e658031bd154f9687e929905';

export const BIB_ROOTFS = ['btrfs', 'ext4', 'xfs'] as const;
export type BibRootfs = (typeof BIB_ROOTFS)[number];

export type BibType = 'qcow2' | 'raw' | 'anaconda-iso' | 'bootc-installer' | 'iso';

export interface BibRequest {
  /** registry/repo@sha256:… (always a digest). */
  imageRef: string;
  type: BibType;
  outputDir: string;
  /** Root filesystem of the produced disk; bootc images that set one in their install config may ignore it. */
  rootfs?: BibRootfs;
  configFile?: string;
  bibImage?: string;
  chown?: string;
  storage?: string;
}

/** The argv list to run, in order: pull the pinned image, then build. */
export function bibCommands(r: BibRequest): [string, string[]][] {
  if (!/@sha256:[0-9a-f]{64}$/.test(r.imageRef)) throw new Error(`bib needs a digest reference, got ${r.imageRef}`);
  // BIB takes the reference after its own options, where `--` cannot go: refuse an option-like one.
  if (r.imageRef.startsWith('-')) throw new Error(`bib: the image reference cannot start with -: ${r.imageRef}`);
  for (const dir of [r.outputDir, r.configFile, r.storage].filter((d): d is string => d !== undefined)) {
    // A ':' or ',' would end the -v source and start options of podman's volume syntax.
    if (/[:,]/.test(dir)) throw new Error(`bib: ${dir} cannot be mounted into the builder (it contains ':' or ',')`);
  }
  const storage = r.storage ?? '/var/lib/containers/storage';
  const run = [
    'run',
    '--rm',
    '--privileged',
    '--pull=newer',
    '--security-opt',
    'label=type:unconfined_t',
    '-v',
    `${storage}:/var/lib/containers/storage`,
    '-v',
    `${r.outputDir}:/output`,
  ];
  if (r.configFile) run.push('-v', `${r.configFile}:/config.toml:ro`);
  run.push(
    '--',
    r.bibImage ?? BIB_IMAGE,
    'build',
    '--output',
    '/output',
    '--type',
    r.type,
    '--rootfs',
    r.rootfs ?? 'btrfs',
    '--use-librepo=True',
  );
  if (r.chown) run.push('--chown', r.chown);
  run.push(r.imageRef);
  // BIB reads root's containers-storage and needs a privileged container: both podman calls run
  // as root (directly when we are root, through `sudo -n` on a non-root runner).
  return [asRoot('podman', ['pull', '--', r.imageRef]), asRoot('podman', run)];
}

/** BIB's config.toml: kernel arguments (the smoke boot adds the serial console) and extra TOML. */
export function bibConfig(opts: { kernelAppend?: string; extra?: string }): string {
  const parts: string[] = [];
  if (opts.kernelAppend) parts.push(`[customizations.kernel]\nappend = ${JSON.stringify(opts.kernelAppend)}\n`);
  if (opts.extra?.trim()) parts.push(opts.extra.trim() + '\n');
  return parts.join('\n');
}
