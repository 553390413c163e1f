// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { planCleanup, type Inventory, type PlanOptions } from '../../actions/cleanup/src/plan.js';
import { daysBetween, parseTag } from '../../actions/lib/tags.js';

/** The cleanup rules on hand-made repository snapshots (the registry runs are in cleanup.test.ts). */
const d = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const att = (digest: string, suffix = 'sig') => `sha256-${digest.slice(7)}${suffix ? `.${suffix}` : ''}`;
const TODAY = '20260315';
const OPTS: PlanOptions = {
  today: TODAY,
  keepDays: 30,
  words: {},
  deletesWhat: 'this registry deletes manifests, not tags',
};

function inv(tags: Record<string, string>, extra: Partial<Omit<Inventory, 'tags'>> = {}): Inventory {
  return {
    tags: new Map(Object.entries(tags)),
    children: extra.children ?? new Map(),
    referrers: extra.referrers ?? new Map(),
    created: extra.created ?? new Map(),
  };
}
const deletedTags = (p: ReturnType<typeof planCleanup>) =>
  p.deletions.flatMap((x) => [...x.parts.flatMap((q) => q.tags), ...x.tags]).sort();
const reasonOf = (p: ReturnType<typeof planCleanup>, tag: string) => p.kept.find((k) => k.tag === tag)?.reason;

describe('tag grammar for cleanup (lib/tags.ts)', () => {
  it('parses every Keel tag and leaves the rest as other', () => {
    expect(parseTag('stable')).toEqual({ kind: 'stable' });
    expect(parseTag('stable.20260101')).toEqual({ kind: 'stable-dated', date: '20260101' });
    expect(parseTag('20260101')).toEqual({ kind: 'date', date: '20260101' });
    expect(parseTag('candidate')).toEqual({ kind: 'candidate' });
    expect(parseTag('candidate.20260101')).toEqual({ kind: 'candidate-dated', date: '20260101' });
    expect(parseTag('pr-12')).toEqual({ kind: 'pr', pr: 12 });
    expect(parseTag(att(d(1)))).toEqual({ kind: 'attachment', subject: d(1), suffix: 'sig' });
    expect(parseTag(att(d(1), ''))).toEqual({ kind: 'attachment', subject: d(1), suffix: '' });
    for (const t of [
      'candidate.20261301',
      'candidate.2026',
      'pr-0',
      'pr-x',
      'latest',
      'nvidia',
      '20261301',
      'sha256-abc.sig',
    ])
      expect([t, parseTag(t).kind]).toEqual([t, 'other']);
    expect(parseTag('edge.20260101', { candidate: 'edge' })).toEqual({ kind: 'candidate-dated', date: '20260101' });
    expect(parseTag('candidate.20260101', { candidate: 'edge' }).kind).toBe('other');
  });

  it('counts whole UTC days across months and leap years', () => {
    expect(daysBetween('20260101', '20260131')).toBe(30);
    expect(daysBetween('20240228', '20240301')).toBe(2);
    expect(daysBetween('20260315', '20260314')).toBe(-1);
  });
});

