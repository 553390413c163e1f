import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../actions/lib/errors.js';

/**
 * The two directories the `keel` command works with, kept apart:
 *
 * - `keelHome`: Keel's installation, the package root holding the hop bundles (dist/<hop>/),
 *   the CLI bundle (dist/cli/), the base bootstrap scripts (build_files/base/, build_files/lib/),
 *   the release stamp (workflows-src/keel-release.json) and the docs. In a Keel checkout it is
 *   the checkout; installed with npm it is node_modules/keel.
 * - the project directory: the distro repository `keel run` builds (its declarations, its
 *   Containerfile, its .keel/ run state). Keel's own checkout is one such project.
 */

/** The package.json name that marks Keel's installation root. */
export const PACKAGE_NAME = 'keel';
export const DECLARATIONS_FILE = 'declarations/distro.yaml';
/** Written by `npm pack` (scripts/package-source.mjs), shipped in the package: the commit it was packed from. */
export const PACKAGE_SOURCE_FILE = 'keel-package.json';

/** The nearest directory at or above `start` holding Keel's package.json. */
export function findKeelHome(start: string): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && fs.existsSync(path.join(dir, 'dist'))) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
      } catch {
        /* not a package.json we can read: keep walking */
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`cannot find Keel's installation above ${start}`);
  }
}

/** Keel's installation: from cli/ in a checkout, from dist/cli/ in the bundle. */
export const keelHome = findKeelHome(path.dirname(fileURLToPath(import.meta.url)));

/** True when `dir` is a Keel source checkout (generators and dev tools present), not an installed package. */
export function isKeelCheckout(dir = keelHome): boolean {
  return fs.existsSync(path.join(dir, 'workflows-src', 'build.ts')) && fs.existsSync(path.join(dir, '.git'));
}

/**
 * The project `keel run` works on: `--dir` when given, else the nearest directory at or above
 * the working directory that holds declarations/distro.yaml.
 */
export function findProjectDir(opts: { dir?: string; cwd?: string } = {}): string {
  if (opts.dir) {
    const d = path.resolve(opts.cwd ?? process.cwd(), opts.dir);
    if (!fs.existsSync(path.join(d, DECLARATIONS_FILE)))
      throw new UserError(`--dir ${opts.dir}: no ${DECLARATIONS_FILE} in ${d} (scaffold one with keel init)`);
    return d;
  }
  const start = path.resolve(opts.cwd ?? process.cwd());
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, DECLARATIONS_FILE))) return dir;
    if (path.dirname(dir) === dir)
      throw new UserError(
        `no ${DECLARATIONS_FILE} in ${start} or above: run keel in a distro repository, pass --dir, or scaffold one with keel init`,
      );
  }
}

/** Where Keel's reusable workflows come from, as recorded when the package was packed. */
export interface KeelSource {
  /** Full commit SHA of the Keel tree this installation was packed from (or is checked out at). */
  commit?: string;
  /** True when that tree had uncommitted changes (its files are not exactly the commit's). */
  dirty: boolean;
  /** package.json version. */
  version: string;
}

function gitOut(cwd: string, args: string[]): string | undefined {
  const r = spawnSync('git', ['-C', cwd, ...args], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The commit this installation is: a checkout's HEAD, else the record written when it was packed. */
export function keelSource(home = keelHome): KeelSource {
  const pkg = JSON.parse(fs.readFileSync(path.join(home, 'package.json'), 'utf8')) as { version: string };
  if (fs.existsSync(path.join(home, '.git'))) {
    const commit = gitOut(home, ['rev-parse', '--verify', 'HEAD^{commit}']);
    const status = gitOut(home, ['status', '--porcelain', '--untracked-files=no']);
    return { commit, dirty: Boolean(status), version: pkg.version };
  }
  const recorded = path.join(home, PACKAGE_SOURCE_FILE);
  if (!fs.existsSync(recorded)) return { dirty: false, version: pkg.version };
  const r = JSON.parse(fs.readFileSync(recorded, 'utf8')) as { commit?: unknown; dirty?: unknown };
  const commit = typeof r.commit === 'string' && /^[0-9a-f]{40}$/.test(r.commit) ? r.commit : undefined;
  return { commit, dirty: r.dirty === true, version: pkg.version };
}
