// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeSha256Sums } from '../../actions/lib/checksums.js';
import { recordingIO } from '../../actions/lib/io.js';
import { run } from '../../actions/ia-upload/src/main.js';
import { startIaEmulator, type IaEmulator } from '../../emulators/ia/index.js';
import { fakeRunner } from '../harness/fake-runner.js';

/**
 * ia-upload's run() through recordingIO against the in-process IA emulator: rows of inputs →
 * outputs (URLs, torrent state, uploaded/skipped) and what reached IA; bad input and missing keys
 * fail before any request.
 */
const SECRET = 'table-s3cr3t';
let emu: IaEmulator;
let work: string;
let iso: string;
let sums: string;
let n = 0;
beforeAll(async () => {
  emu = await startIaEmulator({ ingestDelayMs: 10, deriveDelayMs: 30 });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-run-ia-'));
  iso = path.join(work, 'os-1.0.iso');
  fs.writeFileSync(iso, crypto.randomBytes(64 * 1024));
  sums = (await writeSha256Sums([iso])).path;
});
afterAll(async () => {
  await emu.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const fresh = () => `keel-table-${process.pid}-${++n}`;
function upload(id: string, extra: Record<string, string> = {}) {
  const io = recordingIO(
    {
      identifier: id,
      files: `${iso}\n${sums}`,
      metadata: 'title:Table OS\nmediatype:software',
      'access-key': 'TABLEACCESS',
      'secret-key': SECRET,
      's3-endpoint': emu.s3Url,
      'api-endpoint': emu.apiUrl,
      'retry-base': '0.01',
      'poll-interval': '0.02',
      'torrent-timeout': '10',
      ...extra,
    },
    {},
    fakeRunner(),
  );
  return { io, done: run(io) };
}
const requestsFor = (id: string) => emu.state.journal.filter((e) => e.path.includes(id) || e.query.identifier === id);

describe('ia-upload run()', () => {
  it('a new item: uploads both files, proves a fresh torrent; a re-run skips both', async () => {
    const id = fresh();
    const first = upload(id);
    await first.done;
    expect(first.io.outputs).toEqual({
      'details-url': `${emu.apiUrl}/details/${id}`,
      'download-urls': [`${emu.apiUrl}/download/${id}/os-1.0.iso`, `${emu.apiUrl}/download/${id}/SHA256SUMS`].join(
        '\n',
      ),
      'torrent-url': `${emu.apiUrl}/download/${id}/${id}_archive.torrent`,
      'torrent-ready': 'true',
      'torrent-status': 'ready',
      btih: expect.stringMatching(/^[0-9a-f]{40}$/),
      uploaded: 'os-1.0.iso\nSHA256SUMS',
      skipped: '',
    });
    expect(first.io.groups).toEqual(['prepare the files', 'publish']);
    expect(first.io.secrets).toEqual(expect.arrayContaining([SECRET, `LOW TABLEACCESS:${SECRET}`]));
    const again = upload(id);
    await again.done;
    expect(again.io.outputs).toMatchObject({
      uploaded: '',
      skipped: 'os-1.0.iso\nSHA256SUMS',
      'torrent-ready': 'true',
    });
  });

  it.each([
    ['a torrent that never comes', { 'torrent-timeout': '0.3' }, { deriveOutcome: 'never' as const }, 'pending'],
    ['noarchivetorrent', { metadata: 'title:T\nnoarchivetorrent:true' }, {}, 'disabled'],
    ['derive off', { derive: 'false' }, { deriveOutcome: 'never' as const }, 'pending'],
  ])('%s: torrent-ready=false with a warning, the step passes', async (_what, extra, options, status) => {
    emu.setOptions({ deriveOutcome: 'ok', ...options });
    try {
      const { io, done } = upload(fresh(), extra);
      await done;
      expect(io.outputs).toMatchObject({ 'torrent-ready': 'false', 'torrent-status': status, btih: '' });
      expect(io.logs.some((l) => l.level === 'warning' && /torrent/.test(l.message))).toBe(true);
    } finally {
      emu.setOptions({ deriveOutcome: 'ok' });
    }
  });

  it('require-torrent turns a missing torrent into a failure, outputs still set', async () => {
    emu.setOptions({ deriveOutcome: 'never' });
    try {
      const { io, done } = upload(fresh(), { 'torrent-timeout': '0.2', 'require-torrent': 'true' });
      await expect(done).rejects.toThrow(/torrent not ready after 0\.2 s/);
      expect(io.outputs).toMatchObject({ 'torrent-ready': 'false', uploaded: 'os-1.0.iso\nSHA256SUMS' });
    } finally {
      emu.setOptions({ deriveOutcome: 'ok' });
    }
  });

  it.each([
    ['no access key', { 'access-key': '' }, /^Input 'access-key': it is required to upload/],
    [
      'a bad identifier',
      { identifier: 'has space' },
      /^Input 'identifier' has value "has space": not a valid Internet Archive identifier/,
    ],
    ['a missing file', { files: '/nonexistent/os.iso' }, /^Input 'files' has value .*expected an existing file/],
    ['bad metadata', { metadata: 'no colon here' }, /^Input 'metadata'/],
    [
      'a bad endpoint',
      { 's3-endpoint': 'ftp://x' },
      /^Input 's3-endpoint' has value "ftp:\/\/x": scheme ftp is not https/,
    ],
  ])('refuses %s before any request', async (_what, extra, message) => {
    const id = fresh();
    const { io, done } = upload(id, extra);
    await expect(done).rejects.toThrow(message);
    expect(requestsFor(id)).toEqual([]);
    expect(JSON.stringify(io.logs)).not.toContain(SECRET);
  });
});
