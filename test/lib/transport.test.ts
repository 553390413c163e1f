// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import { inputs as iaUploadInputs } from '../../actions/ia-upload/src/main.js';
import { mayKeepAuthorization } from '../../actions/lib/http.js';
import { readInputs, registryInputs, type InputDef } from '../../actions/lib/inputs.js';
import { recordingIO } from '../../actions/lib/io.js';
import {
  httpsUnlessLoopbackProblem,
  isListedInsecure,
  isLoopbackHost,
  mayBeInsecure,
  realmProblem,
  registryTransportProblem,
} from '../../actions/lib/transport.js';
import { inputs as signInputs } from '../../actions/sign/src/main.js';
import { inputs as siteBumpInputs } from '../../actions/site-bump/src/main.js';

describe('transport rules (lib/transport.ts)', () => {
  it('decides loopback from the name as written, never from DNS', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.8.9.10:443', '[::1]:5000', '::1', 'LOCALHOST'])
      expect([h, isLoopbackHost(h)]).toEqual([h, true]);
    for (const h of ['example.com', 'localhost.example.com', '128.0.0.1', '192.0.2.2:5000', 'vm', '[::2]:1'])
      expect([h, isLoopbackHost(h)]).toEqual([h, false]);
  });

  it('insecure-registries: host:port matches exactly, a bare host every port', () => {
    expect(isListedInsecure('reg.lan:5000', ['reg.lan:5000'])).toBe(true);
    expect(isListedInsecure('reg.lan:5001', ['reg.lan:5000'])).toBe(false);
    expect(isListedInsecure('REG.lan:5001', ['reg.lan'])).toBe(true);
    expect(isListedInsecure('reg.lan', ['reg.lan:5000'])).toBe(false);
    expect(isListedInsecure('other.lan', ['reg.lan'])).toBe(false);
    expect(isListedInsecure('[fd00::1]:5000', ['[fd00::1]'])).toBe(true);
  });

  it('tls-verify false is honoured for loopback and listed hosts only', () => {
    expect(registryTransportProblem('ghcr.io', { tlsVerify: true })).toBeUndefined();
    expect(registryTransportProblem('127.0.0.1:5000', { tlsVerify: false })).toBeUndefined();
    expect(registryTransportProblem('reg.lan:5000', { tlsVerify: false, insecureRegistries: ['reg.lan'] })).toBe(
      undefined,
    );
    expect(registryTransportProblem('reg.lan:5000', { tlsVerify: false })).toMatch(
      /tls-verify is false but reg\.lan:5000 is not a loopback address: .*name reg\.lan:5000 in insecure-registries/,
    );
    // Listed hosts may be insecure whatever tls-verify says; loopback only when asked.
    expect(mayBeInsecure('reg.lan:5000', { tlsVerify: true, insecureRegistries: ['reg.lan:5000'] })).toBe(true);
    expect(mayBeInsecure('127.0.0.1:5000', { tlsVerify: true })).toBe(false);
  });

  it('a token realm must be https when TLS is verified; plain http only where the registry rule allows it', () => {
    expect(realmProblem('https://auth.example/token', { tlsVerify: true })).toBeUndefined();
    expect(realmProblem('http://auth.example/token', { tlsVerify: true })).toMatch(/is not https/);
    expect(realmProblem('http://127.0.0.1:1/token', { tlsVerify: true })).toMatch(/is not https/);
    expect(realmProblem('http://127.0.0.1:1/token', { tlsVerify: false })).toBeUndefined();
    expect(realmProblem('http://auth.example/token', { tlsVerify: false })).toMatch(/is not https/);
    expect(realmProblem('http://auth.lan/t', { tlsVerify: true, insecureRegistries: ['auth.lan'] })).toBeUndefined();
    expect(realmProblem('ftp://auth.example/token', { tlsVerify: false })).toMatch(/is not https/);
    expect(realmProblem('not a url', { tlsVerify: true })).toMatch(/is not a URL/);
  });

  it('service URLs: https, or http to loopback only; no credentials in the URL', () => {
    expect(httpsUnlessLoopbackProblem('https://archive.org')).toBeUndefined();
    expect(httpsUnlessLoopbackProblem('http://127.0.0.1:8080/api')).toBeUndefined();
    expect(httpsUnlessLoopbackProblem('http://localhost:8080')).toBeUndefined();
    expect(httpsUnlessLoopbackProblem('http://archive.org')).toMatch(/plain http to archive\.org/);
    expect(httpsUnlessLoopbackProblem('ftp://archive.org')).toMatch(/scheme ftp is not https/);
    expect(httpsUnlessLoopbackProblem('https://u:p@archive.org')).toMatch(/credentials in the URL/);
  });

  it('a redirect keeps Authorization only on the same host (name and port) or a vouched host, never after a downgrade', () => {
    const u = (s: string) => new URL(s);
    expect(mayKeepAuthorization(u('https://reg.example/a'), u('https://reg.example/b'))).toBe(true);
    expect(mayKeepAuthorization(u('http://127.0.0.1:5000/a'), u('http://127.0.0.1:5000/b'))).toBe(true);
    expect(mayKeepAuthorization(u('http://127.0.0.1:5000/a'), u('http://localhost:5000/b'))).toBe(false);
    expect(mayKeepAuthorization(u('http://127.0.0.1:5000/a'), u('http://127.0.0.1:5001/b'))).toBe(false);
    expect(mayKeepAuthorization(u('https://reg.example/a'), u('http://reg.example/b'))).toBe(false);
    const archive = (h: string) => h.endsWith('.archive.org');
    expect(mayKeepAuthorization(u('https://archive.org/a'), u('https://ia8.us.archive.org/b'), archive)).toBe(true);
    expect(mayKeepAuthorization(u('https://archive.org/a'), u('http://ia8.us.archive.org/b'), archive)).toBe(false);
  });
});

