// test-kind: unit
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { request } from '../../actions/lib/http.js';
import { parseTorrent } from '../../actions/lib/ia/torrent.js';
import { startIaEmulator, type IaEmulator } from '../../emulators/ia/index.js';
import { runner, tmpdir } from '../harness/tools.js';

/** IA-S3 protocol edges of the emulator, with curl as an independent client. */
let emu: IaEmulator;
let dir: string;
const AUTH = { authorization: 'LOW TESTACCESS:TESTSECRET' };

beforeAll(async () => {
  emu = await startIaEmulator({ ingestDelayMs: 0, deriveDelayMs: 0, reserved: ['someone-elses'] });
  dir = tmpdir('keel-ia-emu-');
});
afterAll(async () => {
  await emu.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const put = (p: string, body: string, headers: Record<string, string> = {}) =>
  request({ method: 'PUT', url: `${emu.s3Url}${p}`, body, headers: { ...AUTH, ...headers } });

describe('IA emulator protocol', () => {
  it('accepts curl --upload-file (Expect: 100-continue, Content-MD5) and records what it received', async () => {
    const f = path.join(dir, 'curl.bin');
    const buf = crypto.randomBytes(2 * 1024 * 1024);
    fs.writeFileSync(f, buf);
    const md5 = crypto.createHash('md5').update(buf).digest('hex');
    const r = await runner.run('curl', [
      '-sS',
      '-f',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-T',
      f,
      '-H',
      'authorization: LOW TESTACCESS:TESTSECRET',
      '-H',
      'x-archive-auto-make-bucket:1',
      '-H',
      `content-md5: ${md5}`,
      '-H',
      'x-archive-meta-title:curl',
      `${emu.s3Url}/emu-curl/curl.bin`,
    ]);
    expect(r.stdout.toString()).toBe('200');
    const e = emu.state.puts('curl.bin')[0]!;
    expect(e).toMatchObject({ status: 200, bodyBytes: buf.length, md5, expect: true });
    expect(e.headers.authorization).toBe('LOW TESTACCESS:***');
    expect(emu.state.item('emu-curl')!.files.get('curl.bin')).toMatchObject({ size: buf.length, md5 });
  });

  it('refuses chunked bodies, missing auth, missing buckets, bad digests, and other owners', async () => {
    // Chunked: a raw request, since our client never sends one.
    const chunked = await new Promise<number>((resolve, reject) => {
      const u = new URL(`${emu.s3Url}/emu-x/a.txt`);
      const r = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'PUT',
          headers: { ...AUTH, 'transfer-encoding': 'chunked' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      r.on('error', reject);
      r.end('hello');
    });
    expect(chunked).toBe(400);
    const noAuth = await request({
      method: 'PUT',
      url: `${emu.s3Url}/emu-x/a.txt`,
      body: 'x',
      headers: { 'x-archive-auto-make-bucket': '1' },
    });
    expect([noAuth.status, await noAuth.text()]).toEqual([403, expect.stringContaining('<Code>AccessDenied</Code>')]);
    const noBucket = await put('/emu-x/a.txt', 'x');
    expect([noBucket.status, await noBucket.text()]).toEqual([404, expect.stringContaining('NoSuchBucket')]);
    const badDigest = await put('/emu-x/a.txt', 'x', {
      'x-archive-auto-make-bucket': '1',
      'content-md5': '0'.repeat(32),
    });
    expect([badDigest.status, await badDigest.text()]).toEqual([400, expect.stringContaining('BadDigest')]);
    const b64 = crypto.createHash('md5').update('x').digest('base64');
    expect((await put('/emu-x/a.txt', 'x', { 'x-archive-auto-make-bucket': '1', 'content-md5': b64 })).status).toBe(
      200,
    );
    const other = await request({
      method: 'PUT',
      url: `${emu.s3Url}/emu-x/b.txt`,
      body: 'y',
      headers: { authorization: 'LOW OTHER:KEY' },
    });
    expect(other.status).toBe(403);
    expect((await put('/someone-elses/a.txt', 'x', { 'x-archive-auto-make-bucket': '1' })).status).toBe(403);
    const ci = await request({
      method: 'GET',
      url: `${emu.apiUrl}/services/check_identifier.php?output=json&identifier=someone-elses`,
    });
    expect(await ci.json()).toMatchObject({ code: 'not_available' });
  });

  it('applies metadata only at creation; keep-old-version keeps history; derive regenerates the torrent', async () => {
    const H = { 'x-archive-auto-make-bucket': '1', 'x-archive-queue-derive': '1' };
    expect((await put('/emu-h/f.txt', 'one', { ...H, 'x-archive-meta-title': 'first' })).status).toBe(200);
    emu.state.advance();
    const t1 = parseTorrent(emu.state.item('emu-h')!.torrent!.bytes);
    expect(t1.files).toContainEqual({ path: 'f.txt', length: 3 });
    expect(
      (
        await put('/emu-h/f.txt', 'second', {
          ...H,
          'x-archive-meta-title': 'ignored',
          'x-archive-keep-old-version': '1',
        })
      ).status,
    ).toBe(200);
    emu.state.advance();
    const item = emu.state.item('emu-h')!;
    expect(item.metadata).toEqual({ title: 'first' });
    expect(item.files.get('history/files/f.txt.~1~')!.size).toBe(3);
    const t2 = parseTorrent(item.torrent!.bytes);
    expect(t2.files).toContainEqual({ path: 'f.txt', length: 6 });
    expect(t2.files.map((f) => f.path)).not.toContain('history/files/f.txt.~1~');
    expect(t2.infoHash).not.toBe(t1.infoHash);
    const rec = emu.state.record('emu-h') as { files: { name: string; btih?: string }[] };
    expect(rec.files.find((f) => f.name === 'emu-h_archive.torrent')!.btih).toBe(t2.infoHash);
  });

  it('answers early (before 100 Continue) with Connection: close when a fault says so', async () => {
    emu.setFaults([{ on: 'put', identifier: 'emu-e', action: { kind: 'slowdown', early: true, retryAfter: 7 } }]);
    const r = await request({
      method: 'PUT',
      url: `${emu.s3Url}/emu-e/a.txt`,
      body: 'x'.repeat(1000),
      headers: AUTH,
      expectContinue: true,
    });
    expect(r.status).toBe(503);
    expect(r.headers).toMatchObject({ connection: 'close', 'retry-after': '7' });
    expect(await r.text()).toContain('<Resource>total_tasks_queued exceeds global_limit</Resource>');
    expect(emu.state.puts('a.txt').find((e) => e.path === '/emu-e/a.txt')!.bodyBytes).toBe(0);
  });

  it('serves MDAPI sub-paths in the {"result": ...} shape and {} for unknown items', async () => {
    const get = async (p: string) => (await request({ method: 'GET', url: `${emu.apiUrl}${p}` })).json();
    expect(await get('/metadata/no-such-item')).toEqual({});
    expect(await get('/metadata/emu-h/metadata/title')).toEqual({ result: 'first' });
    const files = (await get('/metadata/emu-h/files')) as { result: { name: string }[] };
    expect(files.result.map((f) => f.name)).toEqual(
      expect.arrayContaining(['f.txt', 'emu-h_meta.xml', 'emu-h_files.xml']),
    );
  });
});
