import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * A digest of the files named by the declarations' `build.inputs` globs (the paths whose change
 * rebuilds the image). The build passes it as the build-arg BUILD_INPUTS_DIGEST: buildah's
 * layer cache does not key a RUN on the content of a `--mount=type=bind` source, so without it
 * an edit to a bind-mounted build script would silently reuse the old layer.
 *
 * Globs are repository-relative: `*` and `?` match within one path segment, `**` any number of
 * segments. A glob without wildcards names a file or a whole directory. `.git` and
 * `node_modules` are never walked.
 */
const SKIP_DIRS = new Set(['.git', 'node_modules']);

export function globToRegExp(glob: string): RegExp {
  let re = '';
  const g = glob.replace(/^\.\//, '').replace(/\/+$/, '');
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*') {
      if (g[i + 1] === '*') {
        // `**/` matches zero or more whole segments; a trailing `**` matches everything below.
        if (g[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else {
      re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  // A plain directory name also matches everything below it.
  return new RegExp(`^${re}(?:/.*)?$`);
}

/** The leading path segments of a glob that contain no wildcard (where to start walking). */
export function staticPrefix(glob: string): string {
  const parts = glob.replace(/^\.\//, '').split('/');
  const out: string[] = [];
  for (const p of parts) {
    if (/[*?[]/.test(p)) break;
    out.push(p);
  }
  return out.join('/');
}

function walk(root: string, rel: string, out: Set<string>): void {
  const abs = path.join(root, rel);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(abs);
  } catch {
    return;
  }
  if (st.isDirectory()) {
    for (const e of fs.readdirSync(abs)) {
      if (SKIP_DIRS.has(e)) continue;
      walk(root, rel ? `${rel}/${e}` : e, out);
    }
  } else if (rel) {
    out.add(rel);
  }
}

/** Files under `root` matched by any of `globs`, repository-relative, sorted. */
export function matchInputs(root: string, globs: string[]): string[] {
  const files = new Set<string>();
  for (const glob of globs) {
    const re = globToRegExp(glob);
    const candidates = new Set<string>();
    walk(root, staticPrefix(glob), candidates);
    for (const f of candidates) if (re.test(f)) files.add(f);
  }
  return [...files].sort();
}

/** sha256 over (path, kind, content) of every matched file; symlinks hash their target. */
export function inputsDigest(root: string, globs: string[]): { digest: string; files: number } {
  const h = crypto.createHash('sha256');
  const files = matchInputs(root, globs);
  for (const rel of files) {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    h.update(rel).update('\0');
    if (st.isSymbolicLink()) h.update('link\0').update(fs.readlinkSync(abs));
    else h.update(st.mode & 0o111 ? 'exec\0' : 'file\0').update(fs.readFileSync(abs));
    h.update('\0');
  }
  return { digest: `sha256:${h.digest('hex')}`, files: files.length };
}
