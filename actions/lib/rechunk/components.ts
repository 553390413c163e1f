import path from 'node:path';
import type { CommandRunner } from '../exec.js';
import { which } from '../exec.js';
import type { Logger } from '../log.js';
import { DPKG_DIRS } from '../packages/dpkg.js';
import { findRpmDatabase, queryRpmDatabase, RPM_DIRS } from '../packages/rpm.js';
import type { TarHeader } from '../tar/reader.js';

/**
 * Which component each file belongs to — the unit that changes together:
 * - `kernel`: everything under /usr/lib/modules/<kver>/ (modules, vmlinuz, initramfs) in one group;
 * - `pkg:<name>`: the package that owns the file (dpkg info lists; the rpm database via `rpm`);
 * - `db:<dir>`: the package database (dpkg status, rpmdb), which changes with every update;
 * - `file:<path>`: large unowned files, on their own;
 * - `volatile`: small unowned files the build itself just wrote (mtime within a day of the
 *   image's creation time: stamps, caches like ld.so.cache, generated config): they change with
 *   every build, so they travel together instead of changing the layers of stable neighbours
 *   (bigger build products get a `file:` component of their own);
 * - `dir:<a/b/c>`: other unowned files, grouped by their directory (first three levels).
 * Hardlinks follow their target. Directories go with the first package that lists them.
 */
export interface ComponentOptions {
  largeFileBytes: number;
  /** Unowned files modified at or after this Unix time are build products (`volatile`). */
  volatileSince?: number;
  log: Logger;
  runner?: CommandRunner;
  /** Reads regular files out of the image (dpkg lists, rpm db files). */
  readFiles: (paths: string[]) => Promise<Map<string, Buffer>>;
}

/** path → owning package from dpkg info lists. */
async function dpkgOwners(
  index: Map<string, TarHeader>,
  opts: ComponentOptions,
): Promise<Map<string, string> | undefined> {
  const infoDir = DPKG_DIRS.map((d) => `${d}/info`).find((d) => index.get(d)?.type === 'dir');
  if (!infoDir) return undefined;
  const lists = [...index.keys()].filter((p) => p.startsWith(`${infoDir}/`) && p.endsWith('.list')).sort();
  const contents = await opts.readFiles(lists);
  const owners = new Map<string, string>();
  for (const l of lists) {
    const pkg = path.basename(l, '.list').replace(/:[a-z0-9]+$/, '');
    for (const line of contents.get(l)?.toString('utf8').split('\n') ?? []) {
      const p = line.trim().replace(/^\/+/, '');
      if (!p || p === '.') continue;
      const prev = owners.get(p);
      if (!prev || pkg < prev) owners.set(p, pkg); // shared directories: stable, alphabetical owner
    }
  }
  // Debian's merged /usr: lists name /bin/x, /lib/x while the files live under usr/.
  for (const [p, pkg] of [...owners]) {
    const m = /^(bin|sbin|lib|lib32|lib64|libx32)\/(.*)$/.exec(p);
    if (m && !owners.has(`usr/${p}`) && index.get(m[1]!)?.type === 'symlink') owners.set(`usr/${p}`, pkg);
  }
  opts.log.info(`dpkg: ${lists.length} packages own ${owners.size} paths (${infoDir})`);
  return owners;
}

/** path → owning package from an rpm database, through the rpm tool (if present here). */
async function rpmOwners(
  index: Map<string, TarHeader>,
  opts: ComponentOptions,
): Promise<Map<string, string> | undefined> {
  const dbDir = findRpmDatabase(index);
  if (!dbDir) return undefined;
  if (!opts.runner || !which('rpm')) {
    opts.log.warning(
      `the image has an rpm database (${dbDir}) but the rpm tool is not installed here: grouping by directory instead of by package`,
    );
    return undefined;
  }
  // %{=NAME}: the package name repeated for each file (a bare %{NAME} inside [...] makes
  // rpm >= 4.17 refuse the format and print nothing).
  const stdout = await queryRpmDatabase({ index, readFiles: opts.readFiles, runner: opts.runner, dbDir }, [
    '-qa',
    '--qf',
    '[%{=NAME}\t%{FILENAMES}\n]',
  ]);
  const owners = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [pkg, file] = line.split('\t');
    if (!pkg || !file) continue;
    const p = file.replace(/^\/+/, '');
    const prev = owners.get(p);
    if (!prev || pkg < prev) owners.set(p, pkg);
  }
  opts.log.info(`rpm: ${owners.size} paths owned (${dbDir})`);
  return owners;
}

/** Build-time files at least this large get their own component instead of `volatile`. */
export const VOLATILE_MAX_FILE = 64 * 1024;

export function dirComponent(p: string): string {
  const parts = p.split('/');
  parts.pop();
  return `dir:${parts.slice(0, 3).join('/') || '.'}`;
}

export async function assignComponents(
  index: Map<string, TarHeader>,
  opts: ComponentOptions,
): Promise<Map<string, string>> {
  const owners = (await rpmOwners(index, opts)) ?? (await dpkgOwners(index, opts)) ?? new Map<string, string>();
  if (!owners.size) opts.log.warning('no package database found: grouping every file by directory');
  const out = new Map<string, string>();
  const dbDir = new RegExp(`^(${[...DPKG_DIRS, ...RPM_DIRS].join('|')})(?:/|$)`);
  const infoFile = new RegExp(`^(?:${DPKG_DIRS.join('|')})/info/([^/:]+)(?::[a-z0-9]+)?\\.[a-z0-9_-]+$`);
  for (const [p, e] of index) {
    if (p === '.') continue;
    if (/^usr\/lib\/modules\/[^/]+(\/|$)/.test(p)) {
      out.set(p, 'kernel');
      continue;
    }
    // A package's own dpkg bookkeeping (<pkg>.list, .md5sums, scripts) travels with it, so an
    // upgrade of one package does not re-ship the lists of all the others.
    const info = infoFile.exec(p);
    if (info && e.type !== 'dir') {
      out.set(p, `pkg:${info[1]}`);
      continue;
    }
    const pkg = owners.get(p);
    const db = dbDir.exec(p);
    if (pkg) out.set(p, `pkg:${pkg}`);
    else if (db) out.set(p, `db:${db[1]}`);
    else if (e.type === 'file' && e.size >= opts.largeFileBytes) out.set(p, `file:${p}`);
    else if (e.type !== 'dir' && opts.volatileSince !== undefined && e.mtime >= opts.volatileSince) {
      // Big build products (hwdb.bin, the CA bundle) are usually byte-identical from build to
      // build: alone, their layer is reused. Only the small ones travel together.
      out.set(p, e.type === 'file' && e.size >= VOLATILE_MAX_FILE ? `file:${p}` : 'volatile');
    } else if (e.type === 'dir') out.set(p, `dir:${p.split('/').slice(0, 3).join('/')}`);
    else out.set(p, dirComponent(p));
  }
  // A hardlink must land in the layer of its target (tar extracts it by name).
  for (const [p, e] of index) {
    if (e.type === 'hardlink') {
      const c = out.get(e.linkname);
      if (c) out.set(p, c);
    }
  }
  return out;
}
