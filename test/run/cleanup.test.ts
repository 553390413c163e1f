// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunContext } from '../../actions/lib/context.js';
import { recordingIO } from '../../actions/lib/io.js';
import { run } from '../../actions/cleanup/src/main.js';
import { seedImage, startFakeRegistry, tagManifest, type FakeRegistry } from '../harness/fake-registry.js';
import { fakeRunner } from '../harness/fake-runner.js';
import { signDigest, testKey } from '../harness/signing.js';

/**
 * cleanup's run() through recordingIO against the in-process registry: the plan (dry run: no
 * DELETE), the deletions (an expired candidate with its signature, a closed pull request's
 * image, a pr-<N> built too long ago), everything kept and why (released, current, recent, no
 * build date, outside the grammar, expired but also released), a re-run with nothing left, and
 * bad input refused before any request.
 */
const CREATED = 'org.opencontainers.image.created';
const repo = 'acme/os';
let reg: FakeRegistry;
let work: string;
const d: Record<string, string> = {};
let sig = '';
let sigDigest = '';

beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-cleanup-'));
  const seed = (tag: string, image = {}) => seedImage(reg, repo, tag, path.join(work, tag), image);
  d.stable = await seed('stable');
  tagManifest(reg, repo, d.stable, 'stable.20250101');
  tagManifest(reg, repo, d.stable, 'candidate.20250101'); // expired, but the released digest
  d.candidate = await seed('candidate');
  d.old = await seed('candidate.20250201');
  d.recent = await seed('candidate.20250310');
  d.pr7 = await seed('pr-7', { labels: { [CREATED]: '2025-03-14T00:00:00Z' } });
  d.pr8 = await seed('pr-8', { labels: { [CREATED]: '2025-01-01T00:00:00Z' } });
  d.pr9 = await seed('pr-9');
  d.other = await seed('feature-x');
  await signDigest(`${reg.host}/${repo}@${d.old}`, testKey());
  sig = `${d.old.replace(':', '-')}.sig`;
  sigDigest = reg.tags(repo)[sig]!;
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const closedPr7: Partial<RunContext> = {
  eventName: 'pull_request',
  event: { action: 'closed', pull_request: { number: 7 } },
};
const cleanup = (inputs: Record<string, string>, context: Partial<RunContext> = closedPr7) => {
  const runner = fakeRunner();
  const io = recordingIO(
    { image: `${reg.host}/${repo}`, 'release-date': '20250315', 'tls-verify': 'false', ...inputs },
    context,
    runner,
  );
  return { io, runner, done: run(io) };
};
const deletes = (from: number) => reg.requests.slice(from).filter((r) => r.startsWith('DELETE '));
const lines = (s: string | undefined) => (s ? s.split('\n').sort() : []);

