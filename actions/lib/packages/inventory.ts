import crypto from 'node:crypto';
import type { CommandRunner } from '../exec.js';
import type { Logger } from '../log.js';
import { kernelDirs } from '../rootfs/kernel.js';
import type { TarHeader } from '../tar/reader.js';
import { DPKG_DIRS, MAX_COPYRIGHT_BYTES, MAX_STATUS_BYTES, dep5Licenses, parseDpkgStatus } from './dpkg.js';
import { OS_RELEASE_PATHS, parseOsRelease, type OsRelease } from './os-release.js';
import { findRpmDatabase, parseRpmPackages, queryRpmDatabase, RPM_PACKAGE_FORMAT } from './rpm.js';
import { PackageDatabaseError, type FoundDatabase, type InstalledPackage } from './types.js';

/**
 * What is installed in an image, read from its own package databases without unpacking it:
 * the distribution (os-release), the kernels under usr/lib/modules, and every package of every
 * database found (dpkg, rpm). The SBOM and the changelog are both built from this.
 */
export interface Kernel {
  version: string;
  /** SHA-256 of usr/lib/modules/<version>/vmlinuz, when the image has one. */
  vmlinuzSha256?: string;
}

export interface Inventory {
  os?: OsRelease;
  kernels: Kernel[];
  databases: FoundDatabase[];
  /** Sorted by type, name, architecture. */
  packages: InstalledPackage[];
}

/** What the reader needs from an image's filesystem (LayeredRootfs and DirectoryRootfs have it). */
export interface ImageFiles {
  index(): Promise<Map<string, TarHeader>>;
  readFiles(paths: string[]): Promise<Map<string, Buffer>>;
}

export interface InventoryOptions {
  runner: CommandRunner;
  log: Logger;
  /** Where the rpm database copy is made. */
  tmpDir?: string;
}

const sortPackages = (a: InstalledPackage, b: InstalledPackage) =>
  a.type.localeCompare(b.type) ||
  (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
  a.architecture.localeCompare(b.architecture);

function dpkgDir(index: ReadonlyMap<string, TarHeader>): string | undefined {
  return DPKG_DIRS.find((d) => index.get(`${d}/status`)?.type === 'file');
}

/** Reads the inventory; one pass over the layers for the small files, rpm through its tool. */
export async function readInventory(image: ImageFiles, opts: InventoryOptions): Promise<Inventory> {
  const index = await image.index();
  const dpkg = dpkgDir(index);
  const rpm = findRpmDatabase(index);
  const kvers = kernelDirs(index).sort();
  const docDirs = dpkg ? [...index.keys()].filter((p) => /^usr\/share\/doc\/[^/]+$/.test(p)) : [];
  const copyrights = docDirs
    .map((d) => `${d}/copyright`)
    .filter((p) => (index.get(p)?.size ?? 0) <= MAX_COPYRIGHT_BYTES);
  if (dpkg && (index.get(`${dpkg}/status`)?.size ?? 0) > MAX_STATUS_BYTES)
    throw new PackageDatabaseError(`${dpkg}/status`, `larger than ${MAX_STATUS_BYTES} bytes`);
  const wanted = [
    ...OS_RELEASE_PATHS,
    ...(dpkg ? [`${dpkg}/status`] : []),
    ...kvers.map((k) => `usr/lib/modules/${k}/vmlinuz`),
    ...copyrights,
  ];
  const files = await image.readFiles(wanted);

  const osText = OS_RELEASE_PATHS.map((p) => files.get(p)).find(Boolean);
  const databases: FoundDatabase[] = [];
  const packages: InstalledPackage[] = [];
  if (dpkg) {
    const status = `${dpkg}/status`;
    const debs = parseDpkgStatus(files.get(status)?.toString('utf8') ?? '', status);
    for (const p of debs) {
      const licenses = files.get(`usr/share/doc/${p.name}/copyright`);
      const names = licenses ? dep5Licenses(licenses.toString('utf8')) : undefined;
      packages.push(names ? { ...p, licenses: names } : p);
    }
    databases.push({ kind: 'dpkg', dir: dpkg, packages: debs.length });
  }
  if (rpm) {
    const out = await queryRpmDatabase(
      { index, readFiles: (p) => image.readFiles(p), runner: opts.runner, dbDir: rpm, tmpDir: opts.tmpDir },
      ['-qa', '--qf', RPM_PACKAGE_FORMAT],
    );
    const rpms = parseRpmPackages(out, rpm);
    packages.push(...rpms);
    databases.push({ kind: 'rpm', dir: rpm, packages: rpms.length });
  }
  for (const d of databases) opts.log.info(`${d.kind} database ${d.dir}: ${d.packages} packages`);
  if (!databases.length) opts.log.warning('no package database found (dpkg or rpm): the inventory lists no packages');
  const kernels = kvers.map((version) => {
    const v = files.get(`usr/lib/modules/${version}/vmlinuz`);
    return v ? { version, vmlinuzSha256: crypto.createHash('sha256').update(v).digest('hex') } : { version };
  });
  return {
    os: osText ? parseOsRelease(osText.toString('utf8')) : undefined,
    kernels,
    databases,
    packages: packages.sort(sortPackages),
  };
}
