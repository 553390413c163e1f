// test-kind: unit
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../actions/lib/errors.js';
import { httpStats } from '../../actions/lib/http.js';
import { IaClient, type IaClientOptions, type UploadSource } from '../../actions/lib/ia/client.js';
import { parseTorrent } from '../../actions/lib/ia/torrent.js';
import { memoryLogger } from '../../actions/lib/log.js';
import { DEFAULT_RETRY, RetryExhaustedError } from '../../actions/lib/retry.js';
import { startIaEmulator, type IaEmulator } from '../../emulators/ia/index.js';
import { waitFor } from '../harness/net.js';
import { tmpdir } from '../harness/tools.js';

/** The native IA client against the emulator: wire format, retries, redirects, stalls, gate. */
let emu: IaEmulator;
let dir: string;
let small: UploadSource;
let big: UploadSource;

function source(name: string, bytes: number): UploadSource {
  const p = path.join(dir, name);
  const buf = crypto.randomBytes(bytes);
  fs.writeFileSync(p, buf);
  return { name, path: p, size: bytes, md5: crypto.createHash('md5').update(buf).digest('hex') };
}

function client(over: Partial<IaClientOptions> = {}, waits: number[] = []) {
  const log = memoryLogger();
  const c = new IaClient({
    s3Url: emu.s3Url,
    apiUrl: emu.apiUrl,
    accessKey: 'TESTACCESS',
    secretKey: 'TESTSECRET',
    log,
    retry: { ...DEFAULT_RETRY, attempts: 4, baseMs: 10, jitter: 0 },
    sleep: async (ms) => void waits.push(ms),
    ...over,
  });
  return { c, log, waits };
}

const H = { 'x-archive-auto-make-bucket': '1', 'x-archive-queue-derive': '0' };
let n = 0;
const fresh = () => `client-test-${++n}`;

beforeAll(async () => {
  dir = tmpdir('keel-ia-client-');
  emu = await startIaEmulator({ ingestDelayMs: 5, deriveDelayMs: 20 });
  small = source('os.iso', 512 * 1024 + 11);
  big = source('big.iso', 24 * 1024 * 1024);
});
afterAll(async () => {
  await emu.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  emu.setFaults([]);
  emu.setOptions({ expect: 'continue' });
});