describe('cleanup plan', () => {
  it('ages candidate.<date> out by the date in the tag, strictly older than keep-days', () => {
    const p = planCleanup(
      inv({ candidate: d(1), 'candidate.20260212': d(2), 'candidate.20260213': d(3), 'candidate.20260101': d(4) }),
      OPTS,
    );
    expect(deletedTags(p)).toEqual(['candidate.20260101', 'candidate.20260212']);
    expect(reasonOf(p, 'candidate.20260213')).toBe('dated 30 days ago, within keep-days 30');
    expect(reasonOf(p, 'candidate')).toBe('the current candidate: never deleted');
    expect(p.deletions.find((x) => x.digest === d(2))!.why).toBe(
      'candidate.20260212: dated 31 days ago (keep-days 30)',
    );
  });

  it('deletes the closed pull request now and other pr-<N> by build date; no date, no deletion', () => {
    const created = new Map([
      [d(1), new Date('2026-03-10T10:00:00Z')],
      [d(2), new Date('2026-01-02T10:00:00Z')],
      [d(3), undefined],
    ]);
    const p = planCleanup(inv({ 'pr-7': d(1), 'pr-8': d(2), 'pr-9': d(3) }, { created }), { ...OPTS, closedPr: 7 });
    expect(deletedTags(p)).toEqual(['pr-7', 'pr-8']);
    expect(p.deletions.find((x) => x.digest === d(1))!.why).toBe('pr-7: pull request #7 closed');
    expect(reasonOf(p, 'pr-9')).toMatch(/^no build date .*not aged out$/);
  });

  it('never deletes a released or current digest, and says why an expired tag on one stays', () => {
    const p = planCleanup(
      inv({
        stable: d(1),
        'stable.20250101': d(2),
        '20250101': d(2),
        candidate: d(3),
        'candidate.20250101': d(2),
        'candidate.20250102': d(3),
        'candidate.20250103': d(4),
        nvidia: d(5),
        'candidate.20250104': d(5),
      }),
      OPTS,
    );
    expect(deletedTags(p)).toEqual(['candidate.20250103']);
    expect(reasonOf(p, 'candidate.20250101')).toBe(
      `expired (dated 438 days ago (keep-days 30)), but ${d(2).slice(0, 19)}… is also tagged 20250101; this registry deletes manifests, not tags, so deleting it would remove that too`,
    );
    expect(reasonOf(p, 'candidate.20250102')).toMatch(/is also tagged candidate;/);
    expect(reasonOf(p, 'candidate.20250104')).toMatch(/is also tagged nvidia;/);
    expect(reasonOf(p, 'nvidia')).toBe("not in Keel's tag grammar: never deleted");
    for (const t of ['stable', 'stable.20250101', '20250101']) expect(reasonOf(p, t)).toBe('released: never deleted');
  });

  it('keeps a child of a released index (and its signature) even when an expired tag names it', () => {
    const children = new Map([[d(10), [d(11), d(12)]]]);
    const p = planCleanup(
      inv({ stable: d(10), 'pr-3': d(11), [att(d(11))]: d(20), [att(d(10))]: d(21) }, { children }),
      { ...OPTS, closedPr: 3 },
    );
    expect(p.deletions).toEqual([]);
    expect(reasonOf(p, 'pr-3')).toMatch(/is also referenced by an index that is tagged stable;/);
    expect(reasonOf(p, att(d(11)))).toMatch(/which is kept$/);
    expect(reasonOf(p, att(d(10)))).toMatch(/which is kept$/);
  });

  it('deletes an expired index with its signatures, attestations, referrers and children, parts first', () => {
    const children = new Map([
      [d(10), [d(11), d(12)]],
      [d(30), [d(31)]],
    ]);
    const referrers = new Map([[d(10), [d(40)]]]);
    const p = planCleanup(
      inv(
        {
          'candidate.20250101': d(10),
          [att(d(10))]: d(20),
          [att(d(10), 'att')]: d(21),
          [att(d(11))]: d(22),
          [att(d(10), '')]: d(30),
          stable: d(50),
          [att(d(50))]: d(51),
        },
        { children, referrers },
      ),
      OPTS,
    );
    expect(p.deletions).toHaveLength(1);
    const del = p.deletions[0]!;
    expect(del.digest).toBe(d(10));
    const order = del.parts.map((x) => x.digest);
    // Every attachment and referrer goes before the children, the children before the index.
    expect(new Set(order)).toEqual(new Set([d(20), d(21), d(22), d(30), d(31), d(40), d(11), d(12)]));
    expect(order.indexOf(d(31))).toBeLessThan(order.indexOf(d(30)));
    expect(Math.max(...[d(20), d(21), d(22), d(30), d(31), d(40)].map((x) => order.indexOf(x)))).toBeLessThan(
      Math.min(order.indexOf(d(11)), order.indexOf(d(12))),
    );
    expect(del.parts.find((x) => x.digest === d(22))!.tags).toEqual([att(d(11))]);
    expect(deletedTags(p)).toEqual(
      [att(d(10), ''), att(d(10), 'att'), att(d(10)), att(d(11)), 'candidate.20250101'].sort(),
    );
    expect(reasonOf(p, att(d(50)))).toMatch(/which is kept$/);
  });

  it('keeps a child shared with a released index while deleting the expired index itself', () => {
    const children = new Map([
      [d(10), [d(1), d(2)]],
      [d(20), [d(2), d(3)]],
    ]);
    const p = planCleanup(inv({ 'pr-4': d(10), stable: d(20), [att(d(2))]: d(5) }, { children }), {
      ...OPTS,
      closedPr: 4,
    });
    expect(p.deletions.map((x) => x.digest)).toEqual([d(10)]);
    expect(p.deletions[0]!.parts.map((x) => x.digest)).toEqual([d(1)]);
    expect(reasonOf(p, att(d(2)))).toMatch(/which is kept$/);
  });

  it('leaves alone signatures whose image is not in the repository', () => {
    const p = planCleanup(inv({ [att(d(99))]: d(98) }), OPTS);
    expect(p.deletions).toEqual([]);
    expect(reasonOf(p, att(d(99)))).toMatch(/neither tagged nor referenced here: left alone/);
  });

  it('deletes each digest once when two expired tags share it', () => {
    const p = planCleanup(inv({ 'candidate.20250101': d(1), 'pr-2': d(1), [att(d(1))]: d(2) }), {
      ...OPTS,
      closedPr: 2,
    });
    expect(p.deletions).toHaveLength(1);
    expect(p.deletions[0]!.tags.sort()).toEqual(['candidate.20250101', 'pr-2']);
    expect(p.deletions[0]!.parts).toEqual([{ digest: d(2), tags: [att(d(1))], role: 'attachment' }]);
  });
});
