// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordingIO } from '../../actions/lib/io.js';
import { generateKeyPair, keyId, parsePublicKey } from '../../actions/lib/sign/keys.js';
import { run } from '../../actions/sign/src/main.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { fakeRunner } from '../harness/fake-runner.js';

/**
 * sign's run() through recordingIO: key-based signatures land under cosign's tag for the digest
 * and verify right away; every input problem fails before any request, outputs still set.
 */
let reg: FakeRegistry;
let work: string;
let digest: string;
let key: { privatePem: string; publicPem: string };
let other: { privatePem: string; publicPem: string };
const repo = 'keel/signed';
beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-sign-'));
  digest = await seedImage(reg, repo, 'candidate', path.join(work, 'img'));
  key = await generateKeyPair('pw', { N: 32768 });
  other = await generateKeyPair('pw', { N: 32768 });
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const sigTag = (d: string) => `${d.replace(':', '-')}.sig`;
const inputs = (extra: Record<string, string> = {}) => ({
  'image-ref': `${reg.host}/${repo}@${digest}`,
  'private-key': key.privatePem,
  password: 'pw',
  'tls-verify': 'false',
  ...extra,
});

describe('sign run()', () => {
  it.each([
    ['a key, repository identity', {}],
    ['a key and its public half to verify with', { 'public-key': '' }],
    ['a key, one identity per tag', { identity: 'tags', tags: 'candidate\ncandidate.20250304' }],
  ])('signs with %s and verifies what it wrote', async (_what, extra) => {
    const ex = 'public-key' in extra ? { 'public-key': key.publicPem } : extra;
    const runner = fakeRunner();
    const io = recordingIO(inputs(ex), {}, runner);
    await run(io);
    expect(io.outputs).toEqual({
      'attestation-refs': '',
      'file-signatures': '',
      'signature-refs': `${reg.host}/${repo}:${sigTag(digest)}`,
      verified: 'true',
      'signed-digests': digest,
      'key-fingerprint': keyId(parsePublicKey(key.publicPem)).hex,
    });
    expect(io.groups).toEqual(['sign', 'read back and verify']);
    expect(reg.tags(repo)[sigTag(digest)]).toBeDefined();
    // The key's password and every line of the private key are masked.
    expect(io.secrets).toEqual(expect.arrayContaining(['pw', key.privatePem.trim()]));
    expect(io.summaries.join('')).toMatch(/verified: \*\*true\*\*/);
    expect(runner.calls).toEqual([]);
  });

  it.each([
    [
      'a tag instead of a digest',
      { 'image-ref': 'X:candidate' },
      /^Input 'image-ref' has value .*a signature is bound to one manifest digest/,
    ],
    ['a wrong password', { password: 'nope' }, /^Input 'password': it does not decrypt 'private-key' \(wrong password/],
    [
      'a public key of another pair',
      { 'public-key': 'OTHER' },
      /^Input 'public-key': it is not the public half of 'private-key'/,
    ],
    [
      'identity tags without tags',
      { identity: 'tags' },
      /^Input 'tags' has value "": identity 'tags' signs one identity per tag/,
    ],
    [
      'mode key without a key',
      { mode: 'key', 'private-key': '' },
      /^Input 'private-key': mode 'key' needs the cosign private key/,
    ],
    [
      'a bad mode',
      { mode: 'sometimes' },
      /^Input 'mode' has value "sometimes": expected one of: auto, key, keyless, both/,
    ],
  ])('refuses %s before any request; outputs say not verified', async (_what, extra, message) => {
    const ex = Object.fromEntries(
      Object.entries(extra).map(([k, v]) => [
        k,
        v === 'OTHER' ? other.publicPem : v.startsWith('X:') ? `${reg.host}/${repo}:${v.slice(2)}` : v,
      ]),
    );
    const before = reg.requests.length;
    const io = recordingIO(inputs(ex), {}, fakeRunner());
    await expect(run(io)).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(io.outputs).toMatchObject({ verified: 'false', 'signature-refs': '', 'signed-digests': '' });
    expect(io.summaries.join('')).toMatch(/\*\*Failed:\*\*/);
  });
});
