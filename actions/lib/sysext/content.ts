import { UserError } from '../errors.js';
import { unsafeEntryReason } from '../safe-path.js';
import type { EntryType } from '../tar/reader.js';
import { EXTENSION_RELEASE_DIR } from './release.js';

/**
 * What goes into a system extension, decided from a list of entries (a prepared tree, or the top
 * layer of a throw-away package build) against the base's file index. systemd-sysext overlays
 * only /usr and /opt, so anything else is refused by name; an entry that would hide a file of
 * the base is refused unless declared; a removal (whiteout) of a base path is refused (an
 * extension adds, it cannot delete). Pure: no I/O.
 */
export interface ContentEntry {
  /** Normalised relative path ("usr/bin/foo"); "." is the root. */
  path: string;
  type: EntryType;
  /** Hardlink target (normalised) for type hardlink. */
  linkname?: string;
}

export interface ContentRules {
  /** `tree`: everything outside /usr and /opt is the user's and refused. `packages`: the package manager's own state is dropped. */
  mode: 'tree' | 'packages';
  /** Absolute paths dropped deliberately (each with everything below it). */
  exclude: string[];
  /** Absolute paths of base files the extension may replace. */
  allowOverrides: string[];
  /** The extension's name (its own extension-release is the only one it may carry). */
  name: string;
}

export interface ContentDecision {
  /** Entries shipped in the extension (usr/… and opt/…, the top-level directories included). */
  ship: ContentEntry[];
  /** Paths dropped by `exclude`. */
  excluded: string[];
  /** How many entries of package-manager state were dropped (packages mode). */
  bookkeeping: number;
  /** Paths of base files the extension replaces, as allowed by allowOverrides. */
  overrides: string[];
}

export const HIERARCHIES = ['usr', 'opt'] as const;

/**
 * State a package install writes that is not the software itself: the package database (dpkg
 * keeps it in /usr/lib/sysimage/dpkg on a bootc-shaped base, hence the /usr entry), apt's lists,
 * caches and logs, the dynamic linker cache, deb-systemd-helper's records, scratch space.
 */
export const PACKAGE_BOOKKEEPING = [
  'usr/lib/sysimage/dpkg',
  'var/lib/dpkg',
  'var/lib/apt',
  'var/cache',
  'var/log',
  'var/lib/systemd/deb-systemd-helper-enabled',
  'var/lib/systemd/deb-systemd-helper-masked',
  'etc/ld.so.cache',
  'tmp',
  'var/tmp',
  'run',
];

/** Is `p` one of `prefixes` or below one? (relative paths) */
export function under(p: string, prefixes: readonly string[]): boolean {
  return prefixes.some((x) => p === x || p.startsWith(`${x}/`));
}

function rel(abs: string): string {
  return abs.replace(/^\/+/, '').replace(/\/+$/, '');
}

function inHierarchy(p: string): boolean {
  return under(p, HIERARCHIES);
}

/** Removals recorded as OCI whiteouts in a layer: `.wh.<name>` and the opaque marker. */
export function whiteoutTarget(p: string): { path: string; opaque: boolean } | undefined {
  const slash = p.lastIndexOf('/');
  const dir = slash < 0 ? '' : p.slice(0, slash);
  const base = p.slice(slash + 1);
  if (!base.startsWith('.wh.')) return undefined;
  if (base === '.wh..wh..opq') return { path: dir || '.', opaque: true };
  const name = base.slice('.wh.'.length);
  return { path: dir ? `${dir}/${name}` : name, opaque: false };
}

/** One refusal naming every offending path, grouped by reason. */
export class ContentError extends UserError {
  constructor(readonly problems: { reason: string; paths: string[] }[]) {
    super(`the extension is refused: ${problems.map((p) => `${p.reason}: ${listPaths(p.paths)}`).join('; ')}`);
    this.name = 'ContentError';
  }
}

const SHOWN = 200;
function listPaths(paths: string[]): string {
  const shown = paths.slice(0, SHOWN).map((p) => `/${p}`);
  return paths.length > SHOWN ? `${shown.join(', ')} … and ${paths.length - SHOWN} more` : shown.join(', ');
}

export interface BaseEntry {
  type: string;
}

/**
 * Decides the content. `base` is the base image's final index (path → entry). Throws a
 * ContentError naming every path outside /usr and /opt, every undeclared shadowing of a base
 * file, every removal, and anything that is not a file, directory or symlink.
 */
