// test-kind: unit
import { afterAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  ChecksumError,
  formatSha256Sums,
  hashFile,
  parseSha256Sums,
  sha256File,
  verifySha256Sums,
  writeSha256Sums,
} from '../../actions/lib/checksums.js';
import { sh, tmpdir } from '../harness/tools.js';

const dirs: string[] = [];
const mkdir = () => {
  const d = tmpdir('keel-sums-');
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('SHA256SUMS helper', () => {
  it('writes basenames only, sorted, in the form `sha256sum -c` accepts in a flat directory', async () => {
    const d = mkdir();
    const sub = path.join(d, 'out');
    fs.mkdirSync(sub);
    fs.writeFileSync(path.join(sub, 'zeta.iso'), crypto.randomBytes(70_000));
    fs.writeFileSync(path.join(sub, 'alpha.img'), 'alpha');
    const { path: sums, entries } = await writeSha256Sums([path.join(sub, 'zeta.iso'), path.join(sub, 'alpha.img')]);
    expect(sums).toBe(path.join(sub, 'SHA256SUMS'));
    const text = fs.readFileSync(sums, 'utf8');
    expect(
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => l.slice(66)),
    ).toEqual(['alpha.img', 'zeta.iso']);
    expect(text).toMatch(/^[0-9a-f]{64} {2}alpha\.img\n[0-9a-f]{64} {2}zeta\.iso\n$/);
    // The independent check: coreutils in the flat directory.
    expect(sh('sha256sum', ['-c', 'SHA256SUMS'], { cwd: sub })).toBe('alpha.img: OK\nzeta.iso: OK\n');
    expect(entries.find((e) => e.name === 'zeta.iso')!.sha256).toBe(
      sh('sha256sum', [path.join(sub, 'zeta.iso')]).slice(0, 64),
    );
  });

  it('hashes md5, sha1 and sha256 in one pass, matching coreutils', async () => {
    const d = mkdir();
    const f = path.join(d, 'blob');
    fs.writeFileSync(f, crypto.randomBytes(3 * 1024 * 1024 + 17));
    const h = await hashFile(f, ['md5', 'sha1', 'sha256']);
    expect(h.size).toBe(3 * 1024 * 1024 + 17);
    expect(h.md5).toBe(sh('md5sum', [f]).slice(0, 32));
    expect(h.sha1).toBe(sh('sha1sum', [f]).slice(0, 40));
    expect(h.sha256).toBe(await sha256File(f));
    expect(await hashFile(f, ['md5'])).toEqual({ size: h.size, md5: h.md5 });
  });

  it('refuses paths, duplicates and bad digests when formatting', () => {
    const hex = 'a'.repeat(64);
    expect(() => formatSha256Sums([{ name: 'dir/x.iso', sha256: hex }])).toThrow(/plain basenames.*dir\/x\.iso/);
    expect(() =>
      formatSha256Sums([
        { name: 'x', sha256: hex },
        { name: 'x', sha256: hex },
      ]),
    ).toThrow(/twice/);
    expect(() => formatSha256Sums([{ name: 'x', sha256: 'ABC' }])).toThrow(/not a lowercase hex/);
  });

  it('parses text and binary forms, and names the line of a malformed one', () => {
    const a = 'a'.repeat(64);
    const B = 'B'.repeat(64);
    expect(parseSha256Sums(`${a}  one.iso\n${B} *./two.img\n\n`)).toEqual([
      { name: 'one.iso', sha256: a },
      { name: 'two.img', sha256: 'b'.repeat(64) },
    ]);
    expect(() => parseSha256Sums(`${a}  one.iso\nnot a line\n`, 'S')).toThrow(
      'S:2: expected "<64 hex digits>  <file name>", got "not a line"',
    );
    expect(() => parseSha256Sums('\n')).toThrow(/lists no files/);
  });

  it('verifies a good SHA256SUMS (streaming) and reports each entry', async () => {
    const d = mkdir();
    fs.writeFileSync(path.join(d, 'os.iso'), crypto.randomBytes(100_000));
    await writeSha256Sums([path.join(d, 'os.iso')]);
    const v = await verifySha256Sums(path.join(d, 'SHA256SUMS'));
    expect(v.map((e) => [e.name, e.path])).toEqual([['os.iso', path.join(d, 'os.iso')]]);
  });

  it('on a mismatch names the file and both digests', async () => {
    const d = mkdir();
    const iso = path.join(d, 'os.iso');
    fs.writeFileSync(iso, 'original');
    await writeSha256Sums([iso]);
    const expected = await sha256File(iso);
    fs.writeFileSync(iso, 'tampered');
    const actual = await sha256File(iso);
    const err = await verifySha256Sums(path.join(d, 'SHA256SUMS')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect((err as Error).message).toBe(
      `os.iso does not match SHA256SUMS: it says sha256 ${expected}, the file ${iso} has sha256 ${actual}`,
    );
  });

  it('on a missing file names it', async () => {
    const d = mkdir();
    fs.writeFileSync(path.join(d, 'SHA256SUMS'), `${'c'.repeat(64)}  gone.iso\n`);
    await expect(verifySha256Sums(path.join(d, 'SHA256SUMS'))).rejects.toThrow(
      `SHA256SUMS lists gone.iso, but ${path.join(d, 'gone.iso')} does not exist`,
    );
    await expect(verifySha256Sums(path.join(d, 'nope'))).rejects.toThrow(/nope does not exist or cannot be read/);
  });

  it('uses an injected locator and digest (one hash pass shared with the caller)', async () => {
    const d = mkdir();
    fs.writeFileSync(path.join(d, 'SHA256SUMS'), `${'d'.repeat(64)}  os.iso\n`);
    const elsewhere = path.join(mkdir(), 'renamed.iso');
    fs.writeFileSync(elsewhere, 'x');
    const seen: string[] = [];
    const v = await verifySha256Sums(path.join(d, 'SHA256SUMS'), {
      locate: () => elsewhere,
      digest: async (p) => {
        seen.push(p);
        return 'd'.repeat(64);
      },
    });
    expect(seen).toEqual([elsewhere]);
    expect(v[0]!.path).toBe(elsewhere);
  });
});
