import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.js';
import type { Logger } from './log.js';

/**
 * Up-front disk space checks: a hop that writes gigabytes (an unpacked rootfs, a disk image, a
 * layout) says before it starts how much it needs where, and refuses when the filesystem lacks
 * it, instead of dying half-way with ENOSPC and leaving a runner full of partial files.
 *
 * Needs are estimates from what is known before the work (layer sizes from the manifest, file
 * sizes from an image's index); needs on one filesystem add up; a margin (input
 * `space-margin-gib`, default 1 GiB) is kept free on top of them for logs and the unexpected.
 */
export const GiB = 1024 ** 3;

/** Free space for an unprivileged writer on the filesystem holding a directory, and which one it is. */
export interface FreeSpace {
  bytes: number;
  /** Identifies the filesystem (needs on the same one add up). */
  filesystem: string;
}

export type FreeSpaceProbe = (dir: string) => FreeSpace;

/** statfs(2) of `dir`, or of its nearest existing ancestor when it is not created yet. */
export const statfsProbe: FreeSpaceProbe = (dir) => {
  let d = path.resolve(dir);
  while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  const st = fs.statfsSync(d);
  return { bytes: st.bavail * st.bsize, filesystem: String(fs.statSync(d).dev) };
};

export interface SpaceNeed {
  /** Where the bytes are written. */
  dir: string;
  bytes: number;
  /** What they are, for the message ("the unpacked rootfs"). */
  what: string;
}

/** GiB kept free on top of the estimate, or 'off' (no check: a warning says so). */
export type SpaceMargin = number | 'off';

export interface SpaceCheckOptions {
  /** The hop, for the message ("smoke-boot needs …"). */
  hop: string;
  margin: SpaceMargin;
  probe?: FreeSpaceProbe;
  log: Logger;
}

/**
 * Unpacked bytes for a compressed (gzip/zstd) image size: only where nothing better is at hand
 * (an image not downloaded yet, which a tool will pull and unpack itself); bootc images compress
 * about 2-2.7 times.
 */
export function estimateUnpacked(compressedBytes: number): number {
  return compressedBytes * 2.5;
}

export const gib = (n: number): string => `${(n / GiB).toFixed(1)} GiB`;

/**
 * Refuses (UserError) when a filesystem has less free space than the needs written to it plus
 * the margin: "<hop> needs N GiB in DIR (for …), M GiB free". Logs what it found otherwise.
 */
export function requireSpace(needs: SpaceNeed[], opts: SpaceCheckOptions): void {
  const wanted = needs.filter((n) => n.bytes > 0);
  if (!wanted.length) return;
  if (opts.margin === 'off') {
    opts.log.warning(
      `disk space check off (space-margin-gib: off): ${opts.hop} will write about ${gib(sum(wanted))} (${describe(wanted)})`,
    );
    return;
  }
  const probe = opts.probe ?? statfsProbe;
  const byFs = new Map<string, { dir: string; free: number; needs: SpaceNeed[] }>();
  for (const n of wanted) {
    const f = probe(n.dir);
    const group = byFs.get(f.filesystem);
    if (group) group.needs.push(n);
    else byFs.set(f.filesystem, { dir: n.dir, free: f.bytes, needs: [n] });
  }
  const margin = opts.margin * GiB;
  for (const g of byFs.values()) {
    const total = sum(g.needs) + margin;
    const detail = `for ${describe(g.needs)}, and a ${opts.margin} GiB margin (space-margin-gib)`;
    if (g.free < total)
      throw new UserError(
        `not enough disk space: ${opts.hop} needs ${gib(total)} in ${g.dir} (${detail}), ${gib(g.free)} free; ` +
          'free some space or point the directory at a larger volume',
      );
    opts.log.info(`disk space: ${opts.hop} needs ${gib(total)} in ${g.dir} (${detail}), ${gib(g.free)} free`);
  }
}

/** One need on one directory. */
export function requireSpaceIn(dir: string, bytes: number, what: string, opts: SpaceCheckOptions): void {
  requireSpace([{ dir, bytes, what }], opts);
}

const sum = (needs: SpaceNeed[]) => needs.reduce((n, x) => n + x.bytes, 0);
const describe = (needs: SpaceNeed[]) => needs.map((n) => `${n.what} ${gib(n.bytes)}`).join(' + ');
