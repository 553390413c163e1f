import type { Logger } from '../../lib/log.js';
import type { Backend } from './backends.js';
import type { Snapshotter } from './inventory.js';
import { planCleanup, type Plan, type PlanOptions } from './plan.js';

export interface CleanupRequest {
  options: Omit<PlanOptions, 'deletesWhat'>;
  dryRun: boolean;
}

export interface CleanupReport {
  plan?: Plan;
  /** Tags that are gone, with the digest they pointed at (in dry-run: none). */
  deleted: { tag: string; digest: string }[];
  /** Untagged manifests deleted with them (children, referrers). */
  untagged: { digest: string; role: string }[];
  /** Deletions planned by the first snapshot that the second no longer allowed. */
  deferred: { tag: string; reason: string }[];
}

/**
 * Plans from a snapshot and, unless dry-run, deletes. Just before deleting it takes a second
 * snapshot and only deletes what both plans agree on, so a tag moved meanwhile (a promotion
 * pointing `stable` at a digest the first snapshot saw as expired) is never lost. `report` is
 * filled as deletions happen, so a failure still says what was done.
 */
export async function runCleanup(
  snap: Snapshotter,
  backend: Backend,
  req: CleanupRequest,
  report: CleanupReport,
  log: Logger,
): Promise<void> {
  const options: PlanOptions = { ...req.options, deletesWhat: backend.deletesWhat };
  const first = await planFrom(snap, options);
  report.plan = first;
  if (req.dryRun) return;
  const second = await planFrom(snap, options);
  report.plan = second;
  const agreed = new Set(first.deletions.map((d) => d.digest));
  for (const d of second.deletions) {
    if (!agreed.has(d.digest)) {
      for (const tag of d.tags)
        report.deferred.push({ tag, reason: 'became deletable while this run was planning: left for the next run' });
      continue;
    }
    for (const p of d.parts) {
      const gone = await backend.deleteDigest(p.digest);
      log.info(
        `${gone ? 'deleted' : 'already gone:'} ${p.role} ${p.digest}${p.tags.length ? ` (${p.tags.join(', ')})` : ''}`,
      );
      if (p.tags.length) for (const tag of p.tags) report.deleted.push({ tag, digest: p.digest });
      else report.untagged.push({ digest: p.digest, role: p.role });
    }
    const gone = await backend.deleteDigest(d.digest);
    log.info(`${gone ? 'deleted' : 'already gone:'} ${d.digest} (${d.why})`);
    for (const tag of d.tags) report.deleted.push({ tag, digest: d.digest });
  }
}

/** A plan whose deletions include the referrers of everything that goes. */
async function planFrom(snap: Snapshotter, options: PlanOptions): Promise<Plan> {
  const inv = await snap.take();
  const draft = planCleanup(inv, options);
  const going = draft.deletions.flatMap((d) => [
    d.digest,
    ...d.parts.filter((p) => p.role === 'child').map((p) => p.digest),
  ]);
  if (!going.length) return draft;
  await snap.addReferrers(inv, going);
  return planCleanup(inv, options);
}