describe('cleanup run()', () => {
  it('dry run: the plan in outputs and summary, nothing deleted', async () => {
    const before = reg.requests.length;
    const { io, runner, done } = cleanup({ 'dry-run': 'true' });
    await done;
    expect(deletes(before)).toEqual([]);
    expect(io.outputs.deleted).toBe('');
    expect(lines(io.outputs.planned)).toEqual(
      [`candidate.20250201 ${d.old}`, `${sig} ${sigDigest}`, `pr-7 ${d.pr7}`, `pr-8 ${d.pr8}`].sort(),
    );
    expect(Object.keys(reg.tags(repo))).toHaveLength(11);
    expect(io.summaries.join('')).toMatch(/Dry run: nothing was deleted; 4 tag\(s\) would be\./);
    expect(io.groups).toEqual(['plan and delete']);
    expect(runner.calls).toEqual([]);
  });

  it('deletes what expired (with its signature), keeps everything else and says why', async () => {
    const before = reg.requests.length;
    const { io, done } = cleanup({});
    await done;
    // The signature goes before its image: an interrupted run leaves the expired tag for the next.
    expect(deletes(before)).toEqual([
      `DELETE /v2/${repo}/manifests/${sigDigest}`,
      `DELETE /v2/${repo}/manifests/${d.old}`,
      expect.stringMatching(/^DELETE \/v2\/acme\/os\/manifests\/sha256:/),
      expect.stringMatching(/^DELETE \/v2\/acme\/os\/manifests\/sha256:/),
    ]);
    expect(new Set(deletes(before).slice(2))).toEqual(
      new Set([`DELETE /v2/${repo}/manifests/${d.pr7}`, `DELETE /v2/${repo}/manifests/${d.pr8}`]),
    );
    expect(lines(io.outputs.deleted)).toEqual(lines(io.outputs.planned));
    expect(Object.keys(reg.tags(repo)).sort()).toEqual(
      [
        'candidate',
        'candidate.20250101',
        'candidate.20250310',
        'feature-x',
        'pr-9',
        'stable',
        'stable.20250101',
      ].sort(),
    );
    const kept = Object.fromEntries(
      lines(io.outputs.kept).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]),
    );
    expect(kept).toEqual({
      stable: 'released: never deleted',
      'stable.20250101': 'released: never deleted',
      candidate: 'the current candidate: never deleted',
      'candidate.20250310': 'dated 5 days ago, within keep-days 30',
      'candidate.20250101': expect.stringMatching(
        /^expired \(dated 73 days ago \(keep-days 30\)\), but sha256:.*is also tagged stable/,
      ),
      'pr-9': expect.stringMatching(/^no build date/),
      'feature-x': "not in Keel's tag grammar: never deleted",
    });
    const summary = io.summaries.join('');
    expect(summary).toMatch(/closed pull request #7/);
    expect(summary).toMatch(/Deleted 4 tag\(s\) and 0 untagged manifest\(s\)\./);
    expect(summary).toContain('pull request #7 closed');
    expect(summary).toMatch(/pr-8: built 73 days ago \(keep-days 30\)/);
  });

  it('a re-run finds nothing to delete', async () => {
    const before = reg.requests.length;
    const { io, done } = cleanup({});
    await done;
    expect(deletes(before)).toEqual([]);
    expect(io.outputs.planned).toBe('');
    expect(io.summaries.join('')).toContain('Nothing to delete.');
  });

  it('an open pull request keeps its recent image (no closed event, explicit keep-days)', async () => {
    const digest = await seedImage(reg, 'acme/open', 'pr-3', path.join(work, 'open'), {
      labels: { [CREATED]: '2025-03-01T00:00:00Z' },
    });
    const { io, done } = cleanup({ image: `${reg.host}/acme/open`, 'keep-days': '30' }, { eventName: 'push' });
    await done;
    expect(reg.tags('acme/open')).toEqual({ 'pr-3': digest });
    expect(io.outputs.kept).toBe('pr-3 built 14 days ago, within keep-days 30');
    // pull-request given as an input deletes it whatever its age.
    const again = cleanup({ image: `${reg.host}/acme/open`, 'pull-request': '3' }, { eventName: 'push' });
    await again.done;
    expect(reg.tags('acme/open')).toEqual({});
    expect(again.io.outputs.deleted).toBe(`pr-3 ${digest}`);
  });

  it.each([
    [
      'github-packages without a token',
      { backend: 'github-packages' },
      /^Input 'token': the github-packages backend needs a token/,
    ],
    [
      'github-packages without an owner',
      { backend: 'github-packages', token: 'ghp_x', image: 'ghcr.io/os' },
      /^Input 'image' has value "ghcr.io\/os"/,
    ],
    ['a tag in the image', { image: 'X:stable' }, /^Input 'image'/],
    ['keep-days 0', { 'keep-days': '0' }, /^Input 'keep-days' has value "0"/],
    [
      'a bad backend',
      { backend: 's3' },
      /^Input 'backend' has value "s3": expected one of: auto, registry, github-packages/,
    ],
    ['a plain-http api-url to another host', { 'api-url': 'http://api.example' }, /^Input 'api-url'/],
    ['a bad release date', { 'release-date': '2025-03-15' }, /^Input 'release-date'/],
  ])('refuses %s before any request', async (_what, extra, message) => {
    const ex = { ...extra } as Record<string, string>;
    if (ex.image === 'X:stable') ex.image = `${reg.host}/${repo}:stable`;
    const before = reg.requests.length;
    const { io, runner, done } = cleanup(ex);
    await expect(done).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(runner.calls).toEqual([]);
    expect(io.outputs).toEqual({});
    expect(JSON.stringify(io.logs)).not.toContain('ghp_x');
  });

  it('a registry failure mid-run still writes the summary and outputs (what was done so far)', async () => {
    const { io, done } = cleanup({ image: '127.0.0.1:9/acme/os' }, { eventName: 'push' });
    await expect(done).rejects.toThrow();
    expect(io.outputs).toEqual({ deleted: '', kept: '', planned: '' });
    expect(io.summaries.join('')).toMatch(/Failed before a plan was made\./);
  });
});
