import type { InventoryDiff, PackageChange, PackageRef } from '../../lib/packages/index.js';
import { code, table } from '../../lib/summary.js';

/**
 * The changelog of a release in two forms: JSON (for tools and the GitHub Release step) and
 * Markdown (release notes and the job summary). The kernel comes first: it is what users of
 * an image-based OS ask about ("did the kernel change?"); then changed, added, removed.
 */
export interface ChangelogFacts {
  image: { ref: string; digest: string };
  /** Undefined for a first release. */
  previous?: { ref: string; digest: string };
  /** What was looked for when there is no previous image. */
  previousWanted: string;
  diff: InventoryDiff;
  /** How many packages the new image has (a first release lists them all as added). */
  packages: number;
}

export function changelogJson(f: ChangelogFacts): string {
  return `${JSON.stringify(
    {
      image: f.image,
      previous: f.previous ?? null,
      firstRelease: !f.previous,
      kernel: f.diff.kernel,
      counts: { added: f.diff.added.length, removed: f.diff.removed.length, changed: f.diff.changed.length },
      changed: f.diff.changed,
      added: f.diff.added,
      removed: f.diff.removed,
    },
    null,
    2,
  )}\n`;
}

/** `name`, or `name:arch` when the name occurs with more than one architecture. */
function namer(d: InventoryDiff): (p: PackageRef | PackageChange) => string {
  const arches = new Map<string, Set<string>>();
  for (const p of [...d.added, ...d.removed, ...d.changed]) {
    arches.set(p.name, (arches.get(p.name) ?? new Set()).add(p.architecture));
  }
  return (p) => ((arches.get(p.name)?.size ?? 0) > 1 ? `${p.name}:${p.architecture}` : p.name);
}

function kernelLine(d: InventoryDiff, first: boolean): string {
  const fmt = (ks: string[]) => (ks.length ? ks.map(code).join(', ') : 'none');
  if (first) return `**Kernel:** ${fmt(d.kernel.to)}`;
  return d.kernel.changed
    ? `**Kernel:** ${fmt(d.kernel.from)} → ${fmt(d.kernel.to)}`
    : `**Kernel:** ${fmt(d.kernel.to)} (unchanged)`;
}

export function changelogMarkdown(f: ChangelogFacts): string {
  const d = f.diff;
  const name = namer(d);
  const short = (digest: string) => code(digest.replace(/^sha256:/, '').slice(0, 12));
  const out: string[] = [];
  if (!f.previous) {
    out.push(
      `## First release\n`,
      `There is no previous image at ${code(f.previousWanted)}: this is the first release of ${short(f.image.digest)}.\n`,
      `${kernelLine(d, true)}\n`,
      `<details><summary>${f.packages} packages</summary>\n\n${table(
        ['package', 'version'],
        d.added.map((p) => [name(p), p.version]),
      )}\n</details>\n`,
    );
    return out.join('\n');
  }
  out.push(
    `## Changes since ${code(f.previous.ref)}\n`,
    `${short(f.image.digest)} compared with ${short(f.previous.digest)}: ${d.changed.length} changed, ${d.added.length} added, ${d.removed.length} removed.\n`,
    `${kernelLine(d, false)}\n`,
  );
  if (d.changed.length)
    out.push(
      `### Changed\n\n${table(
        ['package', 'old', 'new'],
        d.changed.map((c) => [name(c), c.from, c.to]),
      )}`,
    );
  if (d.added.length)
    out.push(
      `### Added\n\n${table(
        ['package', 'version'],
        d.added.map((p) => [name(p), p.version]),
      )}`,
    );
  if (d.removed.length)
    out.push(
      `### Removed\n\n${table(
        ['package', 'version'],
        d.removed.map((p) => [name(p), p.version]),
      )}`,
    );
  if (!d.changed.length && !d.added.length && !d.removed.length && !d.kernel.changed) out.push('No package changed.\n');
  return out.join('\n');
}