describe('IaClient PUT', () => {
  it('streams one PUT with Content-Length, hex Content-MD5, Expect: 100-continue and LOW auth; IA gets the exact bytes', async () => {
    const id = fresh();
    const { c } = client();
    const r = await c.putFile(id, small, { ...H, 'x-archive-meta-title': 'T' });
    expect(r).toMatchObject({ attempts: 1, bytesSent: small.size });
    const [put] = emu.state.puts('os.iso').filter((e) => e.path.startsWith(`/${id}/`));
    expect(put).toMatchObject({
      status: 200,
      bodyBytes: small.size,
      md5: small.md5,
      expect: true,
      accessKey: 'TESTACCESS',
    });
    expect(put!.headers['content-length']).toBe(String(small.size));
    expect(put!.headers['content-md5']).toBe(small.md5);
    expect(put!.headers['transfer-encoding']).toBeUndefined();
    expect(put!.headers['user-agent']).not.toContain('TESTACCESS');
    // check_limit is consulted (without credentials) before the PUT.
    const i = emu.state.journal.indexOf(put!);
    expect(emu.state.journal[i - 1]).toMatchObject({
      method: 'GET',
      path: '/',
      query: { check_limit: '1', accesskey: 'TESTACCESS', bucket: id },
    });
    expect(emu.state.journal[i - 1]!.headers.authorization).toBeUndefined();
    emu.state.advance();
    await new Promise((res) => setTimeout(res, 20));
    expect(emu.state.item(id)!.files.get('os.iso')).toMatchObject({ size: small.size, md5: small.md5 });
    expect(emu.state.item(id)!.metadata).toEqual({ title: 'T' });
  });

  it('starts the body after the fallback timer when the server never sends 100 Continue', async () => {
    emu.setOptions({ expect: 'ignore' });
    const id = fresh();
    const { c } = client({ continueTimeoutMs: 50 });
    const r = await c.putFile(id, small, H);
    expect(r.attempts).toBe(1);
    expect(emu.state.puts().filter((e) => e.path.startsWith(`/${id}/`))[0]).toMatchObject({
      status: 200,
      md5: small.md5,
      expect: true,
    });
  });

  it('a 503 answered before the body costs no body bytes; Retry-After is honoured', async () => {
    const id = fresh();
    emu.setFaults([{ on: 'put', identifier: id, action: { kind: 'slowdown', early: true, retryAfter: 3 } }]);
    const { c, waits } = client();
    const r = await c.putFile(id, small, H);
    const puts = emu.state.puts().filter((e) => e.path.startsWith(`/${id}/`));
    expect(puts.map((p) => [p.status, p.bodyBytes])).toEqual([
      [503, 0],
      [200, small.size],
    ]);
    expect(r).toMatchObject({ attempts: 2, bytesSent: small.size });
    expect(waits).toEqual([3000]);
  });

  it('backs off exponentially from the base when IA sends no Retry-After', async () => {
    const id = fresh();
    emu.setFaults([{ on: 'put', identifier: id, times: 3, action: { kind: 'slowdown' } }]);
    const { c, waits } = client();
    const r = await c.putFile(id, small, H);
    expect(r.attempts).toBe(4);
    expect(waits).toEqual([10, 20, 40]);
    expect(
      emu.state
        .puts()
        .filter((e) => e.path.startsWith(`/${id}/`))
        .map((p) => p.status),
    ).toEqual([503, 503, 503, 200]);
  });

  it('gives up after the configured attempts with IA’s message', async () => {
    const id = fresh();
    emu.setFaults([
      {
        on: 'put',
        identifier: id,
        times: 99,
        action: { kind: 'error', status: 500, code: 'InternalError', message: 'We encountered an internal error.' },
      },
    ]);
    const { c } = client();
    const err = await c.putFile(id, small, H).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryExhaustedError);
    expect((err as Error).message).toBe(
      'PUT os.iso: gave up after 4 attempts: PUT os.iso: HTTP 500 InternalError: We encountered an internal error. - ' +
        `${id}/os.iso`,
    );
  });

  it('stops starting attempts when the wall-clock budget is spent', async () => {
    const id = fresh();
    emu.setFaults([{ on: 'put', identifier: id, times: 99, action: { kind: 'slowdown' } }]);
    let t = 1_000_000;
    const { c } = client({
      retry: { ...DEFAULT_RETRY, attempts: 50, baseMs: 1000, jitter: 0, deadline: 1_000_000 + 5_000 },
      now: () => t,
      sleep: async (ms) => void (t += ms),
    });
    const err = await c.putFile(id, small, H).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^PUT os\.iso: wall-clock budget exhausted after 3 attempts: .*SlowDown/);
    expect(emu.state.puts().filter((e) => e.path.startsWith(`/${id}/`))).toHaveLength(3);
  });

  it('fails at once on spam, with IA’s words and what to do', async () => {
    const id = fresh();
    emu.setFaults([{ on: 'put', identifier: id, action: { kind: 'spam' } }]);
    const { c } = client();
    const err = await c.putFile(id, small, H).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(
      /refused the upload as spam \(HTTP 503\): SlowDown: .* appears to be spam\..*contact info@archive\.org/,
    );
    expect(emu.state.puts().filter((e) => e.path.startsWith(`/${id}/`))).toHaveLength(1);
  });

  it('fails at once on 403 and other 4xx', async () => {
    const id = fresh();
    emu.setFaults([
      {
        on: 'put',
        identifier: id,
        action: { kind: 'error', status: 403, code: 'AccessDenied', message: 'Access Denied' },
      },
    ]);
    const { c } = client();
    await expect(c.putFile(id, small, H)).rejects.toThrow(/access denied \(HTTP 403\) AccessDenied: Access Denied/);
    const bad = { ...small, md5: '0'.repeat(32) };
    await expect(c.putFile(id, bad, H)).rejects.toThrow(
      /HTTP 400 BadDigest: The Content-MD5 you specified did not match/,
    );
    expect(
      emu.state
        .puts()
        .filter((e) => e.path.startsWith(`/${id}/`))
        .map((p) => p.status),
    ).toEqual([403, 400]);
  });

  it('replays the whole body to a 307 target on an archive host, keeping auth', async () => {
    const id = fresh();
    emu.setFaults([{ on: 'put', identifier: id, action: { kind: 'redirect', to: 'node' } }]);
    const { c, log } = client();
    const r = await c.putFile(id, small, H);
    const puts = emu.state.puts().filter((e) => e.path.includes(`/${id}/`));
    expect(puts.map((p) => [p.path, p.status, p.bodyBytes, p.accessKey])).toEqual([
      [`/${id}/os.iso`, 307, small.size, 'TESTACCESS'],
      [`/s3-put/${id}/os.iso`, 200, small.size, 'TESTACCESS'],
    ]);
    expect(puts[1]!.md5).toBe(small.md5);
    expect(r).toMatchObject({ attempts: 1, bytesSent: 2 * small.size });
    expect(log.lines.map((l) => l.message).join('\n')).toMatch(
      /redirected to 127\.0\.0\.1:\d+; the body was replayed from byte 0/,
    );
  });

  it('drops the credentials on a redirect to a foreign host', async () => {
    const id = fresh();
    emu.setFaults([{ on: 'put', identifier: id, action: { kind: 'redirect', to: 'foreign', early: true } }]);
    const { c } = client();
    await expect(c.putFile(id, small, H)).rejects.toThrow(/HTTP 403/);
    const puts = emu.state.puts().filter((e) => e.path.includes(`/${id}/`));
    expect(puts.map((p) => [p.host.split(':')[0], p.status, p.accessKey])).toEqual([
      ['127.0.0.1', 307, 'TESTACCESS'],
      ['localhost', 403, undefined],
    ]);
  });

  it('re-sends from byte 0 after a reset mid-body', async () => {
    const id = fresh();
    emu.setFaults([{ on: 'put', identifier: id, action: { kind: 'reset', afterBytes: 100_000 } }]);
    const { c } = client();
    const r = await c.putFile(id, small, H);
    const puts = emu.state.puts().filter((e) => e.path.startsWith(`/${id}/`));
    expect(puts[0]).toMatchObject({ bodyBytes: 100_000, fault: 'reset after 100000 bytes' });
    expect(puts[1]).toMatchObject({ status: 200, bodyBytes: small.size, md5: small.md5 });
    expect(r.attempts).toBe(2);
    expect(r.bytesSent).toBeGreaterThanOrEqual(small.size + 100_000);
  });

  it('aborts a stalled transfer and retries it on a fresh connection', async () => {
    const id = fresh();
    emu.setFaults([{ on: 'put', identifier: id, action: { kind: 'stall', afterBytes: 1024 * 1024 } }]);
    const { c, log } = client({ stall: { minBytesPerSec: 256 * 1024, windowMs: 500 } });
    const sentBefore = httpStats.bytesSent;
    const r = await c.putFile(id, big, H);
    const puts = emu.state.puts().filter((e) => e.path.startsWith(`/${id}/`));
    expect(puts).toHaveLength(2);
    expect(puts[0]!.status).toBeUndefined(); // never answered: the client gave up on it
    expect(puts[0]!.bodyBytes).toBeLessThan(big.size);
    expect(puts[1]).toMatchObject({ status: 200, bodyBytes: big.size, md5: big.md5 });
    expect(puts[1]!.remotePort).not.toBe(puts[0]!.remotePort);
    expect(r.attempts).toBe(2);
    // The aborted attempt's file stream is destroyed: it does not go on reading the file (a
    // multi-GB ISO) next to the retry. Read bytes stay near one full pass plus the stalled part.
    await new Promise((res) => setTimeout(res, 300));
    expect(httpStats.bytesSent - sentBefore).toBeLessThan(big.size * 1.5);
    expect(log.lines.find((l) => l.level === 'warning')!.message).toMatch(
      /stalled: \d+ bytes\/s over the last .* below the floor of 262144 bytes\/s .*retrying on a fresh connection/,
    );
  });

  it('watches the redirected hop too: a stall after a 307 is caught', async () => {
    const id = fresh();
    emu.setFaults([
      { on: 'put', identifier: id, action: { kind: 'redirect', to: 'node' } },
      { on: 'put', identifier: id, action: { kind: 'stall', afterBytes: 1024 * 1024 } },
    ]);
    const { c, log } = client({ stall: { minBytesPerSec: 256 * 1024, windowMs: 500 }, responseTimeoutMs: 20_000 });
    const r = await c.putFile(id, big, H);
    const puts = emu.state.puts().filter((e) => e.path.includes(`/${id}/`));
    expect(puts.map((e) => [e.path.startsWith('/s3-put/'), e.status])).toEqual([
      [false, 307],
      [true, undefined],
      [false, 200],
    ]);
    expect(r.attempts).toBe(2);
    expect(log.lines.find((l) => l.level === 'warning')!.message).toMatch(/stalled:/);
  });

  it('waits while check_limit reports over_limit, sending nothing until it clears', async () => {
    const id = fresh();
    emu.setFaults([{ on: 'check_limit', identifier: id, times: 3, action: { kind: 'over-limit' } }]);
    const { c, waits, log } = client();
    await c.putFile(id, small, H);
    const mine = emu.state.journal.filter((e) => e.query.bucket === id || e.path.startsWith(`/${id}/`));
    expect(mine.map((e) => (e.method === 'PUT' ? 'PUT' : (e.fault ?? 'ok')))).toEqual([
      'over-limit',
      'over-limit',
      'over-limit',
      'ok',
      'PUT',
    ]);
    expect(waits).toEqual([40, 80, 160]); // 4x the retry base, doubling
    expect(log.lines.some((l) => /over_limit .*total_tasks_queued exceeds global_limit/.test(l.message))).toBe(true);
  });
});

