// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordingIO } from '../../actions/lib/io.js';
import { run } from '../../actions/promote/src/main.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { fakeRunner } from '../harness/fake-runner.js';
import { attachTamperedSignature, signDigest, testKey, type TestKey } from '../harness/signing.js';

/**
 * promote's run() through recordingIO: the signed, tested digest lands under the dated tags and
 * then the moving one (stable last), byte for byte; a re-run writes nothing; the signature gate
 * and require-tag refuse before any tag moves, and bad input before any request.
 */
let reg: FakeRegistry;
let work: string;
let key: TestKey;
let signed: string;
let other: string;
let tampered: string;
const NOW = new Date('2025-03-04T05:06:07Z');
beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-promote-'));
  key = testKey();
  signed = await seedImage(reg, 'keel/os', 'candidate', path.join(work, 'a'));
  other = await seedImage(reg, 'keel/os', 'nightly', path.join(work, 'b'));
  tampered = await seedImage(reg, 'keel/os', 'tampered', path.join(work, 'c'));
  await signDigest(`${reg.host}/keel/os@${signed}`, key);
  await signDigest(`${reg.host}/keel/os@${other}`, key);
  await attachTamperedSignature(`${reg.host}/keel/os@${tampered}`, key);
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const promote = (repo: string, digest: string, extra: Record<string, string> = {}) => {
  const runner = fakeRunner();
  const io = recordingIO(
    { 'image-ref': `${reg.host}/${repo}@${digest}`, 'public-key': key.pem, 'tls-verify': 'false', ...extra },
    { now: () => NOW },
    runner,
  );
  return { io, runner, done: run(io) };
};
/** Tag writes (manifest PUTs) the registry saw since `from`, as `repo:tag`. */
const tagWrites = (from: number) =>
  reg.requests
    .slice(from)
    .filter((r) => r.startsWith('PUT ') && r.includes('/manifests/') && !r.includes('.sig'))
    .map((r) => /^PUT \/v2\/(.+)\/manifests\/(.+)$/.exec(r)!.slice(1).join(':'));

describe('promote run()', () => {
  it('writes the dated tags, then stable, all on the tested digest, and says where stable was', async () => {
    const before = reg.requests.length;
    const { io, runner, done } = promote('keel/os', signed);
    await done;
    expect(io.outputs).toEqual({ digest: signed, tags: 'stable.20250304\n20250304\nstable' });
    expect(tagWrites(before)).toEqual(['keel/os:stable.20250304', 'keel/os:20250304', 'keel/os:stable']);
    expect(reg.tags('keel/os')).toMatchObject({ stable: signed, 'stable.20250304': signed, '20250304': signed });
    // Byte for byte: the manifest under stable is the one under the tested digest.
    expect(reg.manifest('keel/os', 'stable')!.body).toEqual(reg.manifest('keel/os', signed)!.body);
    const summary = io.summaries.join('');
    expect(summary).toMatch(/verified \(1 legacy signature\(s\) accepted\)/);
    expect(summary).toContain(`- \`stable\`: (new tag) → \`${signed}\``);
    expect(io.groups).toEqual(['verify the signature', `tag ${reg.host}/keel/os`]);
    expect(runner.calls).toEqual([]);
  });

  it('a re-run writes nothing and says so', async () => {
    const before = reg.requests.length;
    const { io, done } = promote('keel/os', signed);
    await done;
    expect(tagWrites(before)).toEqual([]);
    expect(io.summaries.join('')).toMatch(/Re-run: every promotion tag already pointed at this digest/);
    expect(io.logs).toContainEqual({
      level: 'info',
      message: `all promotion tags already point at ${signed}: nothing written`,
    });
  });

  it('moves stable to another digest and records where it pointed (explicit tags, custom stable word)', async () => {
    const before = reg.requests.length;
    const { io, done } = promote('keel/os', other, { tags: 'stable\nv2', 'release-date': '20250305' });
    await done;
    // stable is written last even when listed first.
    expect(tagWrites(before)).toEqual(['keel/os:v2', 'keel/os:stable']);
    expect(io.outputs.tags).toBe('v2\nstable');
    expect(io.summaries.join('')).toContain(`- \`stable\`: \`${signed}\` → \`${other}\``);
  });

  it.each([
    [
      'require-tag that points elsewhere',
      () => promote('keel/os', signed, { 'require-tag': 'nightly' }),
      /it is not currently tagged 'nightly' \(nightly → sha256:/,
    ],
    [
      'require-tag that does not exist',
      () => promote('keel/os', signed, { 'require-tag': 'gone' }),
      /\(gone → no such tag\)/,
    ],
    [
      'a tampered signature',
      () => promote('keel/os', tampered),
      /refusing .*@sha256:[0-9a-f]{64}: its signature does not verify with public-key/,
    ],
    [
      'a digest signed with another key',
      () => promote('keel/os', other, { 'public-key': testKey().pem }),
      /its signature does not verify with public-key/,
    ],
  ])('refuses %s before any tag moves', async (_what, start, message) => {
    const before = reg.requests.length;
    const tags = reg.tags('keel/os');
    const { io, done } = start();
    await expect(done).rejects.toThrow(message);
    expect(tagWrites(before)).toEqual([]);
    expect(reg.tags('keel/os')).toEqual(tags);
    expect(io.outputs.tags).toBeUndefined();
  });

  it.each([
    [
      'a tag instead of a digest',
      { 'image-ref': 'X:candidate' },
      /^Input 'image-ref' has value .*the promoted digest must be the one that was tested/,
    ],
    [
      'no public-key',
      { 'public-key': '' },
      /^Input 'public-key': it is required: promote refuses to run without the cosign public key/,
    ],
    ['a public-key that is not a key', { 'public-key': 'not a key' }, /^Input 'public-key'/],
    ['latest among the tags', { tags: 'v1\nlatest' }, /^Input 'tags'.*Keel never writes 'latest'/],
    [
      'a bad stable word',
      { 'stable-tag': 'Stable!' },
      /^Input 'stable-tag' has value "Stable!": expected a lowercase tag word/,
    ],
    ['an impossible release date', { 'release-date': '20250230' }, /^Input 'release-date'.*a real calendar day/],
    ['too many retries', { retries: '99' }, /^Input 'retries' has value "99"/],
  ])('refuses %s before any request', async (_what, extra, message) => {
    const ex = { ...extra } as Record<string, string>;
    if (ex['image-ref'] === 'X:candidate') ex['image-ref'] = `${reg.host}/keel/os:candidate`;
    const before = reg.requests.length;
    const { io, runner, done } = promote('keel/os', signed, ex);
    await expect(done).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(runner.calls).toEqual([]);
    expect(io.outputs).toEqual({});
  });

  it('allow-unsigned without a key promotes, with the warning in the log and the summary', async () => {
    const digest = await seedImage(reg, 'keel/unsigned', 'candidate', path.join(work, 'd'));
    const { io, done } = promote('keel/unsigned', digest, { 'public-key': '', 'allow-unsigned': 'true' });
    await done;
    expect(reg.tags('keel/unsigned').stable).toBe(digest);
    expect(io.logs.filter((l) => l.level === 'warning').map((l) => l.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/promote does NOT check the image's signature/)]),
    );
    expect(io.summaries.join('')).toMatch(/\[!WARNING\][\s\S]*NOT checked \(allow-unsigned: true, no public-key\)/);
  });
});
