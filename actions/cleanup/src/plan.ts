import { daysBetween, parseTag, releaseDateOf, type ParsedTag, type TagWords } from '../../lib/tags.js';

/**
 * What to delete from one repository, decided from a snapshot of it (pure: no I/O, so every rule
 * is unit-tested). Registries delete manifests, not tags (distribution 2.x; a GitHub package
 * version carries all its tags), so the unit of deletion is a digest: an expired tag goes only
 * when nothing that is kept points at its digest, directly or through an index.
 */
export interface Inventory {
  /** tag → manifest digest, every tag of the repository. */
  tags: Map<string, string>;
  /** digest → the manifests it references (an index's children; the referrers fallback index's entries). */
  children: Map<string, string[]>;
  /** digest → untagged manifests whose `subject` is it (the OCI referrers API, where there is one). */
  referrers: Map<string, string[]>;
  /** digest → build time (created label, else config created), for pr-<N> digests. */
  created: Map<string, Date | undefined>;
}

export interface PlanOptions {
  /** UTC YYYYMMDD the ages are counted to (the run's release date). */
  today: string;
  keepDays: number;
  /** The pull request whose pr-<N> goes now, whatever its age. */
  closedPr?: number;
  words: TagWords;
  /** How this backend deletes, for the reason of a kept tag ("a package version carries all its tags"). */
  deletesWhat: string;
}

export interface Part {
  digest: string;
  /** Tags that disappear with it (none for an untagged child or referrer). */
  tags: string[];
  role: 'attachment' | 'referrer' | 'child';
}

export interface Deletion {
  digest: string;
  /** The expired tags on it. */
  tags: string[];
  why: string;
  /** Deleted first, in this order: attachments and referrers, then untagged children. */
  parts: Part[];
}

export interface Plan {
  deletions: Deletion[];
  kept: { tag: string; reason: string }[];
}

type Verdict = { expired: true; why: string } | { expired: false; reason: string };

/** Whether one tag has expired, by Keel's grammar; attachments are decided by their subject. */
function verdictOf(
  t: Exclude<ParsedTag, { kind: 'attachment' }>,
  digest: string,
  inv: Inventory,
  o: PlanOptions,
): Verdict {
  switch (t.kind) {
    case 'stable':
    case 'stable-dated':
    case 'date':
      return { expired: false, reason: 'released: never deleted' };
    case 'candidate':
      return { expired: false, reason: 'the current candidate: never deleted' };
    case 'candidate-dated':
      return byAge(daysBetween(t.date, o.today), o.keepDays, 'dated');
    case 'pr': {
      if (t.pr === o.closedPr) return { expired: true, why: `pull request #${t.pr} closed` };
      const created = inv.created.get(digest);
      if (!created) {
        return {
          expired: false,
          reason: 'no build date (org.opencontainers.image.created label or config created): not aged out',
        };
      }
      return byAge(daysBetween(releaseDateOf(created), o.today), o.keepDays, 'built');
    }
    case 'other':
      return { expired: false, reason: "not in Keel's tag grammar: never deleted" };
  }
}

/** `how` says where the age comes from: "dated" (the tag's date) or "built" (the image's). */
function byAge(age: number, keepDays: number, how: string): Verdict {
  const ago = `${how} ${age} day${age === 1 ? '' : 's'} ago`;
  return age > keepDays
    ? { expired: true, why: `${ago} (keep-days ${keepDays})` }
    : { expired: false, reason: `${ago}, within keep-days ${keepDays}` };
}

/** Every digest reachable from `roots` through `children`, each with what protects it. */
function closure(roots: Map<string, string>, inv: Inventory): Map<string, string> {
  const out = new Map<string, string>();
  const stack = [...roots.entries()];
  while (stack.length) {
    const [d, why] = stack.pop()!;
    if (out.has(d)) continue;
    out.set(d, why);
    for (const c of inv.children.get(d) ?? []) stack.push([c, `referenced by an index that is ${why}`]);
  }
  return out;
}

const short = (d: string) => d.slice(0, 19);

interface Attachment {
  tag: string;
  digest: string;
  subject: string;
}

