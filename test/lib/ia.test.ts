// test-kind: unit
import { describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import { describeS3Error, encodeKey, isArchiveHost, parseS3Error } from '../../actions/lib/ia/client.js';
import { identifierAdvice, identifierProblem } from '../../actions/lib/ia/identifier.js';
import {
  encodeMetaValue,
  metadataDifferences,
  metadataHeaders,
  parseMetadataLines,
} from '../../actions/lib/ia/metadata.js';
import { bdecode, parseTorrent } from '../../actions/lib/ia/torrent.js';
import { bencode, decodeMetaValue, parseMetaHeaders } from '../../emulators/ia/index.js';

describe('IA identifiers', () => {
  it.each(['myos-1.2.0-amd64', 'MyOS_2024.01', 'abc', '9lives', 'a'.repeat(100)])('accepts %s', (id) => {
    expect(identifierProblem(id)).toBeUndefined();
  });
  it.each([
    ['ab', /3 to 100 characters/],
    ['a'.repeat(101), /got 101/],
    ['my os', /found " "/],
    ['os/iso', /found "\/"/],
    ['tëst-os', /found "ë"/],
    ['-dash', /start with a letter or a digit/],
    ['_under', /start with a letter or a digit/],
    ['.dot', /start with a letter or a digit/],
  ])('rejects %j', (id, why) => {
    expect(identifierProblem(id)).toMatch(why);
  });
  it('advises lower case and 5-80 characters', () => {
    expect(identifierAdvice('myos-1.0')).toEqual([]);
    expect(identifierAdvice('MyOS').join('\n')).toMatch(/upper-case[\s\S]*5 to 80/);
  });
});

describe('IA metadata headers', () => {
  it('encodes values exactly as the real ia client does (observed wire format)', () => {
    // From reference/internet-archive.md §2.3, captured from `ia` 3.3.0.
    expect(encodeMetaValue('Tëst OS 1.0 — release')).toBe('uri(T%C3%ABst%20OS%201.0%20%E2%80%94%20release)');
    expect(encodeMetaValue('iso image')).toBe('uri(iso%20image)');
    expect(encodeMetaValue('linux')).toBe('linux');
    expect(encodeMetaValue('https://www.apache.org/licenses/LICENSE-2.0')).toBe(
      'https://www.apache.org/licenses/LICENSE-2.0',
    );
    expect(encodeMetaValue('a (b)')).toBe('uri(a%20%28b%29)');
  });

  it('numbers lists after `meta`, writes `_` as `--`, and round-trips through the emulator parser', () => {
    const meta = parseMetadataLines([
      'title:Tëst OS 1.0 — release',
      'subject:linux',
      'subject:iso image',
      'release_date:2024-01-01',
      'mediatype:software',
    ]);
    const h = metadataHeaders(meta);
    expect(h).toEqual({
      'x-archive-meta-title': 'uri(T%C3%ABst%20OS%201.0%20%E2%80%94%20release)',
      'x-archive-meta01-subject': 'linux',
      'x-archive-meta02-subject': 'uri(iso%20image)',
      'x-archive-meta-release--date': '2024-01-01',
      'x-archive-meta-mediatype': 'software',
    });
    expect(parseMetaHeaders(h)).toEqual({
      title: 'Tëst OS 1.0 — release',
      subject: ['linux', 'iso image'],
      release_date: '2024-01-01',
      mediatype: 'software',
    });
    for (const v of Object.values(h)) expect(v).toMatch(/^[\x21-\x7e]+$/);
  });

  it('keeps ten and more list values in order', () => {
    const lines = Array.from({ length: 12 }, (_, i) => `subject:s${i}`);
    expect(parseMetaHeaders(metadataHeaders(parseMetadataLines(lines)))).toEqual({
      subject: lines.map((l) => l.slice(8)),
    });
  });

  it.each([
    ['no colon here', /has no key before ':'/],
    ['Title:x', /lower-case letters/],
    ['re--date:x', /'--' is IA's header spelling/],
    ['identifier:x', /set by IA from the identifier input/],
    ['title:', /empty value/],
    [`description:${'é'.repeat(2000)}`, /keep header values under/],
  ])('rejects %j', (line, why) => {
    expect(() => parseMetadataLines([line])).toThrow(why);
  });

  it('reports which keys of an existing item differ', () => {
    const want = parseMetadataLines(['title:New', 'subject:a', 'subject:b', 'mediatype:software']);
    expect(metadataDifferences(want, { title: 'Old', subject: ['a', 'b'], mediatype: 'software' })).toEqual(['title']);
    expect(metadataDifferences(want, { title: 'New', subject: 'a', mediatype: 'software' })).toEqual(['subject']);
  });

  it('decodes uri() values', () => {
    expect(decodeMetaValue('uri(T%C3%ABst)')).toBe('Tëst');
    expect(decodeMetaValue('plain')).toBe('plain');
  });
});

describe('torrent decoding', () => {
  it('decodes the emulator encoder output and hashes the exact info bytes', () => {
    const info = {
      files: [
        { length: 5 * 2 ** 32 + 3, path: ['os.iso'] },
        { length: 77, path: ['sub', 'SHA256SUMS'] },
      ],
      name: 'testos',
      'piece length': 262144,
      pieces: Buffer.alloc(40),
    };
    const bytes = Buffer.concat([
      Buffer.from('d'),
      bencode('announce'),
      bencode('http://t/'),
      bencode('info'),
      bencode(info),
      Buffer.from('e'),
    ]);
    const t = parseTorrent(bytes);
    expect(t.name).toBe('testos');
    expect(t.files).toEqual([
      { path: 'os.iso', length: 5 * 2 ** 32 + 3 },
      { path: 'sub/SHA256SUMS', length: 77 },
    ]);
    expect(t.infoHash).toBe(crypto.createHash('sha1').update(bencode(info)).digest('hex'));
  });

  it('reads the single-file form', () => {
    const bytes = bencode({ info: { length: 12, name: 'one.iso', 'piece length': 16384, pieces: Buffer.alloc(20) } });
    expect(parseTorrent(bytes).files).toEqual([{ path: 'one.iso', length: 12 }]);
  });

  it.each([
    ['i12', /unterminated integer/],
    ['i01e', /invalid integer/],
    ['5:ab', /runs past the end/],
    ['le3', /trailing bytes|unexpected/],
    ['d1:ai1ee', /no info dictionary/],
    ['x', /unexpected byte/],
  ])('rejects %j', (s, why) => {
    expect(() => parseTorrent(Buffer.from(s))).toThrow(why);
  });

  it('bdecode gives spans of top-level values', () => {
    const { spans } = bdecode(Buffer.from('d1:ai1e4:infod1:xi2eee'));
    expect(spans.get('info')).toEqual([13, 21]);
  });
});

describe('IA client helpers', () => {
  it('parses S3 error bodies into IA’s own words', () => {
    const body =
      "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><Resource>Your upload of X &amp; Y appears to be spam.</Resource></Error>";
    expect(describeS3Error(parseS3Error(body), body)).toBe(
      'SlowDown: Please reduce your request rate. - Your upload of X & Y appears to be spam.',
    );
    expect(describeS3Error(parseS3Error('gateway  timeout'), 'gateway  timeout')).toBe('gateway timeout');
  });
  it('keeps credentials only for archive hosts', () => {
    expect(isArchiveHost('ia800000.us.archive.org')).toBe(true);
    expect(isArchiveHost('archive.org:443')).toBe(true);
    expect(isArchiveHost('archive.org.evil.com')).toBe(false);
    expect(isArchiveHost('notarchive.org')).toBe(false);
  });
  it('percent-encodes each key segment', () => {
    expect(encodeKey('sums/SHA256 SUMS.txt')).toBe('sums/SHA256%20SUMS.txt');
  });
});
