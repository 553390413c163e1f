// test-kind: integration
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeSha256Sums } from '../../actions/lib/checksums.js';
import { which } from '../../actions/lib/exec.js';
import { parseTorrent } from '../../actions/lib/ia/torrent.js';
import { startIaEmulator, type EmuItem, type IaEmulator } from '../../emulators/ia/index.js';
import { waitFor } from '../harness/net.js';
import { errors, runAction } from '../harness/run-action.js';
import { runner, tmpdir } from '../harness/tools.js';

/**
 * The IA emulator checked against the real `ia` client (Debian's internetarchive), reaching it
 * through HTTP_PROXY with `secure = false` (reference/internet-archive.md §2.1): uploads,
 * metadata/list/tasks reads, retries, spam, 307, --checksum; and the item `ia` leaves behind is
 * the same as the one Keel's bundled action leaves for the same files.
 */
// The emulator's contract is only as good as this check: a machine without the real client
// fails here rather than skipping it (.ci/run installs it).
const d = describe;
if (!which('ia')) {
  describe('ia client', () => {
    it('is installed (apt: python3-internetarchive)', () => {
      expect(which('ia')).toBeTruthy();
    });
  });
}

let emu: IaEmulator;
let dir: string;
let iso: string;
let sums: string;
let isoMd5: string;
let iaVersion = '';

async function ia(args: string[], okCodes = [0]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await runner.run('ia', args, {
    cwd: dir,
    okCodes,
    timeoutMs: 60_000,
    env: {
      IA_CONFIG_FILE: path.join(dir, 'ia.ini'),
      HTTP_PROXY: emu.proxyUrl,
      http_proxy: emu.proxyUrl,
      NO_PROXY: '',
      no_proxy: '',
      HTTPS_PROXY: undefined,
      https_proxy: undefined,
      ALL_PROXY: undefined,
      all_proxy: undefined,
    },
  });
  return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
}

/** Item state that both clients must produce: metadata, and each original file's size and hashes. */
function normalised(item: EmuItem) {
  const { scanner: _scanner, ...metadata } = item.metadata;
  const files = [...item.files.values()]
    .filter((f) => f.source === 'original')
    .map((f) => ({ name: f.name, size: f.size, md5: f.md5, sha1: f.sha1, crc32: f.crc32, format: f.format }))
    .sort((a, b) => a.name.localeCompare(b.name));
  // The torrent's file list, minus _meta.xml (ia adds a `scanner` field, so its size differs).
  const torrent = item.torrent
    ? parseTorrent(item.torrent.bytes).files.filter((f) => f.path !== `${item.id}_meta.xml`)
    : undefined;
  return { metadata, files, torrent };
}

const META_ARGS = [
  '--metadata=title:Tëst OS 1.0 — release',
  '--metadata=mediatype:software',
  '--metadata=collection:opensource',
  '--metadata=subject:linux',
  '--metadata=subject:iso image',
  '--metadata=release_date:2024-01-01',
];
const META_LINES = META_ARGS.map((a) => a.slice('--metadata='.length)).join('\n');