describe('IaClient read APIs', () => {
  it('reads MDAPI, files, tasks, identifiers; submits a derive; downloads the torrent', async () => {
    const id = fresh();
    const { c } = client();
    expect(await c.getItem(id)).toBeUndefined();
    expect(await c.checkIdentifier(id)).toBe('available');
    emu.setOptions({ ingestDelayMs: 300, deriveDelayMs: 300 });
    try {
      await c.putFile(id, small, { ...H, 'x-archive-queue-derive': '1' });
    } finally {
      emu.setOptions({ ingestDelayMs: 5, deriveDelayMs: 20 });
    }
    expect(await c.checkIdentifier(id)).toBe('not_available');
    expect(await c.taskSummary(id)).toEqual({ queued: 0, running: 1, error: 0, paused: 0 });
    expect((await c.getFiles(id))!.map((f) => f.name)).not.toContain('os.iso'); // staged, not ingested yet
    await waitFor(
      async () => !!(await c.getFiles(id))?.some((f) => f.name === `${id}_archive.torrent`),
      5000,
      'the derived torrent',
    );
    const files = await c.getFiles(id);
    const torrentRow = files!.find((f) => f.name === `${id}_archive.torrent`)!;
    expect(torrentRow.format).toBe('Archive BitTorrent');
    const t = parseTorrent((await c.downloadTorrent(id))!);
    expect(t.infoHash).toBe(torrentRow.btih);
    expect(t.files).toContainEqual({ path: 'os.iso', length: small.size });
    // The derive must still be running when the second request arrives, however slow the machine.
    emu.setOptions({ deriveDelayMs: 30_000 });
    try {
      expect(await c.submitDerive(id)).toBe('queued');
      expect(await c.submitDerive(id)).toBe('already');
    } finally {
      emu.setOptions({ deriveDelayMs: 20 });
    }
    expect(await c.getItem('opensource')).toMatchObject({ is_collection: true });
  });

  it('retries a failing metadata API', async () => {
    const id = fresh();
    emu.setFaults([
      { on: 'metadata', identifier: id, times: 2, action: { kind: 'error', status: 502, code: 'BadGateway' } },
    ]);
    const { c, waits } = client();
    expect(await c.getItem(id)).toBeUndefined();
    expect(waits).toHaveLength(2);
  });
});