export function planCleanup(inv: Inventory, o: PlanOptions): Plan {
  const kept: Plan['kept'] = [];
  const expired = new Map<string, { tag: string; why: string }[]>();
  const keepers = new Map<string, string>();
  const attachments: Attachment[] = [];
  for (const [tag, digest] of [...inv.tags.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const t = parseTag(tag, o.words);
    if (t.kind === 'attachment') {
      attachments.push({ tag, digest, subject: t.subject });
      continue;
    }
    const v = verdictOf(t, digest, inv, o);
    if (v.expired) expired.set(digest, [...(expired.get(digest) ?? []), { tag, why: v.why }]);
    else {
      kept.push({ tag, reason: v.reason });
      if (!keepers.has(digest)) keepers.set(digest, `tagged ${tag}`);
    }
  }

  // Everything a kept tag reaches stays. Attachments follow their subject: those about an image
  // that stays are keepers too, with what they reference.
  const fromTags = closure(keepers, inv);
  const doomed = new Set<string>();
  for (const d of expired.keys()) {
    if (!fromTags.has(d)) for (const c of closure(new Map([[d, '']]), inv).keys()) if (!fromTags.has(c)) doomed.add(c);
  }
  const attachmentKeepers = new Map(
    attachments.filter((a) => !doomed.has(a.subject)).map((a) => [a.digest, `tagged ${a.tag}`] as const),
  );
  const protectedBy = new Map([...closure(attachmentKeepers, inv), ...fromTags]);

  const deletions: Deletion[] = [];
  const taken = new Set<string>();
  for (const [digest, tags] of expired) {
    const protector = protectedBy.get(digest);
    if (protector) {
      for (const e of tags) {
        kept.push({
          tag: e.tag,
          reason: `expired (${e.why}), but ${short(digest)}… is also ${protector}; ${o.deletesWhat}, so deleting it would remove that too`,
        });
      }
      continue;
    }
    deletions.push({
      digest,
      tags: tags.map((e) => e.tag),
      why: tags.map((e) => `${e.tag}: ${e.why}`).join('; '),
      parts: partsOf(digest, attachments, inv, protectedBy, taken),
    });
  }
  const goes = new Set(deletions.flatMap((d) => d.parts.flatMap((p) => p.tags)));
  for (const a of attachments)
    if (!goes.has(a.tag)) kept.push({ tag: a.tag, reason: attachmentKeptReason(a, inv, doomed, protectedBy) });
  return { deletions, kept: kept.sort((a, b) => a.tag.localeCompare(b.tag)) };
}

function attachmentKeptReason(
  a: Attachment,
  inv: Inventory,
  doomed: Set<string>,
  protectedBy: Map<string, string>,
): string {
  if (doomed.has(a.subject))
    return `about ${short(a.subject)}…, which goes, but it is also ${protectedBy.get(a.digest) ?? 'kept'}`;
  const known =
    [...inv.tags.values()].includes(a.subject) || [...inv.children.values()].some((c) => c.includes(a.subject));
  return known
    ? `about ${short(a.subject)}…, which is kept`
    : `about ${short(a.subject)}…, which is neither tagged nor referenced here: left alone (signatures may live apart from their images)`;
}

/**
 * What goes with `root`, in deletion order: for the root and each untagged child, its attachment
 * tags (with what they reference) and referrers; then the children, deepest first. Anything
 * protected, or already taken by another deletion, is skipped. Deleting the parts first means an
 * interrupted run leaves the expired tag in place for the next run to finish.
 */
function partsOf(
  root: string,
  attachments: Attachment[],
  inv: Inventory,
  protectedBy: Map<string, string>,
  taken: Set<string>,
): Part[] {
  const tree = [...closure(new Map([[root, '']]), inv).keys()].filter((d) => d === root || !protectedBy.has(d));
  const parts: Part[] = [];
  const add = (digest: string, tags: string[], role: Part['role']) => {
    if (digest === root || protectedBy.has(digest) || taken.has(digest)) return;
    taken.add(digest);
    parts.push({ digest, tags, role });
  };
  for (const subject of tree) {
    for (const a of attachments.filter((x) => x.subject === subject)) {
      // The attachment's own references (a referrers fallback index lists bundles) go before it.
      for (const d of [...closure(new Map([[a.digest, '']]), inv).keys()].reverse()) {
        const tags = attachments.filter((x) => x.digest === d && x.subject === subject).map((x) => x.tag);
        add(d, tags, d === a.digest ? 'attachment' : 'referrer');
      }
    }
    for (const r of inv.referrers.get(subject) ?? []) add(r, [], 'referrer');
  }
  for (const child of tree.slice(1).reverse()) add(child, [], 'child');
  taken.add(root);
  return parts;
}
