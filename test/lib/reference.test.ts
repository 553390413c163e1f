// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { parseDigestReference, parseReference, parseRepository } from '../../actions/lib/oci/reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('image reference parsing', () => {
  it.each([
    ['ghcr.io/org/img:candidate', 'ghcr.io', 'org/img', 'candidate', undefined],
    [`ghcr.io/org/img@${D}`, 'ghcr.io', 'org/img', undefined, D],
    ['127.0.0.1:5000/a/b/c:v1', '127.0.0.1:5000', 'a/b/c', 'v1', undefined],
    ['localhost/img:t', 'localhost', 'img', 't', undefined],
    ['fedora:41', 'docker.io', 'library/fedora', '41', undefined],
    ['quay.io/fedora/fedora-bootc:42', 'quay.io', 'fedora/fedora-bootc', '42', undefined],
    [`registry.example.com:8443/x/y:tag@${D}`, 'registry.example.com:8443', 'x/y', 'tag', D],
  ])('%s', (input, registry, repository, tag, digest) => {
    const r = parseReference(input);
    expect([r.registry, r.repository, r.tag, r.digest]).toEqual([registry, repository, tag, digest]);
  });

  it.each([
    ['', /empty/],
    ['ghcr.io/Org/img:t', /must be lowercase/],
    ['ghcr.io/org/img', /neither a tag nor a digest/],
    ['ghcr.io/org/img:-bad', /tag "-bad"/],
    ['ghcr.io/org/img@sha256:abc', /not sha256:<64 lowercase hex>/],
    ['docker://ghcr.io/org/img:t', /transport prefix/],
    ['ghcr.io//img:t', /empty component/],
    ['ghcr.io/org/im g:t', /whitespace/],
  ])('rejects %j with a reason', (input, reason) => {
    expect(() => parseReference(input)).toThrow(reason);
  });

  it('digest-only parsing refuses tags and says why', () => {
    expect(() => parseDigestReference('ghcr.io/o/i:stable')).toThrow(/digest reference .* required, not a tag/);
    expect(parseDigestReference(`ghcr.io/o/i@${D}`).digest).toBe(D);
  });

  it('repository parsing refuses a tag', () => {
    expect(parseRepository('ghcr.io/o/i').name).toBe('ghcr.io/o/i');
    expect(() => parseRepository('ghcr.io/o/i:t')).toThrow(/without tag or digest/);
  });

  it('round-trips and pins', () => {
    const r = parseReference('ghcr.io/o/i:candidate');
    expect(r.withDigest(D).toString()).toBe(`ghcr.io/o/i@${D}`);
    expect(r.apiHost).toBe('ghcr.io');
    expect(parseReference('alpine:3').apiHost).toBe('registry-1.docker.io');
  });
});
