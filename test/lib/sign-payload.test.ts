// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { identityMatches, type SignedIdentity } from '../../actions/lib/sign/identity.js';
import { buildPayload, parsePayload, SIGNATURE_TYPE, strictJson } from '../../actions/lib/sign/payload.js';
import { parseReference } from '../../actions/lib/oci/reference.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('simple-signing payload (containers/image rules)', () => {
  it('builds exactly the bytes cosign writes: critical{identity,image,type}, optional null', () => {
    expect(buildPayload('ghcr.io/org/img', D).toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"ghcr.io/org/img"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":null}`,
    );
    expect(parsePayload(buildPayload('ghcr.io/org/img:v1', D))).toEqual({
      dockerReference: 'ghcr.io/org/img:v1',
      digest: D,
      optional: null,
    });
  });

  const crit = (over: Record<string, unknown> = {}) => ({
    identity: { 'docker-reference': 'r/x' },
    image: { 'docker-manifest-digest': D },
    type: SIGNATURE_TYPE,
    ...over,
  });
  const cases: [string, unknown, RegExp][] = [
    [
      'optional missing (cosign accepts it, c/image does not)',
      { critical: crit() },
      /Key "optional" missing in a JSON object/,
    ],
    ['extra top-level key', { critical: crit(), optional: null, extra: 1 }, /Unknown key "extra"/],
    ['extra critical key', { critical: crit({ more: 1 }), optional: null }, /Unknown key "more"/],
    [
      'critical.type missing',
      { critical: { identity: crit().identity, image: crit().image }, optional: null },
      /Key "type" missing/,
    ],
    [
      'wrong type string',
      { critical: crit({ type: 'atomic container signature' }), optional: null },
      /Unrecognized signature type atomic container signature/,
    ],
    ['type not a string', { critical: crit({ type: 7 }), optional: null }, /not a string/],
    [
      'extra key in image',
      { critical: crit({ image: { 'docker-manifest-digest': D, x: 1 } }), optional: null },
      /Unknown key "x"/,
    ],
    [
      'identity without docker-reference',
      { critical: crit({ identity: {} }), optional: null },
      /Key "docker-reference" missing/,
    ],
    [
      'digest not a string',
      { critical: crit({ image: { 'docker-manifest-digest': 5 } }), optional: null },
      /not a string/,
    ],
    ['optional not an object', { critical: crit(), optional: 'x' }, /JSON object expected/],
    ['optional.creator not a string', { critical: crit(), optional: { creator: 1 } }, /creator is not a string/],
    [
      'optional.timestamp not an integer',
      { critical: crit(), optional: { timestamp: 1.5 } },
      /timestamp is not an integer/,
    ],
    ['critical is null', { critical: null, optional: null }, /JSON object expected/],
  ];
  it.each(cases)('rejects: %s', (_what, obj, msg) => {
    expect(() => parsePayload(Buffer.from(JSON.stringify(obj)))).toThrow(msg);
  });

  it('accepts optional with creator/timestamp and unknown optional keys (c/image ignores them)', () => {
    const p = parsePayload(
      Buffer.from(
        JSON.stringify({
          critical: crit(),
          optional: { creator: 'containers/image 5.34.2', timestamp: 1700000000, foo: [1] },
        }),
      ),
    );
    expect(p.optional).toMatchObject({ creator: 'containers/image 5.34.2', timestamp: 1700000000 });
  });

  it('rejects duplicate keys anywhere (two parsers must not read two different payloads)', () => {
    const text = `{"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"${D}","docker-manifest-digest":"sha256:${'cd'.repeat(32)}"},"type":"${SIGNATURE_TYPE}"},"optional":null}`;
    expect(() => parsePayload(text)).toThrow(/Duplicate key "docker-manifest-digest"/);
    expect(() => strictJson('{"a":1,"a":2}')).toThrow(/Duplicate key/);
    expect(strictJson('{"a":[1,{"b":"\\u0041\\""}],"c":-1.5e3,"d":true,"e":null}')).toEqual({
      a: [1, { b: 'A"' }],
      c: -1500,
      d: true,
      e: null,
    });
    expect(() => strictJson('{"a":1} x')).toThrow(/trailing data/);
    expect(() => strictJson('{"a":')).toThrow(/invalid JSON/);
  });
});

describe('signedIdentity matching (policy_reference_match.go; table from reference/signing.md §1.3)', () => {
  const repo = parseReference('reg.example/ns/repo:v3');
  const byDigest = parseReference(`reg.example/ns/repo@${D}`);
  const pulledAs = (tag: string) => parseReference(`reg.example/ns/repo:${tag}`);
  const MR: SignedIdentity = { type: 'matchRepository' };
  const DEF: SignedIdentity = { type: 'matchRepoDigestOrExact' };

  it('a repo-only identity (cosign default) is rejected by the default rule, accepted by matchRepository', () => {
    expect(identityMatches(DEF, repo, 'reg.example/ns/repo')).toBe(false);
    expect(identityMatches(DEF, byDigest, 'reg.example/ns/repo')).toBe(false);
    expect(identityMatches(MR, repo, 'reg.example/ns/repo')).toBe(true);
    expect(identityMatches(MR, byDigest, 'reg.example/ns/repo')).toBe(true);
  });

  it('a tag identity: accepted for that tag and by digest, rejected for another tag under the default rule', () => {
    expect(identityMatches(DEF, pulledAs('v4'), 'reg.example/ns/repo:v4')).toBe(true);
    expect(identityMatches(DEF, byDigest, 'reg.example/ns/repo:v4')).toBe(true);
    expect(identityMatches(DEF, pulledAs('latest'), 'reg.example/ns/repo:v4')).toBe(false);
    expect(identityMatches(MR, pulledAs('latest'), 'reg.example/ns/repo:v4')).toBe(true);
  });

  it('another repository never matches; references are normalised like ParseNormalizedNamed', () => {
    expect(identityMatches(MR, repo, 'reg.example/ns/other')).toBe(false);
    expect(identityMatches(DEF, byDigest, 'reg.example/ns/other:v1')).toBe(false);
    expect(identityMatches(MR, parseReference('docker.io/library/busybox:1'), 'busybox')).toBe(true);
    expect(identityMatches(MR, repo, 'Not A Reference')).toBe(false);
  });

  it('matchExact, exactReference, exactRepository', () => {
    expect(identityMatches({ type: 'matchExact' }, pulledAs('v4'), 'reg.example/ns/repo:v4')).toBe(true);
    expect(identityMatches({ type: 'matchExact' }, pulledAs('v4'), 'reg.example/ns/repo')).toBe(false);
    expect(identityMatches({ type: 'matchExact' }, byDigest, 'reg.example/ns/repo:v4')).toBe(false);
    expect(
      identityMatches(
        { type: 'exactReference', dockerReference: 'reg.example/ns/repo:v9' },
        repo,
        'reg.example/ns/repo:v9',
      ),
    ).toBe(true);
    expect(
      identityMatches(
        { type: 'exactReference', dockerReference: 'reg.example/ns/repo:v9' },
        repo,
        'reg.example/ns/repo:v3',
      ),
    ).toBe(false);
    expect(
      identityMatches(
        { type: 'exactRepository', dockerRepository: 'reg.example/ns/repo' },
        parseReference('x.io/y:z'),
        'reg.example/ns/repo',
      ),
    ).toBe(true);
  });
});