d('the IA emulator against the real ia client', () => {
  beforeAll(async () => {
    emu = await startIaEmulator({ ingestDelayMs: 20, deriveDelayMs: 100 });
    dir = tmpdir('keel-ia-contract-');
    fs.writeFileSync(
      path.join(dir, 'ia.ini'),
      '[s3]\naccess = TESTACCESS\nsecret = TESTSECRET\n\n[general]\nsecure = false\nscreenname = probe-user\n',
    );
    iso = path.join(dir, 'testos-1.0-amd64.iso');
    const buf = crypto.randomBytes(3 * 1024 * 1024 + 7);
    fs.writeFileSync(iso, buf);
    isoMd5 = crypto.createHash('md5').update(buf).digest('hex');
    sums = (await writeSha256Sums([iso])).path;
    iaVersion = (await ia(['--version'])).stdout.trim();
  });
  afterAll(async () => {
    await emu?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ia upload (one 503, --retries) creates the item with the metadata and files it sent', async () => {
    emu.setFaults([{ on: 'put', identifier: 'IATEST1', action: { kind: 'slowdown' } }]);
    const r = await ia([
      'upload',
      'IATEST1',
      path.basename(iso),
      'SHA256SUMS',
      ...META_ARGS,
      '--retries',
      '2',
      '--sleep',
      '1',
      '--verify',
      '--no-backup',
    ]);
    expect(r.stderr).toMatch(/s3 is overloaded, sleeping for 1 seconds and retrying/);
    const mine = emu.state.journal.filter((e) => e.path.startsWith('/IATEST1/') || e.query.check_limit);
    // Through the proxy: absolute-form targets for the real hosts, routed on the host.
    expect(mine.every((e) => e.proxied && e.host === 's3.us.archive.org')).toBe(true);
    const puts = mine.filter((e) => e.method === 'PUT');
    expect(puts.map((e) => [decodeURIComponent(e.path), e.status])).toEqual([
      ['/IATEST1/testos-1.0-amd64.iso', 503],
      ['/IATEST1/testos-1.0-amd64.iso', 200],
      ['/IATEST1/SHA256SUMS', 200],
    ]);
    expect(puts[1]!.headers['content-md5']).toBe(isoMd5); // --verify sends hex, the emulator checks it
    expect(puts[1]!.headers['x-archive-meta00-title']).toBe('uri(T%C3%ABst%20OS%201.0%20%E2%80%94%20release)');
    const item = emu.state.item('IATEST1')!;
    expect(item.metadata).toEqual({
      title: 'Tëst OS 1.0 — release',
      mediatype: 'software',
      collection: 'opensource',
      subject: ['linux', 'iso image'],
      release_date: '2024-01-01',
      scanner: expect.stringMatching(/^Internet Archive Python library/),
    });
    await waitFor(async () => !!emu.state.item('IATEST1')!.files.get('SHA256SUMS'), 5000, 'ingest');
    expect(item.files.get('testos-1.0-amd64.iso')).toMatchObject({ size: fs.statSync(iso).size, md5: isoMd5 });
  });

  it('ia metadata, ia list -a and ia tasks parse the emulator’s MDAPI and Tasks API answers', async () => {
    await waitFor(async () => !!emu.state.item('IATEST1')!.torrent, 5000, 'the derived torrent');
    const md = JSON.parse((await ia(['metadata', 'IATEST1'])).stdout) as {
      files: { name: string; md5?: string }[];
      metadata: Record<string, unknown>;
    };
    expect(md).toEqual(emu.state.record('IATEST1') as unknown as typeof md);
    expect(md.files.find((f) => f.name === 'testos-1.0-amd64.iso')!.md5).toBe(isoMd5);

    const list = (await ia(['list', '-a', 'IATEST1'])).stdout;
    const torrentLine = list.split('\n').find((l) => l.startsWith('IATEST1_archive.torrent'))!;
    expect(torrentLine).toContain('Archive BitTorrent');
    expect(torrentLine).toContain(emu.state.item('IATEST1')!.torrent!.file.btih!);
    expect(list).toMatch(new RegExp(`testos-1\\.0-amd64\\.iso\\t.*${isoMd5}`));

    const tasks = (await ia(['tasks', 'IATEST1'])).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { cmd: string; identifier: string });
    expect(tasks.every((t) => t.identifier === 'IATEST1')).toBe(true);
    expect(new Set(tasks.map((t) => t.cmd))).toEqual(new Set(['archive.php', 'derive.php']));
  });

  it('Keel’s upload of the same files produces the same item state as ia’s', async () => {
    const r = await runAction({
      action: 'ia-upload',
      inputs: {
        identifier: 'IATEST2',
        files: `${iso}\n${sums}`,
        metadata: META_LINES,
        'access-key': 'TESTACCESS',
        'secret-key': 'TESTSECRET',
        's3-endpoint': emu.s3Url,
        'api-endpoint': emu.apiUrl,
        'retry-base': '0.01',
        'poll-interval': '0.05',
        'torrent-timeout': '10',
      },
      timeoutMs: 60_000,
    });
    expect(errors(r)).toEqual([]);
    expect(r.outputs['torrent-ready']).toBe('true');
    const theirs = normalised(emu.state.item('IATEST1')!);
    const ours = normalised(emu.state.item('IATEST2')!);
    expect(ours).toEqual(theirs);
    expect(ours.files.map((f) => f.name)).toEqual(['SHA256SUMS', 'testos-1.0-amd64.iso']);
  });

  it('Keel re-running on the item ia uploaded sends nothing', async () => {
    const before = emu.state.journal.length;
    const r = await runAction({
      action: 'ia-upload',
      inputs: {
        identifier: 'IATEST1',
        files: `${iso}\n${sums}`,
        'access-key': 'TESTACCESS',
        'secret-key': 'TESTSECRET',
        's3-endpoint': emu.s3Url,
        'api-endpoint': emu.apiUrl,
        'poll-interval': '0.05',
        'torrent-timeout': '5',
      },
      timeoutMs: 60_000,
    });
    expect(errors(r)).toEqual([]);
    expect(emu.state.journal.slice(before).filter((e) => e.method === 'PUT')).toEqual([]);
    expect(r.outputs).toMatchObject({ skipped: 'testos-1.0-amd64.iso\nSHA256SUMS', 'torrent-ready': 'true' });
  });

  it('ia upload --checksum skips files the emulator lists with the same md5', async () => {
    const before = emu.state.journal.length;
    // ia 3.3.0 exits 1 when it skips (a known bug fixed in 5.x).
    const r = await ia(['upload', 'IATEST1', path.basename(iso), '--checksum'], [0, 1]);
    expect(r.code).toBe(iaVersion.startsWith('3.') ? 1 : 0);
    expect(r.stderr).toMatch(/testos-1\.0-amd64\.iso already exists, skipping/);
    expect(emu.state.journal.slice(before).filter((e) => e.method === 'PUT')).toEqual([]);
  });

  it('ia follows a 307 to a data node (-q), re-sending the body with its credentials', async () => {
    emu.setFaults([{ on: 'put', identifier: 'IATEST3', action: { kind: 'redirect', to: 'node' } }]);
    await ia(['upload', 'IATEST3', 'SHA256SUMS', '-q', '--no-derive']);
    const puts = emu.state.journal.filter((e) => e.method === 'PUT' && e.path.includes('/IATEST3/'));
    expect(puts.map((e) => [e.host, e.status, e.accessKey])).toEqual([
      ['s3.us.archive.org', 307, 'TESTACCESS'],
      ['ia800000.us.archive.org', 200, 'TESTACCESS'],
    ]);
    expect(puts[1]!.bodyBytes).toBe(fs.statSync(sums).size);
  });

  it('ia stops at once on a spam refusal and prints IA’s message', async () => {
    emu.setFaults([{ on: 'put', identifier: 'IATEST4', times: 5, action: { kind: 'spam' } }]);
    const r = await ia(['upload', 'IATEST4', 'SHA256SUMS', '--retries', '3', '--sleep', '1'], [1]);
    expect(r.stderr).toMatch(/appears to be spam/);
    expect(emu.state.journal.filter((e) => e.method === 'PUT' && e.path.includes('/IATEST4/'))).toHaveLength(1);
  });
});
