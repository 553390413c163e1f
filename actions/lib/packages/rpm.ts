import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.js';
import { which, type CommandRunner } from '../exec.js';
import { joinInside, UnsafePathError } from '../safe-path.js';
import type { TarHeader } from '../tar/reader.js';
import { PackageDatabaseError, type InstalledPackage } from './types.js';

/**
 * The rpm database of an image (sqlite `rpmdb.sqlite` or Berkeley DB `Packages`), read with the
 * real `rpm` tool: the database files are copied out of the image into a private temporary
 * directory (through joinInside: a database path that leaves it is refused) and queried with
 * `rpm --dbpath`. The one place Keel reads an rpm database (the SBOM, the changelog and the
 * rechunker's file ownership all come through here).
 */

/** Where rpm keeps its database: the sysimage location first (Fedora >= 36), then the old ones. */
export const RPM_DIRS = ['usr/lib/sysimage/rpm', 'var/lib/rpm', 'usr/share/rpm'];

/** All database files together larger than this are refused (Fedora Workstation's is ~100 MiB). */
export const MAX_RPMDB_BYTES = 2 * 1024 * 1024 * 1024;

const dbFiles = (index: ReadonlyMap<string, TarHeader>, dir: string) =>
  [...index.keys()].filter((p) => p.startsWith(`${dir}/`) && index.get(p)?.type === 'file');

/** The first rpm database directory of an image that holds any file, or undefined. */
export function findRpmDatabase(index: ReadonlyMap<string, TarHeader>): string | undefined {
  return RPM_DIRS.find((d) => index.get(d)?.type === 'dir' && dbFiles(index, d).length > 0);
}

export interface RpmQueryOptions {
  index: ReadonlyMap<string, TarHeader>;
  /** Reads regular files out of the image. */
  readFiles: (paths: string[]) => Promise<Map<string, Buffer>>;
  runner: CommandRunner;
  /** The database directory inside the image (from findRpmDatabase). */
  dbDir: string;
  /** Parent of the temporary copy (default: the OS temp dir). */
  tmpDir?: string;
}

/**
 * Copies the database out of the image and runs `rpm --dbpath <copy> <args>`; returns stdout.
 * The copy is removed on every exit path. Throws when the rpm tool is missing or reports an error.
 */
export async function queryRpmDatabase(opts: RpmQueryOptions, args: string[]): Promise<string> {
  if (!(opts.runner.which ? opts.runner.which('rpm') : which('rpm')))
    throw new UserError(
      `the image has an rpm database (${opts.dbDir}) but the rpm tool is not installed here (package rpm)`,
    );
  const files = dbFiles(opts.index, opts.dbDir);
  const total = files.reduce((n, p) => n + (opts.index.get(p)?.size ?? 0), 0);
  if (total > MAX_RPMDB_BYTES)
    throw new PackageDatabaseError(opts.dbDir, `${total} bytes of database files (limit ${MAX_RPMDB_BYTES})`);
  const contents = await opts.readFiles(files);
  const tmp = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'keel-rpmdb-'));
  try {
    for (const [p, buf] of contents) {
      const dest = copyPath(tmp, p, opts.dbDir);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.writeFileSync(dest, buf, { flag: 'wx' });
    }
    const r = await opts.runner.run('rpm', ['--dbpath', tmp, ...args]);
    if (/error:/.test(r.stderr))
      throw new PackageDatabaseError(
        opts.dbDir,
        `rpm cannot read it: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`,
      );
    return r.stdout.toString('utf8');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Where a database file is copied to; a path that leaves the copy is refused, naming it. */
function copyPath(tmp: string, file: string, dbDir: string): string {
  try {
    return joinInside(tmp, file.slice(dbDir.length + 1));
  } catch (e) {
    if (e instanceof UnsafePathError) throw new PackageDatabaseError(file, `its path is unsafe: ${e.reason}`);
    throw e;
  }
}

/** One line per package; tab-separated (a tab or newline in a value makes the line invalid). */
export const RPM_PACKAGE_FORMAT =
  '%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{LICENSE}\\n';

const RPM_NAME = /^[A-Za-z0-9._+^~-]+$/;
const RPM_VR = /^[A-Za-z0-9._+^~]+$/;
const RPM_ARCH = /^[A-Za-z0-9_]+$/;
const SOURCE_RPM = /^([A-Za-z0-9._+^~-]+)-([A-Za-z0-9._+^~]+)-([A-Za-z0-9._+^~]+)\.(?:no)?src\.rpm$/;

/**
 * Parses `rpm -qa --qf RPM_PACKAGE_FORMAT` output. The `gpg-pubkey` entries (imported signing
 * keys, not software) are left out. A line that does not have the shape rpm writes is refused.
 */
export function parseRpmPackages(stdout: string, dbDir: string): InstalledPackage[] {
  const out: InstalledPackage[] = [];
  for (const [i, line] of stdout.split('\n').entries()) {
    if (line === '') continue;
    const f = line.split('\t');
    const [name, epoch, version, release, arch, sourceRpm, license] = f;
    const bad = (what: string) =>
      new PackageDatabaseError(dbDir, `package ${i + 1}: ${what} (${JSON.stringify(line.slice(0, 120))})`);
    if (f.length !== 7) throw bad('not the NAME EPOCH VERSION RELEASE ARCH SOURCERPM LICENSE record rpm writes');
    if (name === 'gpg-pubkey') continue;
    if (!RPM_NAME.test(name!)) throw bad('invalid package name');
    if (!RPM_VR.test(version!) || !RPM_VR.test(release!)) throw bad('invalid version or release');
    if (!RPM_ARCH.test(arch!)) throw bad('invalid architecture');
    if (epoch !== '(none)' && !/^\d+$/.test(epoch!)) throw bad('invalid epoch');
    const src = SOURCE_RPM.exec(sourceRpm!);
    if (sourceRpm !== '(none)' && !src) throw bad('invalid source rpm name');
    out.push({
      type: 'rpm',
      name: name!,
      version: `${version}-${release}`,
      ...(epoch !== '(none)' ? { epoch } : {}),
      architecture: arch!,
      ...(src ? { sourceName: src[1]!, sourceVersion: `${src[2]}-${src[3]}` } : {}),
      ...(license && license !== '(none)' ? { licenses: [license] } : {}),
    });
  }
  return out;
}
