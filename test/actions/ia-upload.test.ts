// test-kind: integration
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeSha256Sums } from '../../actions/lib/checksums.js';
import { startIaEmulator, type IaEmulator, type JournalEntry } from '../../emulators/ia/index.js';
import { waitFor } from '../harness/net.js';
import { errors, runAction, warnings, type StepResult } from '../harness/run-action.js';
import { tmpdir } from '../harness/tools.js';

/**
 * ia-upload, bundled and driven the runner's way, against the IA emulator: every scenario of
 * the issue (503s, spam, 307, reset, stall, re-run, pending ingest, late/stale/failed torrent,
 * bad input) asserted on what reached IA (the emulator's journal and item state).
 */
const SECRET = 'TESTSECRET-s3cr3t-value';
let emu: IaEmulator;
const dirs: string[] = [];
let n = 0;

interface Release {
  dir: string;
  iso: string;
  sums: string;
  isoMd5: string;
  isoSize: number;
}

async function release(bytes = 2 * 1024 * 1024 + 5, name = 'os-1.0.iso'): Promise<Release> {
  const dir = tmpdir('keel-ia-rel-');
  dirs.push(dir);
  const iso = path.join(dir, name);
  const buf = crypto.randomBytes(bytes);
  fs.writeFileSync(iso, buf);
  const { path: sums } = await writeSha256Sums([iso]);
  return { dir, iso, sums, isoMd5: crypto.createHash('md5').update(buf).digest('hex'), isoSize: bytes };
}

const fresh = () => `keel-test-os-${process.pid}-${++n}`;

const META = [
  'title:Tëst OS 1.0 — release',
  'mediatype:software',
  'collection:opensource',
  'subject:linux',
  'subject:iso image',
  'release_date:2024-01-01',
].join('\n');

function inputs(id: string, rel: Release, extra: Record<string, string> = {}): Record<string, string> {
  return {
    identifier: id,
    files: `${rel.iso}\n${rel.sums}`,
    metadata: META,
    'access-key': 'TESTACCESS',
    'secret-key': SECRET,
    's3-endpoint': emu.s3Url,
    'api-endpoint': emu.apiUrl,
    'retry-base': '0.01',
    'poll-interval': '0.05',
    'torrent-timeout': '10',
    'pending-timeout': '5',
    ...extra,
  };
}

const run = (inp: Record<string, string>, env: Record<string, string> = {}) =>
  runAction({ action: 'ia-upload', inputs: inp, env, timeoutMs: 60_000 });
const mine = (id: string) =>
  emu.state.journal.filter(
    (e) =>
      e.path.includes(`/${id}/`) || e.path.endsWith(`/${id}`) || e.query.identifier === id || e.query.bucket === id,
  );
const puts = (id: string) => emu.state.journal.filter((e) => e.method === 'PUT' && e.path.includes(`/${id}/`));
const keyOf = (e: JournalEntry) => decodeURIComponent(e.path.split('/').pop()!);

function expectClean(r: StepResult) {
  // The secret (and the LOW header) is masked and never printed, written to outputs or the summary.
  expect(r.masked).toEqual(expect.arrayContaining([SECRET, `LOW TESTACCESS:${SECRET}`]));
  expect(r.stdout.replace(/::add-mask::.*\n/g, '')).not.toContain(SECRET);
  expect(r.stderr).not.toContain(SECRET);
  expect(JSON.stringify(r.outputs)).not.toContain(SECRET);
  expect(r.summary).not.toContain(SECRET);
}

