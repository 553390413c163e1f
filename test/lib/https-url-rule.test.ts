// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { httpsUnlessLoopbackProblem as insecureUrlReason } from '../../actions/lib/transport.js';

/** The rule for URLs a secret is sent to: https, or http to loopback only, and no credentials inside. */
describe('httpsUnlessLoopbackProblem (the URL rule for endpoints that receive secrets)', () => {
  it('accepts https anywhere and http to loopback hosts', () => {
    for (const u of [
      'https://ntfy.sh/topic',
      'https://api.github.com',
      'http://127.0.0.1:8080/t',
      'http://127.3.4.5/',
      'http://localhost:1/x',
      'http://[::1]:9/x',
    ])
      expect([u, insecureUrlReason(u)]).toEqual([u, undefined]);
  });

  it('refuses plain http elsewhere, other schemes, credentials in the URL and non-URLs, saying why', () => {
    expect(insecureUrlReason('http://ntfy.example.com/t')).toMatch(/use https \(http only for loopback\)/);
    expect(insecureUrlReason('http://127.0.0.1.example.com/t')).toMatch(/use https \(http only for loopback\)/);
    expect(insecureUrlReason('http://[::2]/t')).toMatch(/use https \(http only for loopback\)/);
    expect(insecureUrlReason('ftp://example.com/t')).toBe('scheme ftp is not https');
    expect(insecureUrlReason('https://user:tk_secret@ntfy.sh/t')).toMatch(/credentials in the URL are refused/);
    expect(insecureUrlReason('ntfy.sh/topic')).toBe('not a URL');
  });
});