/** Parses `inputs` as the runner would hand them; the thrown message, or undefined. */
function inputError(defs: Record<string, InputDef<unknown>>, given: Record<string, string>): string | undefined {
  try {
    readInputs(recordingIO(given), defs);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

describe('URL inputs: https unless loopback, refused at input time naming the input', () => {
  const ia = { defs: iaUploadInputs, base: { identifier: 'keel-test', files: 'package.json' } };
  const site = {
    defs: siteBumpInputs,
    base: { repository: 'o/site', constant: 'ISO_URL', value: 'https://example.org/x.iso' },
  };
  const sign = { defs: signInputs, base: { 'image-ref': `r.example/o/os@sha256:${'a'.repeat(64)}` } };
  const cases: { hop: string; input: string; defs: Record<string, InputDef<unknown>>; base: Record<string, string> }[] =
    [
      { hop: 'ia-upload', input: 's3-endpoint', ...ia },
      { hop: 'ia-upload', input: 'api-endpoint', ...ia },
      { hop: 'site-bump', input: 'api-url', ...site },
      { hop: 'sign', input: 'fulcio-url', ...sign },
      { hop: 'sign', input: 'rekor-url', ...sign },
    ];
  it.each(cases)('$hop $input', ({ input: name, defs, base }) => {
    expect(inputError(defs, base)).toBeUndefined();
    expect(inputError(defs, { ...base, [name]: 'https://service.example' })).toBeUndefined();
    expect(inputError(defs, { ...base, [name]: 'http://127.0.0.1:8080' })).toBeUndefined();
    expect(inputError(defs, { ...base, [name]: 'http://service.example' })).toMatch(
      new RegExp(`^Input '${name}' has value "http://service\\.example": plain http to service\\.example`),
    );
    expect(inputError(defs, { ...base, [name]: 'http://192.0.2.2:8080' })).toMatch(/plain http to 192\.0\.2\.2:8080/);
  });

  it('insecure-registries takes host[:port] lines only', () => {
    const defs = { ...registryInputs };
    expect(readInputs(recordingIO({ 'insecure-registries': 'reg.lan:5000\n[fd00::1]\n' }), defs)).toMatchObject({
      'insecure-registries': ['reg.lan:5000', '[fd00::1]'],
    });
    expect(inputError(defs, { 'insecure-registries': 'http://reg.lan:5000' })).toMatch(
      /^Input 'insecure-registries' .*expected host\[:port\]/,
    );
    expect(inputError(defs, { 'insecure-registries': 'reg.lan/ns' })).toMatch(/expected host\[:port\]/);
  });
});