beforeAll(async () => {
  emu = await startIaEmulator({ ingestDelayMs: 20, deriveDelayMs: 100 });
});
afterAll(async () => {
  await emu.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
beforeEach(() => {
  emu.setFaults([]);
  emu.setOptions({ deriveOutcome: 'ok', ingestDelayMs: 20, deriveDelayMs: 100 });
});

describe('ia-upload (bundled, against the IA emulator)', () => {
  const id = fresh();
  let rel: Release;
  let first: StepResult;

  it('uploads the ISO then SHA256SUMS (metadata first, derive last), verifies ingest and a fresh torrent', async () => {
    rel = await release();
    first = await run(inputs(id, rel));
    expect(errors(first)).toEqual([]);
    expect(first.code).toBe(0);
    expectClean(first);

    const p = puts(id);
    expect(p.map(keyOf)).toEqual(['os-1.0.iso', 'SHA256SUMS']);
    const sumsSize = fs.statSync(rel.sums).size;
    const [isoPut, sumsPut] = p;
    expect(isoPut).toMatchObject({
      status: 200,
      bodyBytes: rel.isoSize,
      md5: rel.isoMd5,
      expect: true,
      accessKey: 'TESTACCESS',
    });
    expect(isoPut!.headers).toMatchObject({
      'x-archive-auto-make-bucket': '1',
      'x-archive-queue-derive': '0',
      'x-archive-keep-old-version': '0',
      'x-archive-size-hint': String(rel.isoSize + sumsSize),
      'content-md5': rel.isoMd5,
      'content-length': String(rel.isoSize),
      'x-archive-meta-title': 'uri(T%C3%ABst%20OS%201.0%20%E2%80%94%20release)',
      'x-archive-meta01-subject': 'linux',
      'x-archive-meta02-subject': 'uri(iso%20image)',
      'x-archive-meta-release--date': '2024-01-01',
    });
    expect(isoPut!.headers['transfer-encoding']).toBeUndefined();
    expect(sumsPut!.headers['x-archive-queue-derive']).toBe('1');
    expect(Object.keys(sumsPut!.headers).filter((h) => h.startsWith('x-archive-meta'))).toEqual([]);

    const item = emu.state.item(id)!;
    expect(item.metadata).toEqual({
      title: 'Tëst OS 1.0 — release',
      mediatype: 'software',
      collection: 'opensource',
      subject: ['linux', 'iso image'],
      release_date: '2024-01-01',
    });
    expect(item.files.get('os-1.0.iso')).toMatchObject({ size: rel.isoSize, md5: rel.isoMd5 });
    expect(item.files.get('SHA256SUMS')!.size).toBe(sumsSize);
    // Exactly one derive ran, after the last file.
    expect(item.tasks.filter((t) => t.cmd === 'derive.php')).toHaveLength(1);

    const api = emu.apiUrl;
    expect(first.outputs).toEqual({
      'details-url': `${api}/details/${id}`,
      'download-urls': `${api}/download/${id}/os-1.0.iso\n${api}/download/${id}/SHA256SUMS`,
      'torrent-url': `${api}/download/${id}/${id}_archive.torrent`,
      'torrent-ready': 'true',
      'torrent-status': 'ready',
      btih: item.torrent!.file.btih,
      uploaded: 'os-1.0.iso\nSHA256SUMS',
      skipped: '',
    });
    expect(first.summary).toMatch(/SHA256SUMS. verified against .os-1\.0\.iso. before any upload/);
    expect(first.summary).toMatch(/Torrent: \*\*ready\*\*/);
  });

  it('re-run: uploads zero bytes, says why in the summary, and still proves the torrent', async () => {
    const before = emu.state.journal.length;
    const r = await run(inputs(id, rel));
    expect(errors(r)).toEqual([]);
    const after = emu.state.journal.slice(before);
    expect(after.filter((e) => e.method === 'PUT')).toEqual([]);
    expect(after.reduce((s, e) => s + e.bodyBytes, 0)).toBe(0);
    expect(r.outputs).toMatchObject({
      uploaded: '',
      skipped: 'os-1.0.iso\nSHA256SUMS',
      'torrent-ready': 'true',
      btih: first.outputs.btih,
    });
    expect(r.summary).toMatch(/os-1\.0\.iso \| .* \| skipped: already on IA with the same size and md5/);
    expect(r.summary).toMatch(/0 B sent; 2 file\(s\) skipped/);
  });
});

describe('ia-upload failure handling', () => {
  it('two 503s (with and without Retry-After), then success', async () => {
    const id = fresh();
    const rel = await release();
    emu.setFaults([
      { on: 'put', identifier: id, action: { kind: 'slowdown', retryAfter: 0 } },
      { on: 'put', identifier: id, action: { kind: 'slowdown' } },
    ]);
    const r = await run(inputs(id, rel));
    expect(errors(r)).toEqual([]);
    expect(puts(id).map((e) => [keyOf(e), e.status])).toEqual([
      ['os-1.0.iso', 503],
      ['os-1.0.iso', 503],
      ['os-1.0.iso', 200],
      ['SHA256SUMS', 200],
    ]);
    // The rate-limit probe comes before every PUT, retries included.
    const seq = mine(id)
      .filter((e) => e.method === 'PUT' || e.query.check_limit)
      .map((e) => (e.method === 'PUT' ? 'PUT' : 'check'));
    expect(seq).toEqual(['check', 'PUT', 'check', 'PUT', 'check', 'PUT', 'check', 'PUT']);
    expect(warnings(r).filter((w) => /attempt \d\/6 failed .*SlowDown/.test(w))).toHaveLength(2);
    expect(r.outputs['torrent-ready']).toBe('true');
  });

  it('spam: fails at once with IA’s message, nothing retried, outputs and summary still written', async () => {
    const id = fresh();
    const rel = await release();
    emu.setFaults([{ on: 'put', identifier: id, times: 9, action: { kind: 'spam' } }]);
    const r = await run(inputs(id, rel));
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(
      /IA refused the upload as spam .*appears to be spam.*contact info@archive\.org/,
    );
    expect(puts(id)).toHaveLength(1);
    expect(r.outputs).toMatchObject({
      'details-url': `${emu.apiUrl}/details/${id}`,
      'torrent-ready': 'false',
      uploaded: '',
    });
    expect(r.summary).toMatch(/\*\*Failed:\*\*.*spam/);
    expect(r.summary).toMatch(/os-1\.0\.iso \|.*\| upload failed/);
    expectClean(r);
  });

  it('307: the body is replayed to the data node, auth kept for the archive host', async () => {
    const id = fresh();
    const rel = await release();
    emu.setFaults([{ on: 'put', identifier: id, key: 'os-1.0.iso', action: { kind: 'redirect', to: 'node' } }]);
    const r = await run(inputs(id, rel));
    expect(errors(r)).toEqual([]);
    const iso = puts(id).filter((e) => keyOf(e) === 'os-1.0.iso');
    expect(iso.map((e) => [e.path, e.status, e.bodyBytes, e.accessKey])).toEqual([
      [`/${id}/os-1.0.iso`, 307, rel.isoSize, 'TESTACCESS'],
      [`/s3-put/${id}/os-1.0.iso`, 200, rel.isoSize, 'TESTACCESS'],
    ]);
    expect(iso[1]!.md5).toBe(rel.isoMd5);
    expect(emu.state.item(id)!.files.get('os-1.0.iso')!.md5).toBe(rel.isoMd5);
  });

  it('reset mid-body: the PUT is retried from byte 0', async () => {
    const id = fresh();
    const rel = await release();
    emu.setFaults([{ on: 'put', identifier: id, action: { kind: 'reset', afterBytes: 300_000 } }]);
    const r = await run(inputs(id, rel));
    expect(errors(r)).toEqual([]);
    const iso = puts(id).filter((e) => keyOf(e) === 'os-1.0.iso');
    expect(iso.map((e) => [e.status, e.bodyBytes])).toEqual([
      [undefined, 300_000],
      [200, rel.isoSize],
    ]);
    expect(iso[1]!.md5).toBe(rel.isoMd5);
  });

  it('stall: the transfer is aborted under the floor and retried on a fresh connection', async () => {
    const id = fresh();
    const rel = await release(24 * 1024 * 1024);
    emu.setFaults([{ on: 'put', identifier: id, action: { kind: 'stall', afterBytes: 1024 * 1024 } }]);
    const r = await run(inputs(id, rel, { 'stall-floor': String(256 * 1024), 'stall-window': '0.5' }));
    expect(errors(r)).toEqual([]);
    const iso = puts(id).filter((e) => keyOf(e) === 'os-1.0.iso');
    expect(iso).toHaveLength(2);
    expect(iso[0]!.bodyBytes).toBeLessThan(rel.isoSize);
    expect(iso[1]).toMatchObject({ status: 200, bodyBytes: rel.isoSize, md5: rel.isoMd5 });
    expect(iso[1]!.remotePort).not.toBe(iso[0]!.remotePort);
    expect(warnings(r).join('\n')).toMatch(/stalled: .*below the floor of 262144 bytes\/s.*fresh connection/);
  });

  it('a wall-clock budget stops starting new attempts', async () => {
    const id = fresh();
    const rel = await release(64 * 1024);
    emu.setFaults([{ on: 'put', identifier: id, times: 999, action: { kind: 'slowdown' } }]);
    const r = await run(inputs(id, rel, { retries: '50', 'retry-base': '0.2', 'upload-budget': '0.5' }));
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(/wall-clock budget exhausted after \d attempts: .*SlowDown/);
    expect(puts(id).length).toBeLessThan(5);
  });

  it('403: fails at once naming the cause', async () => {
    const id = fresh();
    const rel = await release(64 * 1024);
    emu.setFaults([
      {
        on: 'put',
        identifier: id,
        action: { kind: 'error', status: 403, code: 'AccessDenied', message: 'Access Denied' },
      },
    ]);
    const r = await run(inputs(id, rel));
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(
      /access denied \(HTTP 403\) AccessDenied: Access Denied.*Check the access-key\/secret-key/,
    );
    expect(puts(id)).toHaveLength(1);
  });
});

describe('ia-upload re-runs and pending work', () => {
  it('waits for a previous run’s pending ingest instead of uploading again', async () => {
    const id = fresh();
    const rel = await release();
    // A previous run's PUTs were accepted; IA has not ingested them yet (and will not, until the
    // action says it is waiting: then the ingests complete).
    emu.state.stagePending(id, { name: 'os-1.0.iso', content: fs.readFileSync(rel.iso) }, { delayMs: 60_000 });
    emu.state.stagePending(id, { name: 'SHA256SUMS', content: fs.readFileSync(rel.sums) }, { delayMs: 60_000 });
    const r = await runAction({
      action: 'ia-upload',
      inputs: inputs(id, rel, { 'torrent-timeout': '0' }),
      timeoutMs: 60_000,
      onLine: (line) => {
        if (/ingest task\(s\) pending/.test(line)) for (const t of emu.state.item(id)!.tasks) t.readyAt = Date.now();
      },
    });
    expect(errors(r)).toEqual([]);
    expect(puts(id)).toEqual([]);
    expect(r.outputs.skipped).toBe('os-1.0.iso\nSHA256SUMS');
    expect(r.stdout).toMatch(/2 ingest task\(s\) pending .*waiting up to 5 s/);
    expect(r.summary).toMatch(/waited \d+\.\d s for a previous ingest/);
  });

  it('does not wait for a stuck derive of an earlier run: only pending ingests matter', async () => {
    const id = fresh();
    const rel = await release();
    const item = emu.state.seed(id, { files: [{ name: 'os-1.0.iso', content: 'previous release' }] });
    emu.setOptions({ deriveOutcome: 'never' });
    emu.state.model.queueDerive(item);
    const r = await run(inputs(id, rel, { 'torrent-timeout': '0' }));
    expect(errors(r)).toEqual([]);
    expect(r.stdout).not.toMatch(/task\(s\) pending/);
    expect(puts(id).map(keyOf)).toEqual(['os-1.0.iso', 'SHA256SUMS']);
    await waitFor(
      async () => emu.state.item(id)!.files.get('os-1.0.iso')!.md5 === rel.isoMd5,
      5000,
      'the new ISO ingested',
    );
  });

  it('uploads what differs on an existing item, and warns that metadata is not changed', async () => {
    const id = fresh();
    const rel = await release();
    emu.state.seed(id, {
      metadata: { title: 'Old title' },
      files: [
        { name: 'SHA256SUMS', content: fs.readFileSync(rel.sums) },
        { name: 'os-1.0.iso', content: 'old bytes' },
      ],
    });
    const r = await run(inputs(id, rel));
    expect(errors(r)).toEqual([]);
    expect(puts(id).map(keyOf)).toEqual(['os-1.0.iso']);
    // The only upload is also the last one: it queues the derive.
    expect(puts(id)[0]!.headers['x-archive-queue-derive']).toBe('1');
    expect(warnings(r).join('\n')).toMatch(
      /already exists; .* keep their current values: title, mediatype, collection, subject, release_date/,
    );
    expect(r.outputs).toMatchObject({ uploaded: 'os-1.0.iso', skipped: 'SHA256SUMS', 'torrent-ready': 'true' });
  });

  it('all files present but no torrent: submits a derive once and waits for it', async () => {
    const id = fresh();
    const rel = await release();
    emu.state.seed(id, {
      files: [
        { name: 'os-1.0.iso', content: fs.readFileSync(rel.iso) },
        { name: 'SHA256SUMS', content: fs.readFileSync(rel.sums) },
      ],
    });
    const before = emu.state.journal.length;
    const r = await run(inputs(id, rel));
    expect(errors(r)).toEqual([]);
    expect(puts(id)).toEqual([]);
    // The derive request (its identifier is in the JSON body) was sent exactly once.
    expect(
      emu.state.journal.slice(before).filter((e) => e.method === 'POST' && e.path === '/services/tasks.php'),
    ).toHaveLength(1);
    expect(emu.state.item(id)!.tasks.filter((t) => t.cmd === 'derive.php')).toHaveLength(1);
    expect(r.outputs['torrent-ready']).toBe('true');
    expect(r.summary).toMatch(/derive submitted/);
  });

  it('tolerates metadata API failures while polling, even past one read’s retries', async () => {
    const id = fresh();
    const rel = await release();
    // The preflight read passes; the polls then fail 8 times (one poll's 6 attempts exhausted).
    emu.setFaults([
      {
        on: 'metadata',
        identifier: id,
        skip: 1,
        times: 8,
        action: { kind: 'error', status: 500, code: 'InternalError' },
      },
    ]);
    const r = await run(inputs(id, rel));
    expect(errors(r)).toEqual([]);
    const md = mine(id).filter((e) => e.path.startsWith('/metadata/'));
    expect(md[0]).toMatchObject({ path: `/metadata/${id}`, status: 200 });
    expect(md.filter((e) => e.fault === 'metadata 500')).toHaveLength(8);
    expect(r.outputs['torrent-ready']).toBe('true');
    expect(puts(id)).toHaveLength(2);
  });
});

describe('ia-upload torrent outcomes', () => {
  it('a task/metadata API answering garbage or 5xx never holds the step past torrent-timeout', async () => {
    const id = fresh();
    const rel = await release();
    emu.setOptions({ deriveOutcome: 'never' });
    // The preflight reads pass; every poll after the upload gets an HTML page or a 503.
    emu.setFaults([
      { on: 'metadata', identifier: id, skip: 1, times: 100_000, action: { kind: 'garbage' } },
      {
        on: 'tasks',
        identifier: id,
        skip: 1,
        times: 100_000,
        action: { kind: 'error', status: 503, code: 'SlowDown' },
      },
    ]);
    const budgetS = 4;
    // Backoffs of 15-30 s and more: a retry that ignores the budget outlives it many times over.
    const r = await run(
      inputs(id, rel, { 'retry-base': '30', 'torrent-timeout': String(budgetS), 'poll-interval': '1' }),
    );
    expect(errors(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(puts(id)).toHaveLength(2);
    const faults = mine(id).map((e) => e.fault);
    expect(faults).toContain('metadata garbage');
    expect(faults).toContain('tasks 503');
    // Node start-up and two small uploads on top of the budget: seconds, never a backoff.
    expect(r.ms).toBeLessThan((budgetS + 6) * 1000);
    expect(r.outputs).toMatchObject({ 'torrent-ready': 'false', 'torrent-status': 'pending' });
    expect(warnings(r).join('\n')).toMatch(/torrent not ready after 4\.0 s/);
  });

  it('torrent late: a warning and torrent-ready=false by default', async () => {
    const id = fresh();
    const rel = await release();
    emu.setOptions({ deriveOutcome: 'never' });
    const r = await run(inputs(id, rel, { 'torrent-timeout': '0.5' }));
    expect(r.code).toBe(0);
    expect(warnings(r).join('\n')).toMatch(
      /torrent not ready after 0\.5 s: .*_archive\.torrent does not exist yet\. IA's queue can take hours/,
    );
    expect(r.outputs).toMatchObject({
      'torrent-ready': 'false',
      'torrent-status': 'pending',
      btih: '',
      uploaded: 'os-1.0.iso\nSHA256SUMS',
    });
    expect(r.outputs['torrent-url']).toBe(`${emu.apiUrl}/download/${id}/${id}_archive.torrent`);
  });

  it('torrent late with require-torrent: the step fails, outputs still set', async () => {
    const id = fresh();
    const rel = await release();
    emu.setOptions({ deriveOutcome: 'never' });
    const r = await run(inputs(id, rel, { 'torrent-timeout': '0.3', 'require-torrent': 'true' }));
    expect(r.code).toBe(1);
    expect(errors(r).join('\n')).toMatch(/torrent not ready after 0\.3 s/);
    expect(r.outputs).toMatchObject({ 'torrent-ready': 'false', uploaded: 'os-1.0.iso\nSHA256SUMS' });
    expect(emu.state.item(id)!.files.get('os-1.0.iso')!.md5).toBe(rel.isoMd5);
  });

  it('a stale torrent (does not list the new ISO) is not accepted', async () => {
    const id = fresh();
    const rel = await release(1024 * 1024, 'os-2.0.iso');
    // The previous release's torrent, regenerated recently (mtime within the skew allowance).
    emu.state.seed(id, { files: [{ name: 'os-1.0.iso', content: 'previous release' }], torrent: true });
    emu.setOptions({ deriveOutcome: 'never' });
    const r = await run(inputs(id, rel, { 'torrent-timeout': '0.5' }));
    expect(r.code).toBe(0);
    expect(r.outputs['torrent-ready']).toBe('false');
    expect(warnings(r).join('\n')).toMatch(/_archive\.torrent is stale: it does not list os-2\.0\.iso/);
  });

  it('a failed derive is reported as error without waiting for the timeout', async () => {
    const id = fresh();
    const rel = await release();
    emu.setOptions({ deriveOutcome: 'error' });
    // Waiting out this timeout would outlast the step's own 60 s limit and fail the test.
    const r = await run(inputs(id, rel, { 'torrent-timeout': '3600' }));
    expect(r.code).toBe(0);
    expect(r.outputs['torrent-status']).toBe('error');
    expect(warnings(r).join('\n')).toMatch(/task\(s\) in error .*\/history\//);
  });

  it('noarchivetorrent: disabled, no wait', async () => {
    const id = fresh();
    const rel = await release();
    const r = await run(inputs(id, rel, { metadata: `${META}\nnoarchivetorrent:true` }));
    expect(r.code).toBe(0);
    expect(r.outputs['torrent-status']).toBe('disabled');
    expect(warnings(r).join('\n')).toMatch(/no torrent: the item sets noarchivetorrent/);
  });
});

describe('ia-upload input validation (before any request)', () => {
  const cases: [string, (rel: Release, id: string) => Record<string, string>, RegExp][] = [
    [
      'bad identifier',
      (rel) => inputs('_bad id', rel),
      /^Input 'identifier' has value "_bad id": not a valid Internet Archive identifier: expected only the characters A-Z a-z 0-9 \. _ - \(found " "\)$/,
    ],
    ['short identifier', (rel) => inputs('ab', rel), /^Input 'identifier' has value "ab": .*3 to 100 characters/],
    [
      'missing file',
      (rel, id) => inputs(id, rel, { files: `${rel.iso}\n/nonexistent/x.iso` }),
      /^Input 'files' has value .*item "\/nonexistent\/x\.iso": expected an existing file$/,
    ],
    [
      'bad metadata',
      (rel, id) => inputs(id, rel, { metadata: 'title Tëst' }),
      /^Input 'metadata' has value "title Tëst": expected key:value lines/,
    ],
    [
      'bad metadata key',
      (rel, id) => inputs(id, rel, { metadata: 'Title:x' }),
      /^Input 'metadata' .*key "Title": expected lower-case/,
    ],
    [
      'missing secret key',
      (rel, id) => inputs(id, rel, { 'secret-key': '' }),
      /^Input 'secret-key': it is required to upload/,
    ],
    [
      'bad endpoint',
      (rel, id) => inputs(id, rel, { 's3-endpoint': 'ftp://x' }),
      /^Input 's3-endpoint' has value "ftp:\/\/x": scheme ftp is not https: expected an https URL/,
    ],
    [
      'bad retries',
      (rel, id) => inputs(id, rel, { retries: 'many' }),
      /^Input 'retries' has value "many": expected an integer >= 0/,
    ],
    [
      'reserved file name',
      (rel, id) => {
        const p = path.join(rel.dir, `${id}_meta.xml`);
        fs.writeFileSync(p, '<x/>');
        return inputs(id, rel, { files: `${rel.iso}\n${p}` });
      },
      /^Input 'files' has value ".*_meta\.xml": this name is one of IA's own files/,
    ],
  ];
  it.each(cases)('%s', async (_name, make, message) => {
    const rel = await release(1000);
    const id = fresh();
    const before = emu.state.journal.length;
    const r = await run(make(rel, id));
    expect(r.code).toBe(1);
    expect(errors(r)).toHaveLength(1);
    expect(errors(r)[0]).toMatch(message);
    expect(emu.state.journal.length).toBe(before);
  });

  it('a SHA256SUMS that does not match fails before any request, naming both digests', async () => {
    const rel = await release(4096);
    const id = fresh();
    const expected = fs.readFileSync(rel.sums, 'utf8').slice(0, 64);
    fs.appendFileSync(rel.iso, 'tampered');
    const actual = crypto.createHash('sha256').update(fs.readFileSync(rel.iso)).digest('hex');
    const before = emu.state.journal.length;
    const r = await run(inputs(id, rel));
    expect(r.code).toBe(1);
    expect(errors(r)).toEqual([
      `os-1.0.iso does not match SHA256SUMS: it says sha256 ${expected}, the file ${rel.iso} has sha256 ${actual}`,
    ]);
    expect(emu.state.journal.length).toBe(before);
    expect(r.outputs).toMatchObject({
      'torrent-ready': 'false',
      'download-urls': `${emu.apiUrl}/download/${id}/os-1.0.iso\n${emu.apiUrl}/download/${id}/SHA256SUMS`,
    });
  });

  it('a sha256sums input outside files is verified and uploaded last', async () => {
    const rel = await release(4096);
    const id = fresh();
    const r = await run(inputs(id, rel, { files: rel.iso, sha256sums: rel.sums, 'torrent-timeout': '0' }));
    expect(errors(r)).toEqual([]);
    expect(puts(id).map(keyOf)).toEqual(['os-1.0.iso', 'SHA256SUMS']);
  });
});