export function decideContent(
  entries: readonly ContentEntry[],
  base: ReadonlyMap<string, BaseEntry>,
  rules: ContentRules,
): ContentDecision {
  const exclude = rules.exclude.map(rel);
  const allowed = new Set(rules.allowOverrides.map(rel));
  const outside: string[] = [];
  const outsideDirs: string[] = [];
  const shadows: string[] = [];
  const removals: string[] = [];
  const special: string[] = [];
  const foreignRelease: string[] = [];
  const excluded: string[] = [];
  const overrides: string[] = [];
  const ship: ContentEntry[] = [];
  let bookkeeping = 0;
  const ownRelease = `${EXTENSION_RELEASE_DIR}/extension-release.${rules.name}`;

  const unsafe: string[] = [];
  for (const e of entries) {
    if (e.path === '.') continue;
    if (unsafeEntryReason(e.path) ?? (e.type === 'hardlink' ? unsafeEntryReason(e.linkname ?? '') : undefined)) {
      unsafe.push(e.path);
      continue;
    }
    const wh = whiteoutTarget(e.path);
    const target = wh?.path ?? e.path;
    if (under(target, exclude)) {
      excluded.push(target);
      continue;
    }
    if (rules.mode === 'packages' && under(target, PACKAGE_BOOKKEEPING)) {
      bookkeeping++;
      continue;
    }
    if (wh) {
      // A removal inside a directory the build created itself is no removal from the base.
      if (base.has(wh.path) || wh.opaque) removals.push(wh.path);
      continue;
    }
    if (!inHierarchy(e.path)) {
      // A package build copies up every directory it writes below: one the base has is no offence.
      if (e.type !== 'dir') outside.push(e.path);
      else if (rules.mode === 'tree' || !base.has(e.path)) outsideDirs.push(e.path);
      continue;
    }
    if (e.type !== 'file' && e.type !== 'dir' && e.type !== 'symlink' && e.type !== 'hardlink') {
      special.push(`${e.path} (${e.type})`);
      continue;
    }
    if ((HIERARCHIES as readonly string[]).includes(e.path)) {
      if (e.type !== 'dir') special.push(`${e.path} (a ${e.type}, not a directory)`);
      else ship.push(e);
      continue;
    }
    if (e.path.startsWith(`${EXTENSION_RELEASE_DIR}/`) && e.path !== ownRelease) foreignRelease.push(e.path);
    const b = base.get(e.path);
    if (b && !(b.type === 'dir' && e.type === 'dir')) {
      if (allowed.has(e.path)) overrides.push(e.path);
      else shadows.push(e.path);
    }
    ship.push(e);
  }
  // A directory is named only when nothing named lies below it (the offence is its content).
  for (const d of outsideDirs) if (![...outside, ...outsideDirs].some((p) => p.startsWith(`${d}/`))) outside.push(d);
  outside.sort();
  // A hardlink whose target is not shipped would dangle in the image.
  const shipped = new Set(ship.map((e) => e.path));
  const dangling = ship.filter((e) => e.type === 'hardlink' && !shipped.has(e.linkname ?? '')).map((e) => e.path);

  const problems: { reason: string; paths: string[] }[] = [];
  if (unsafe.length) problems.push({ reason: 'unsafe names', paths: unsafe });
  if (outside.length)
    problems.push({
      reason: `${outside.length} path(s) outside /usr and /opt (systemd-sysext overlays only those; drop one deliberately with exclude)`,
      paths: outside,
    });
  if (shadows.length)
    problems.push({
      reason: `${shadows.length} path(s) would shadow a file of the base (declare each in allow-overrides to replace it)`,
      paths: shadows,
    });
  if (removals.length)
    problems.push({
      reason: `${removals.length} path(s) of the base removed (an extension can only add)`,
      paths: removals,
    });
  if (special.length) problems.push({ reason: 'not a file, directory or symlink', paths: special });
  if (foreignRelease.length)
    problems.push({
      reason: `release files of another extension (only extension-release.${rules.name} belongs here)`,
      paths: foreignRelease,
    });
  if (dangling.length) problems.push({ reason: 'hardlinks to paths that are not shipped', paths: dangling });
  if (problems.length) throw new ContentError(problems);

  if (!ship.some((e) => e.type !== 'dir' && e.path !== ownRelease))
    throw new UserError(
      'the extension holds nothing under /usr or /opt (for packages: are they all in the base already?)',
    );
  return { ship, excluded, bookkeeping, overrides };
}
