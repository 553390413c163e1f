import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';

/**
 * Paths that come from an image (tar entry names, package database file lists, BLS entries) are
 * hostile input. Every place that turns one into a path on the runner goes through here.
 */
export class UnsafePathError extends UserError {
  constructor(
    readonly entry: string,
    readonly reason: string,
  ) {
    super(`unsafe path ${JSON.stringify(entry)}: ${reason}`);
    this.name = 'UnsafePathError';
  }
}

/** Why an archive entry name is unsafe (absolute, a `..` component, a NUL byte), or undefined. */
export function unsafeEntryReason(name: string): string | undefined {
  if (name.includes('\0')) return 'it contains a NUL byte';
  if (name.startsWith('/')) return 'it is absolute';
  if (name.split('/').includes('..')) return 'it has a ".." component';
  return undefined;
}

/**
 * `root`/`rel` for writing image content: refuses a name that is unsafe, and any component
 * below `root` that already exists as a symlink (a write through it could land anywhere).
 */
export function joinInside(root: string, rel: string): string {
  const reason = unsafeEntryReason(rel);
  if (reason) throw new UnsafePathError(rel, reason);
  const base = path.resolve(root);
  const dest = path.resolve(base, rel);
  if (dest !== base && !dest.startsWith(base + path.sep)) throw new UnsafePathError(rel, `it leaves ${base}`);
  let cur = base;
  for (const part of path.relative(base, dest).split(path.sep).filter(Boolean)) {
    cur = path.join(cur, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(cur);
    } catch {
      break; // the rest does not exist yet: nothing to follow
    }
    if (st.isSymbolicLink()) throw new UnsafePathError(rel, `${path.relative(base, cur)} is a symlink`);
  }
  return dest;
}

/**
 * An image layer refused as hostile: an entry that would land outside the tree or go through a
 * symlink, or an archive that other tools would read differently. Names the layer and the entry.
 */
export class HostileLayerError extends UserError {
  constructor(
    readonly layer: string,
    readonly entry: string | undefined,
    readonly reason: string,
  ) {
    super(
      `refusing the image: layer ${layer}${entry === undefined ? '' : `, entry ${JSON.stringify(entry)}`}: ${reason}`,
    );
    this.name = 'HostileLayerError';
  }
}
