// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordingIO } from '../../actions/lib/io.js';
import { silentLogger } from '../../actions/lib/log.js';
import { parseReference } from '../../actions/lib/oci/reference.js';
import { connect } from '../../actions/lib/registry.js';
import { signImage } from '../../actions/sign/src/sign.js';
import { run } from '../../actions/verify/src/main.js';
import { seedImage, startFakeRegistry, type FakeRegistry } from '../harness/fake-registry.js';
import { fakeRunner } from '../harness/fake-runner.js';

/** verify's run() through recordingIO: verified / not verified / refused input, and the outputs on each path. */
let reg: FakeRegistry;
let work: string;
let signed: string;
let tagSigned: string;
let unsigned: string;
const repo = 'keel/verify';
const good = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (k: crypto.KeyObject) => k.export({ format: 'pem', type: 'spki' }).toString();

beforeAll(async () => {
  reg = await startFakeRegistry();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-verify-'));
  signed = await seedImage(reg, repo, 'signed', path.join(work, 'a'));
  tagSigned = await seedImage(reg, repo, 'v7', path.join(work, 'b'));
  unsigned = await seedImage(reg, repo, 'unsigned', path.join(work, 'c'));
  const name = `${reg.host}/${repo}`;
  const client = connect(parseReference(`${name}:x`), { 'tls-verify': false }, silentLogger);
  const key = { privateKey: good.privateKey, publicKey: good.publicKey };
  const sign = (d: string, identity: string) =>
    signImage(
      client,
      { ref: parseReference(`${name}@${d}`), identities: [identity], legacy: true, bundle: false, key },
      silentLogger,
    );
  await sign(signed, name);
  await sign(tagSigned, `${name}:v7`);
});
afterAll(async () => {
  await reg.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const ref = (d: string) => `${reg.host}/${repo}@${d}`;

describe('verify run()', () => {
  it.each([
    ['a repository signature', () => ({ 'image-ref': ref(signed) }), '1 legacy signature(s) accepted'],
    [
      'a tag identity, pulled as that tag',
      () => ({ 'image-ref': ref(tagSigned), identity: 'tags', tags: 'v7' }),
      ':v7: 1 legacy signature(s) accepted',
    ],
    [
      'the key given as a file path',
      () => ({ 'image-ref': ref(signed), 'public-key': 'FILE' }),
      '1 legacy signature(s) accepted',
    ],
  ])('verifies %s', async (_what, extra, reason) => {
    const keyFile = path.join(work, 'good.pub');
    fs.writeFileSync(keyFile, pem(good.publicKey));
    const ex = extra() as Record<string, string>;
    if (ex['public-key'] === 'FILE') ex['public-key'] = keyFile;
    const runner = fakeRunner();
    const io = recordingIO({ 'public-key': pem(good.publicKey), 'tls-verify': 'false', ...ex }, {}, runner);
    await run(io);
    expect(io.groups).toEqual(['verify the signatures']);
    expect(io.outputs.verified).toBe('true');
    expect(io.outputs.reason).toBe(reason);
    expect(JSON.parse(io.outputs.details!)[0]).toMatchObject({ verified: true });
    expect(runner.calls).toEqual([]);
  });

  it.each([
    ['another key', () => ({ 'image-ref': ref(signed), 'public-key': pem(other.publicKey) }), /is not verified: .*/],
    [
      'an unsigned image',
      () => ({ 'image-ref': ref(unsigned) }),
      /is not verified: A signature was required, but no signature exists/,
    ],
    [
      'a tag identity pulled as another tag',
      () => ({ 'image-ref': ref(tagSigned), identity: 'tags', tags: 'v8' }),
      /is not verified: pulled as :v8: /,
    ],
  ])('fails on %s with verified=false and the reason', async (_what, extra, message) => {
    const io = recordingIO({ 'public-key': pem(good.publicKey), 'tls-verify': 'false', ...extra() });
    await expect(run(io)).rejects.toThrow(message);
    expect(io.outputs.verified).toBe('false');
    expect(io.outputs.reason).not.toBe('');
    expect(io.summaries.join('')).toMatch(/verified: \*\*false\*\*/);
  });

  it('only reports with fail-on-unverified: false', async () => {
    const io = recordingIO({
      'image-ref': ref(unsigned),
      'public-key': pem(good.publicKey),
      'tls-verify': 'false',
      'fail-on-unverified': 'false',
    });
    await run(io);
    expect(io.outputs.verified).toBe('false');
    expect(
      io.logs
        .filter((l) => l.level === 'warning')
        .map((l) => l.message)
        .join('\n'),
    ).toMatch(/is not verified/);
  });

  it.each([
    [
      'a tag',
      () => ({ 'image-ref': `${reg.host}/${repo}:signed` }),
      /^Input 'image-ref' has value .*verification is of one manifest digest/,
    ],
    ['a key that is not one', () => ({ 'image-ref': ref(signed), 'public-key': 'not a key' }), /^Input 'public-key'/],
    [
      'identity tags without tags',
      () => ({ 'image-ref': ref(signed), identity: 'tags' }),
      /^Input 'tags' has value "": identity 'tags' checks the identity for each tag/,
    ],
  ])('refuses %s before any request', async (_what, extra, message) => {
    const before = reg.requests.length;
    const io = recordingIO({ 'public-key': pem(good.publicKey), 'tls-verify': 'false', ...extra() });
    await expect(run(io)).rejects.toThrow(message);
    expect(reg.requests.length).toBe(before);
    expect(io.outputs).toMatchObject({ verified: 'false', details: '[]' });
  });
});
