/**
 * Keel's package-database library: the one place an image's installed packages are read.
 *
 *   const { inventory } = await readImageInventory(locateImage(ref), { log, runner, tmpDir });
 *   inventory.databases   // [{ kind: 'dpkg', dir: 'var/lib/dpkg', packages: 174 }]
 *   inventory.packages    // [{ type: 'deb', name: 'bash', version: '5.2.37-2+b5', architecture: 'amd64', … }]
 *   diffInventories(previous, current)   // added / removed / changed, the kernel first
 *
 * dpkg status files are parsed here (hostile input: refused when malformed); rpm databases are
 * copied out of the image through joinInside and read with the real `rpm` tool (rpm.ts, which
 * the rechunker uses for file ownership too).
 */
export { readImageInventory, type ImageInventory, type ImageInventoryOptions } from './image.js';
export { readInventory, type Inventory, type Kernel, type ImageFiles } from './inventory.js';
export { diffInventories, type InventoryDiff, type PackageChange, type PackageRef, type KernelChange } from './diff.js';
export { DPKG_DIRS, parseDpkgStatus, dep5Licenses } from './dpkg.js';
export { RPM_DIRS, findRpmDatabase, queryRpmDatabase, parseRpmPackages } from './rpm.js';
export { parseOsRelease, distroQualifier, type OsRelease } from './os-release.js';
export {
  PackageDatabaseError,
  packageKey,
  displayVersion,
  type InstalledPackage,
  type FoundDatabase,
  type DatabaseKind,
} from './types.js';
