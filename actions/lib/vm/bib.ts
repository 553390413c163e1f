/**
 * bootc-image-builder (BIB) invocations for GitHub runners: BIB needs a privileged container
 * and reads the image from local containers-storage, so the image is pulled by digest first.
 * It cannot run on the Keel development machine (no privileged podman); the command lines are
 * built here, documented, and tested for their exact shape.
 *
 * Pinned by digest (never :latest, a lesson of the anchor pipeline). Override with the
 * `bib-image` input to move the pin.
 *
 * Private registries: `runBib` logs in first (`podman login --password-stdin`: the password on
 * stdin, never in argv) into a temporary auth file of its own, which the pull and the builder
 * container's own pull use through `--authfile`, and which is removed on every path.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { onCleanup } from '../cleanup.js';
import { estimateUnpacked, GiB, type SpaceNeed } from '../disk-space.js';
import { InputError } from '../errors.js';
import { asRoot, type CommandRunner } from '../exec.js';
import type { Logger } from '../log.js';
import { parseReference } from '../oci/reference.js';

export const BIB_IMAGE =
  'quay.io/centos-bootc/bootc-image-builder@sha256:7ae88b8d6f2cabfa971d7836b96d6cac19cd1384e658031bd154f9687e929905';

/** Root's containers-storage, where the image is pulled and which the builder reads. */
export const BIB_STORAGE = '/var/lib/containers/storage';

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
  /** A containers auth file for the pull and the builder image's pull (see runBib). */
  authFile?: string;
}

/** The argv list to run, in order: pull the pinned image, then build. */
export function bibCommands(r: BibRequest): [string, string[]][] {
  if (!/@sha256:[0-9a-f]{64}$/.test(r.imageRef)) throw new Error(`bib needs a digest reference, got ${r.imageRef}`);
  // BIB takes the reference after its own options, where `--` cannot go: refuse an option-like one.
  if (r.imageRef.startsWith('-')) throw new Error(`bib: the image reference cannot start with -: ${r.imageRef}`);
  if (r.authFile?.startsWith('-')) throw new Error(`bib: the auth file path cannot start with -: ${r.authFile}`);
  for (const dir of [r.outputDir, r.configFile, r.storage].filter((d): d is string => d !== undefined)) {
    // A ':' or ',' would end the -v source and start options of podman's volume syntax.
    if (/[:,]/.test(dir)) throw new Error(`bib: ${dir} cannot be mounted into the builder (it contains ':' or ',')`);
  }
  const storage = r.storage ?? BIB_STORAGE;
  const auth = r.authFile ? ['--authfile', r.authFile] : [];
  const run = [
    'run',
    '--rm',
    '--privileged',
    '--pull=newer',
    ...auth,
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
  return [asRoot('podman', ['pull', ...auth, '--', r.imageRef]), asRoot('podman', run)];
}

/** Credentials for one registry (the image's, or the builder image's). */
export interface RegistryLogin {
  /** An image reference on that registry; its registry host is logged in to. */
  image: string;
  username: string;
  password: string;
}

/**
 * Logs in to each registry that has credentials (password on stdin), then runs the pull and
 * the build through the one temporary auth file; the file and its directory (private to this
 * process, under `workDir`) are removed on every path, a cancelled step included.
 */
export async function runBib(
  r: Omit<BibRequest, 'authFile'>,
  logins: RegistryLogin[],
  ctx: { runner: CommandRunner; log: Logger; workDir: string; timeoutMs: number },
): Promise<void> {
  const given = logins.filter((l) => l.username || l.password);
  const authDir = given.length ? fs.mkdtempSync(path.join(ctx.workDir, 'keel-bib-auth-')) : undefined;
  const remove = () => authDir && fs.rmSync(authDir, { recursive: true, force: true });
  const unregister = onCleanup(remove);
  try {
    const authFile = authDir ? path.join(authDir, `auth-${crypto.randomUUID()}.json`) : undefined;
    const secrets = given.map((l) => l.password).filter(Boolean);
    for (const l of given) await login(l, authFile!, secrets, ctx);
    for (const [cmd, args] of bibCommands({ ...r, authFile })) {
      await ctx.runner.run(cmd, args, { echo: true, timeoutMs: ctx.timeoutMs, redact: secrets });
    }
  } finally {
    remove();
    unregister();
  }
}

async function login(
  l: RegistryLogin,
  authFile: string,
  secrets: string[],
  ctx: { runner: CommandRunner; log: Logger },
): Promise<void> {
  const registry = parseReference(l.image, { requireTagOrDigest: false }).registry;
  if (!l.username || !l.password)
    throw new Error(`bib: registry credentials for ${registry} need both a user name and a password`);
  const [cmd, args] = asRoot('podman', [
    'login',
    '--authfile',
    authFile,
    `--username=${l.username}`,
    '--password-stdin',
    '--',
    registry,
  ]);
  ctx.log.info(`logging in to ${registry} for bootc-image-builder (password on stdin)`);
  await ctx.runner.run(cmd, args, { input: l.password, redact: secrets, timeoutMs: 120_000 });
}

/** BIB's config.toml: kernel arguments (the smoke boot adds the serial console) and extra TOML. */
export function bibConfig(opts: { kernelAppend?: string; extra?: string }): string {
  const parts: string[] = [];
  if (opts.kernelAppend) parts.push(`[customizations.kernel]\nappend = ${JSON.stringify(opts.kernelAppend)}\n`);
  if (opts.extra?.trim()) parts.push(opts.extra.trim() + '\n');
  return parts.join('\n');
}

/** A password needs its user name (bib logs in with both): checked before any side effect. */
export function requireLoginPairs(inp: {
  username: string;
  password: string;
  'bib-username': string;
  'bib-password': string;
}): void {
  if (inp.password && !inp.username)
    throw new InputError('username', undefined, 'a password is given: expected the user name that goes with it');
  if (!!inp['bib-username'] !== !!inp['bib-password'])
    throw new InputError(
      inp['bib-username'] ? 'bib-password' : 'bib-username',
      undefined,
      'bib-username and bib-password are given together (the builder image registry login needs both)',
    );
}

/**
 * What bootc-image-builder writes, estimated from the image's compressed size: the image pulled
 * into root's storage, and its output (an installer ISO or a disk) in the work directory.
 */
export function bibSpaceNeeds(
  compressedBytes: number,
  workDir: string,
  type: 'iso' | 'qcow2' | 'raw' = 'qcow2',
): SpaceNeed[] {
  const unpacked = estimateUnpacked(compressedBytes);
  return [
    { dir: BIB_STORAGE, bytes: unpacked, what: 'the image pulled into containers-storage (estimated)' },
    type === 'iso'
      ? { dir: workDir, bytes: compressedBytes + GiB, what: 'the installer ISO (estimated)' }
      : { dir: workDir, bytes: unpacked * 1.25, what: 'the disk image (estimated)' },
  ];
}
